import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { asAccessToken, SECOND, useSimulators } from './simulator-client.ts';
import { TestClock } from '../support/test-clock.ts';

const started = useSimulators();

describe('rate limit', () => {
  it("answers 429 with Retry-After and RateLimit-* once a caller passes its requests per minute (headers on every reply: GitLab's instance flag)", async () => {
    const clock = new TestClock({ start: '2026-03-01T10:00:30.000Z' });
    const { sim, api } = await started({ now: clock.now, rateLimit: { requestsPerMinute: 3 }, rateLimitHeadersOnEveryReply: true });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    const allowed = [];
    for (let index = 0; index < 3; index++) allowed.push(await api.get('/version', asAccessToken(reader)));
    const limited = await api.get('/version', asAccessToken(reader));

    expect(allowed.map((response) => [response.status, response.headers.get('ratelimit-remaining')])).toEqual([
      [200, '2'],
      [200, '1'],
      [200, '0'],
    ]);
    expect(limited.status).toBe(429);
    expect({
      retryAfter: limited.headers.get('retry-after'),
      limit: limited.headers.get('ratelimit-limit'),
      observed: limited.headers.get('ratelimit-observed'),
      remaining: limited.headers.get('ratelimit-remaining'),
      reset: limited.headers.get('ratelimit-reset'),
      resetTime: limited.headers.get('ratelimit-resettime'),
    }).toEqual({
      retryAfter: '30',
      limit: '3',
      observed: '4',
      remaining: '0',
      reset: String(Date.parse('2026-03-01T10:01:00.000Z') / 1000),
      resetTime: 'Sun, 01 Mar 2026 10:01:00 GMT',
    });
    expect(sim.stats.rateLimited).toBe(1);
  });

  it('counts each caller on its own and lets it through again when the window ends', async () => {
    const clock = new TestClock({ start: '2026-03-01T10:00:00.000Z' });
    const { sim, api } = await started({ now: clock.now, rateLimit: { requestsPerMinute: 1 } });
    const first = sim.addAccessToken({ scopes: ['read_api'] });
    const second = sim.addAccessToken({ scopes: ['read_api'] });

    expect((await api.get('/version', asAccessToken(first))).status).toBe(200);
    expect((await api.get('/version', asAccessToken(first))).status).toBe(429);
    expect((await api.get('/version', asAccessToken(second))).status).toBe(200);
    clock.advance(60 * SECOND);
    expect((await api.get('/version', asAccessToken(first))).status).toBe(200);
  });

  it('throttles runner-token requests as the anonymous caller and stops when the limit is lifted', async () => {
    const { sim, api } = await started({ rateLimit: { requestsPerMinute: 1 } });
    const { token } = sim.addRunner();

    expect((await api.post('/runners/verify', { token, system_id: 's_a' })).status).toBe(200);
    const limited = await api.post('/runners/reset_authentication_token', { token });
    sim.setRateLimit(null);
    const lifted = await api.post('/runners/verify', { token, system_id: 's_a' });

    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(sim.accepts(token)).toBe(true);
    expect(lifted.status).toBe(200);
    expect(lifted.headers.get('ratelimit-limit')).toBeNull();
  });

  it('records the busiest minute of a caller in stats.peakRequestsPerMinute, limit or not', async () => {
    const clock = new TestClock({ start: '2026-03-01T10:00:00.000Z' });
    const { sim, api } = await started({ now: clock.now });
    const { token } = sim.addRunner();

    for (let index = 0; index < 4; index++) await api.post('/jobs/request', { token, system_id: 's_a' });
    clock.advance(60 * SECOND);
    await api.post('/jobs/request', { token, system_id: 's_a' });

    expect(sim.stats.peakRequestsPerMinute).toBe(4);
  });
});

describe('latency', () => {
  it('waits the configured latency before every reply', async () => {
    const { sim, api } = await started({ latencyMs: 120 });
    const { token } = sim.addRunner();

    const began = performance.now();
    const response = await api.post('/runners/verify', { token, system_id: 's_a' });
    const elapsed = performance.now() - began;

    expect(response.status).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(115);
  });

  it('applies a latency set after start, to error replies as well', async () => {
    const { sim, api } = await started();
    sim.setLatency(100);

    const began = performance.now();
    const response = await api.get('/nowhere');
    const elapsed = performance.now() - began;

    expect(response.status).toBe(404);
    expect(elapsed).toBeGreaterThanOrEqual(95);
  });

  it('serves a thousand concurrent requests at 50 ms latency in parallel, not one after another', async () => {
    const { sim, api } = await started({ latencyMs: 50 });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });
    const ids = Array.from({ length: 1000 }, () => sim.addRunner().id);

    const began = performance.now();
    const statuses = await Promise.all(ids.map(async (id) => (await api.get(`/runners/${id}`, asAccessToken(reader))).status));
    const elapsed = performance.now() - began;

    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(elapsed).toBeLessThan(10_000);
    expect(sim.stats.byRoute['GET /runners/:id']).toBe(1000);
  });
});

describe('faults.failNext', () => {
  it('fails only the matching path, without effect: a failed reset leaves the old token valid', async () => {
    const { sim, api } = await started();
    const { token } = sim.addRunner();
    sim.faults.failNext(1, { path: '/runners/reset_authentication_token' });

    const verify = await api.post('/runners/verify', { token, system_id: 's_a' });
    const failed = await api.post('/runners/reset_authentication_token', { token });

    expect(verify.status).toBe(200);
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ message: '500 Internal Server Error' });
    expect(sim.accepts(token)).toBe(true);
    expect((await api.post('/runners/reset_authentication_token', { token })).status).toBe(201);
  });

  it('sends the status and Retry-After it was given to the next N requests matching a RegExp', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner();
    const manager = sim.addAccessToken({ scopes: ['manage_runner'] });
    sim.faults.failNext(2, { status: 503, path: /\/runners\/\d+\/reset_authentication_token$/, retryAfterSeconds: 7 });

    const replies = [];
    for (let index = 0; index < 3; index++) replies.push(await api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken(manager)));

    expect(replies.map((response) => [response.status, response.headers.get('retry-after')])).toEqual([
      [503, '7'],
      [503, '7'],
      [201, null],
    ]);
    expect(sim.runner(id)?.tokenResets).toBe(1);
  });
});

describe('faults.dropNextReset', () => {
  it('applies the reset, then drops the connection: fetch rejects but the old token is dead', async () => {
    const { sim, api } = await started();
    const { id, token } = sim.addRunner();
    sim.faults.dropNextReset();

    await expect(api.post('/runners/reset_authentication_token', { token })).rejects.toThrow();

    expect(sim.accepts(token)).toBe(false);
    expect(sim.runner(id)?.token).not.toBe(token);
    expect((await api.post('/runners/reset_authentication_token', { token })).status).toBe(403);
  });

  it('applies to a reset by id as well, and only once', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner();
    const manager = sim.addAccessToken({ scopes: ['manage_runner'] });
    sim.faults.dropNextReset();

    await expect(api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken(manager))).rejects.toThrow();
    const next = await api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken(manager));

    expect(next.status).toBe(201);
    expect(sim.runner(id)?.tokenResets).toBe(2);
  });
});

describe('faults.hangNext', () => {
  it('never answers the matching request, so the client times out, while others are served', async () => {
    const { sim, api } = await started();
    const { token } = sim.addRunner();
    sim.faults.hangNext(1, { path: '/runners/reset_authentication_token' });

    const hanging = api.post('/runners/reset_authentication_token', { token }, { signal: AbortSignal.timeout(300) });
    const served = await api.post('/runners/verify', { token, system_id: 's_a' });

    expect(served.status).toBe(200);
    await expect(hanging).rejects.toThrow();
    expect(sim.accepts(token)).toBe(true);
  });

  it('lets stop() close a hanging request, which then fails on the client', async () => {
    const { sim, api } = await started();
    sim.faults.hangNext(1);

    const hanging = api.get('/version');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await sim.stop();

    await expect(hanging).rejects.toThrow();
  });
});
