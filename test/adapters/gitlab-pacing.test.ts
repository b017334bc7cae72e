/**
 * Client-side pacing of the GitLab adapter against the simulator's rate limit over real HTTP. Time is a
 * simulated clock shared by the simulator (its windows and headers) and the adapter (its waits), and a
 * wait moves that clock instead of sleeping, so a limit of a few requests a minute runs in milliseconds.
 */
import pLimit from 'p-limit';
import { afterEach, describe, expect, it } from 'vitest';
import { GitLabAdapter, type GitLabAdapterOptions } from '../../src/adapters/gitlab.ts';
import { RequestPacer } from '../../src/adapters/gitlab-pacing.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';

let sim: GitLabSimulator | undefined;

afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

/** A simulated clock 20 s into a minute; `sleep` moves it forward to the end of the wait and returns. */
function simulatedClock() {
  let nowMs = Date.UTC(2025, 0, 1, 12, 0, 20);
  const waits: number[] = [];
  return {
    waits,
    now: () => nowMs,
    sleep: async (ms: number) => {
      waits.push(ms);
      nowMs += ms;
    },
  };
}

async function start(limit: number, clock: ReturnType<typeof simulatedClock>) {
  sim = new GitLabSimulator({ now: () => new Date(clock.now()), rateLimit: { requestsPerMinute: limit } });
  const url = await sim.start();
  const runners = Array.from({ length: 5 }, () => sim!.addRunner().id);
  const accessToken = sim.addAccessToken({ scopes: ['read_api'] });
  return { url, runners, accessToken };
}

function adapter(clock: ReturnType<typeof simulatedClock>, options: GitLabAdapterOptions = {}) {
  return new GitLabAdapter({ sleep: clock.sleep, now: clock.now, ...options });
}

describe('GitLab request pacing', () => {
  it("stays under GitLab's limit by following its RateLimit headers: no 429 across several windows", async () => {
    const clock = simulatedClock();
    const { url, runners, accessToken } = await start(20, clock);
    const gitlab = adapter(clock, { pacing: { fromHeaders: true } });
    const limit = pLimit(4);

    const calls = Array.from({ length: 70 }, (_, i) => limit(() => gitlab.managers(url, runners[i % runners.length]!, accessToken)));
    const results = await Promise.all(calls);

    expect(results).toHaveLength(70);
    expect(sim!.stats.rateLimited).toBe(0);
    expect(sim!.stats.requests).toBe(70);
    expect(sim!.stats.peakRequestsPerMinute).toBeLessThanOrEqual(20);
    // 70 requests at 19 a window (one kept in reserve) need at least three resets.
    expect(clock.now() - Date.UTC(2025, 0, 1, 12, 0, 20)).toBeGreaterThanOrEqual(3 * 60_000 - 20_000);
  });

  it('without pacing the same run collects 429s (what pacing prevents)', async () => {
    const clock = simulatedClock();
    const { url, runners, accessToken } = await start(20, clock);
    const gitlab = adapter(clock, { maxAttempts: 10 });

    for (let i = 0; i < 30; i += 1) await gitlab.managers(url, runners[i % runners.length]!, accessToken);

    expect(sim!.stats.rateLimited).toBeGreaterThan(0);
  });

  it('slows down before the limit: below a fifth of the window left, requests are spread until the reset', async () => {
    const clock = simulatedClock();
    const { url, runners, accessToken } = await start(100, clock);
    const gitlab = adapter(clock, { pacing: { fromHeaders: true } });

    for (let i = 0; i < 95; i += 1) await gitlab.runner(url, runners[0]!, accessToken);

    expect(sim!.stats.rateLimited).toBe(0);
    // The first 80 go at once; the next 15 of the 20 left above the reserve of 5 are spaced out.
    expect(clock.waits.slice(0, 3).every((ms) => ms > 1_000)).toBe(true);
    expect(clock.waits.length).toBeGreaterThanOrEqual(14);
  });

  it('keeps a configured budget of requests a minute when GitLab sends no RateLimit headers', async () => {
    const clock = simulatedClock();
    sim = new GitLabSimulator({ now: () => new Date(clock.now()) });
    const url = await sim.start();
    const { id } = sim.addRunner();
    const accessToken = sim.addAccessToken({ scopes: ['read_api'] });
    const gitlab = adapter(clock, { pacing: { requestsPerMinute: 6 } });

    for (let i = 0; i < 4; i += 1) await gitlab.runner(url, id, accessToken);

    expect(clock.waits).toEqual([10_000, 10_000, 10_000]);
  });

  it('waits for the reset after a 429 instead of sending the requests queued behind it', async () => {
    const clock = simulatedClock();
    const pacer = new RequestPacer(clock);
    const first = await pacer.acquire();
    const second = await pacer.acquire();
    const resetEpoch = Math.floor(clock.now() / 1000) + 40;
    const date = new Date(clock.now()).toUTCString();
    first.observe(new Headers({ 'RateLimit-Limit': '10', 'RateLimit-Remaining': '0', 'RateLimit-Reset': String(resetEpoch), Date: date }), 429);
    second.observe(new Headers({ 'RateLimit-Limit': '10', 'RateLimit-Remaining': '3', 'RateLimit-Reset': String(resetEpoch), Date: date }), 200);

    await pacer.acquire();

    expect(clock.waits).toEqual([40_000]);
  });
});
