/**
 * Where the simulator puts GitLab's RateLimit-* headers. GitLab's Rack::Attack sends them with the 429
 * only (lib/gitlab/rack_attack.rb, `throttled_response_headers`); the feature flag
 * `rate_limiting_headers_for_unthrottled_requests` adds them to every reply, which
 * `rateLimitHeadersOnEveryReply` stands for.
 */
import { describe, expect, it } from 'vitest';
import { asAccessToken, useSimulators } from './simulator-client.ts';
import { TestClock } from '../support/test-clock.ts';

const started = useSimulators();

const rateLimitHeaders = (response: Response): Record<string, string> =>
  Object.fromEntries([...response.headers.entries()].filter(([name]) => name.startsWith('ratelimit-') || name === 'retry-after'));

describe('RateLimit headers', () => {
  it('a 200 under the limit carries no RateLimit-* header by default', async () => {
    const clock = new TestClock({ start: '2026-03-01T10:00:15.000Z' });
    const { sim, api } = await started({ now: clock.now, rateLimit: { requestsPerMinute: 5 } });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });
    const { token } = sim.addRunner();

    const read = await api.get('/version', asAccessToken(reader));
    const verified = await api.post('/runners/verify', { token, system_id: 's_0123456789ab' });

    expect([read.status, verified.status]).toEqual([200, 200]);
    expect(rateLimitHeaders(read)).toEqual({});
    expect(rateLimitHeaders(verified)).toEqual({});
  });

  it('the 429 carries every RateLimit-* header and Retry-After', async () => {
    const clock = new TestClock({ start: '2026-03-01T10:00:15.000Z' });
    const { sim, api } = await started({ now: clock.now, rateLimit: { requestsPerMinute: 2 } });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    await api.get('/version', asAccessToken(reader));
    await api.get('/version', asAccessToken(reader));
    const limited = await api.get('/version', asAccessToken(reader));

    expect(limited.status).toBe(429);
    expect(rateLimitHeaders(limited)).toEqual({
      'ratelimit-name': 'throttle_authenticated_api',
      'ratelimit-limit': '2',
      'ratelimit-observed': '3',
      'ratelimit-remaining': '0',
      'ratelimit-reset': String(Date.parse('2026-03-01T10:01:00.000Z') / 1000),
      'ratelimit-resettime': 'Sun, 01 Mar 2026 10:01:00 GMT',
      'retry-after': '45',
    });
  });

  it('with rateLimitHeadersOnEveryReply a 200 carries RateLimit-* (and no Retry-After)', async () => {
    const clock = new TestClock({ start: '2026-03-01T10:00:15.000Z' });
    const { sim, api } = await started({ now: clock.now, rateLimit: { requestsPerMinute: 5 }, rateLimitHeadersOnEveryReply: true });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    const read = await api.get('/version', asAccessToken(reader));

    expect(read.status).toBe(200);
    expect(rateLimitHeaders(read)).toEqual({
      'ratelimit-name': 'throttle_authenticated_api',
      'ratelimit-limit': '5',
      'ratelimit-observed': '1',
      'ratelimit-remaining': '4',
      'ratelimit-reset': String(Date.parse('2026-03-01T10:01:00.000Z') / 1000),
      'ratelimit-resettime': 'Sun, 01 Mar 2026 10:01:00 GMT',
    });
  });

  it('without a rate limit no reply carries RateLimit-*, whatever the option', async () => {
    const { sim, api } = await started({ rateLimitHeadersOnEveryReply: true });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    const read = await api.get('/version', asAccessToken(reader));

    expect(read.status).toBe(200);
    expect(rateLimitHeaders(read)).toEqual({});
  });
});
