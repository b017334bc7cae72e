import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/errors.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { asAccessToken, useSimulators } from './simulator-client.ts';
import { TestClock } from '../support/test-clock.ts';

const started = useSimulators();

describe('constructing a simulator', () => {
  it('refuses a token lifetime under GitLab\'s 7200-second minimum', () => {
    expect(() => new GitLabSimulator({ tokenLifetimeSeconds: 7199 })).toThrow(InvalidInputError);
    expect(() => new GitLabSimulator({ tokenLifetimeSeconds: 7200 })).not.toThrow();
    expect(() => new GitLabSimulator({ tokenLifetimeSeconds: null })).not.toThrow();
  });

  it('refuses a negative latency and a rate limit below one request per minute', () => {
    expect(() => new GitLabSimulator({ latencyMs: -1 })).toThrow(RangeError);
    expect(() => new GitLabSimulator({ rateLimit: { requestsPerMinute: 0 } })).toThrow(RangeError);
  });

  it('numbers runners from 1 and gives each a distinct glrt- token', () => {
    const sim = new GitLabSimulator();

    const runners = [sim.addRunner(), sim.addRunner(), sim.addRunner()];

    expect(runners.map((runner) => runner.id)).toEqual([1, 2, 3]);
    expect(runners.every((runner) => /^glrt-[A-Za-z0-9_-]{24}$/.test(runner.token))).toBe(true);
    expect(new Set(runners.map((runner) => runner.token)).size).toBe(3);
    expect(sim.addAccessToken({ scopes: ['api'] })).toMatch(/^glpat-[A-Za-z0-9_-]{20}$/);
  });

  it('hands out snapshots that do not change the simulator when mutated', () => {
    const sim = new GitLabSimulator();
    const { id, token } = sim.addRunner({ tagList: ['a'] });

    const snapshot = sim.runner(id);
    snapshot?.tagList.push('b');
    if (snapshot) snapshot.token = 'changed';

    expect(sim.runner(id)?.tagList).toEqual(['a']);
    expect(sim.runner(id)?.token).toBe(token);
  });
});

describe('starting and stopping', () => {
  it('has no url before start, then listens on 127.0.0.1 on an ephemeral port', async () => {
    const sim = new GitLabSimulator();
    expect(() => sim.url).toThrow(/not started/);

    const { sim: running } = await started();

    expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await running.start()).toBe(running.url);
  });

  it('refuses connections after stop, even from a client that kept its socket alive', async () => {
    const { sim, api } = await started();
    const url = sim.url;
    expect((await api.get('/version')).status).toBe(401);

    await sim.stop();

    await expect(fetch(`${url}/api/v4/version`)).rejects.toThrow();
    expect(() => sim.url).toThrow();
  });
});

describe('replies in general', () => {
  it('dates every reply from the simulated clock plus the configured skew', async () => {
    const clock = new TestClock({ start: '2026-03-01T10:00:00.000Z' });
    const { api } = await started({ now: clock.now, clockSkewMs: 90_000 });

    const response = await api.get('/version');

    expect(response.headers.get('date')).toBe('Sun, 01 Mar 2026 10:01:30 GMT');
  });

  it('answers 404 "Not Found" to paths it does not simulate, inside /api/v4 or not', async () => {
    const { sim, api } = await started();

    const response = await api.get('/projects');
    const outside = await fetch(`${sim.url}/users/sign_in`);

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ message: '404 Not Found' });
    expect(outside.status).toBe(404);
  });

  it('answers 400 to a JSON body that does not parse', async () => {
    const { sim } = await started();

    const response = await fetch(`${sim.url}/api/v4/runners/verify`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"token":' });

    expect(response.status).toBe(400);
  });

  it('counts requests per route and starts over on resetStats', async () => {
    const { sim, api } = await started();
    const { token } = sim.addRunner();
    const reader = sim.addAccessToken({ scopes: ['read_api'] });
    await api.post('/runners/verify', { token, system_id: 's_a' });
    await api.post('/runners/verify', { token, system_id: 's_a' });
    await api.get('/runners/1', asAccessToken(reader));
    await api.get('/elsewhere');

    expect(sim.stats).toMatchObject({
      requests: 4,
      byRoute: { 'POST /runners/verify': 2, 'GET /runners/:id': 1, unmatched: 1 },
      rateLimited: 0,
    });
    sim.resetStats();
    expect(sim.stats).toEqual({ requests: 0, byRoute: {}, rateLimited: 0, peakRequestsPerMinute: 0 });
  });
});
