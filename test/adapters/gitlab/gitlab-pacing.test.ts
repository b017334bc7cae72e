/**
 * Client-side pacing of the GitLab adapter against the simulator's rate limit over real HTTP, and of the
 * pacer alone. Time is a simulated clock shared by the simulator (its windows and headers) and the
 * adapter (its waits), and a wait moves that clock instead of sleeping, so a limit of a few requests a
 * minute runs in milliseconds. No test here sleeps for real or depends on the machine's speed.
 *
 * By default the simulator sends RateLimit-* only with the 429, as self-managed GitLab does; the tests
 * that follow headers on every reply turn on `rateLimitHeadersOnEveryReply` (GitLab's instance flag).
 */
import pLimit from 'p-limit';
import { afterEach, describe, expect, it } from 'vitest';
import { GitLabAdapter, type GitLabAdapterOptions } from '../../../src/adapters/gitlab/gitlab.ts';
import { nodeHttpSend, type HttpSend } from '../../../src/adapters/gitlab/gitlab-http.ts';
import { PacerRegistry, RequestPacer, type PacedRequest } from '../../../src/adapters/gitlab/gitlab-pacing.ts';
import { GitLabSimulator, type SimulatorOptions } from '../../../src/simulator/gitlab-simulator.ts';
import { TestClock } from '../../support/test-clock.ts';

let sim: GitLabSimulator | undefined;

afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

/** 20 s into a minute: the clocks here are TestClocks in epoch ms, and a wait ends at its moment instead of sleeping. */
const START_MS = Date.UTC(2025, 0, 1, 12, 0, 20);

/**
 * For the adapter over real HTTP with many requests at once: time moves only once no HTTP request is in
 * flight (the adapter's HTTP sender is wrapped to count them), as real time would not jump while GitLab is answering. So a reply
 * is read at the simulated moment it was sent, and the test waits on the work, never on the machine's speed.
 */
function noRequestInFlight(): { send: HttpSend; settle: () => Promise<void> } {
  const realSend = nodeHttpSend();
  let inFlight = 0;
  const send: HttpSend = async (request) => {
    inFlight += 1;
    try {
      return await realSend(request);
    } finally {
      inFlight -= 1;
    }
  };
  return {
    send,
    settle: async () => {
      while (inFlight > 0) await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

async function start(limit: number, clock: { now: () => number }, options: SimulatorOptions = {}) {
  sim = new GitLabSimulator({ now: () => new Date(clock.now()), rateLimit: { requestsPerMinute: limit }, ...options });
  const url = await sim.start();
  const runners = Array.from({ length: 5 }, () => sim!.addRunner().id);
  const accessToken = sim.addAccessToken({ scopes: ['read_api'] });
  return { url, runners, accessToken };
}

function adapter(clock: { now: () => number; sleep: (ms: number) => Promise<void> }, options: GitLabAdapterOptions = {}) {
  return new GitLabAdapter({ sleep: clock.sleep, now: clock.now, ...options });
}

describe('GitLab request pacing', () => {
  it("stays under GitLab's limit by following its RateLimit headers when it sends them on every reply: no 429 across several windows", async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const { url, runners, accessToken } = await start(20, clock, { rateLimitHeadersOnEveryReply: true });
    const gitlab = adapter(clock, { pacing: { fromHeaders: true } });
    const limit = pLimit(4);

    const calls = Array.from({ length: 70 }, (_, i) => limit(() => gitlab.managers(url, runners[i % runners.length]!, accessToken)));
    const results = await Promise.all(calls);

    expect(results).toHaveLength(70);
    expect(sim!.stats.rateLimited).toBe(0);
    expect(sim!.stats.requests).toBe(70);
    expect(sim!.stats.peakRequestsPerMinute).toBeLessThanOrEqual(20);
    // 70 requests at 19 a window (one kept in reserve) need at least three resets.
    expect(clock.now() - START_MS).toBeGreaterThanOrEqual(3 * 60_000 - 20_000);
  });

  it('without pacing the same run collects 429s (what pacing prevents)', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const { url, runners, accessToken } = await start(20, clock);
    const gitlab = adapter(clock, { maxAttempts: 10 });

    for (let i = 0; i < 30; i += 1) await gitlab.managers(url, runners[i % runners.length]!, accessToken);

    expect(sim!.stats.rateLimited).toBeGreaterThan(0);
  });

  it('slows down before the limit: below a fifth of the window left, requests are spread until the reset (headers on every reply)', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const { url, runners, accessToken } = await start(100, clock, { rateLimitHeadersOnEveryReply: true });
    const gitlab = adapter(clock, { pacing: { fromHeaders: true } });

    for (let i = 0; i < 95; i += 1) await gitlab.runner(url, runners[0]!, accessToken);

    expect(sim!.stats.rateLimited).toBe(0);
    // The first 80 go at once; the next 15 of the 20 left above the reserve of 5 are spaced out.
    expect(clock.sleptMs.slice(0, 3).every((ms) => ms > 1_000)).toBe(true);
    expect(clock.sleptMs.length).toBeGreaterThanOrEqual(14);
  });

  it('keeps a configured budget of requests a minute when GitLab sends no RateLimit headers', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    sim = new GitLabSimulator({ now: () => new Date(clock.now()) });
    const url = await sim.start();
    const { id } = sim.addRunner();
    const accessToken = sim.addAccessToken({ scopes: ['read_api'] });
    const gitlab = adapter(clock, { pacing: { requestsPerMinute: 6 } });

    for (let i = 0; i < 4; i += 1) await gitlab.runner(url, id, accessToken);

    expect(clock.sleptMs).toEqual([10_000, 10_000, 10_000]);
  });

  it('waits for the reset after a 429 instead of sending the requests queued behind it', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const pacer = new RequestPacer(clock);
    const first = await pacer.acquire();
    const second = await pacer.acquire();
    const resetEpoch = Math.floor(clock.now() / 1000) + 40;
    const date = new Date(clock.now()).toUTCString();
    first.observe(new Headers({ 'RateLimit-Limit': '10', 'RateLimit-Remaining': '0', 'RateLimit-Reset': String(resetEpoch), Date: date }), 429);
    second.observe(new Headers({ 'RateLimit-Limit': '10', 'RateLimit-Remaining': '3', 'RateLimit-Reset': String(resetEpoch), Date: date }), 200);

    await pacer.acquire();

    expect(clock.sleptMs).toEqual([40_000]);
  });
  it('finishes a scan against a GitLab that sends RateLimit headers only with the 429: no request fails, each 429 waited out', async () => {
    const http = noRequestInFlight();
    const clock = new TestClock({ start: START_MS, settle: http.settle }).inMs;
    const { url, runners, accessToken } = await start(100, clock);
    const gitlab = adapter(clock, { pacing: { maxInFlight: 16 }, send: http.send });
    const limit = pLimit(16);

    const results = await Promise.allSettled(Array.from({ length: 450 }, (_, i) => limit(() => gitlab.managers(url, runners[i % runners.length]!, accessToken))));

    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(sim!.stats.rateLimited).toBeGreaterThan(0);
    expect(sim!.stats.requests).toBe(450 + sim!.stats.rateLimited);
    expect(sim!.stats.peakRequestsPerMinute).toBeLessThanOrEqual(100 + 16);
    // 450 requests at 100 a window, from 20 s into the first: 40 s + 3 × 60 s at least, and no window wasted.
    const minutes = (clock.now() - clock.startMs) / 60_000;
    expect(minutes).toBeGreaterThanOrEqual(220 / 60);
    expect(minutes).toBeLessThan(280 / 60);
    // Four windows ran out; each answered 429 to at most the 16 requests in flight when it did, not to every request queued.
    expect(sim!.stats.rateLimited).toBeLessThanOrEqual(4 * 16);
  });

  it('a 429 with Retry-After 7 holds the request and the next one back 7 s (through the adapter)', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    sim = new GitLabSimulator({ now: () => new Date(clock.now()) });
    const url = await sim.start();
    const { id } = sim.addRunner();
    const accessToken = sim.addAccessToken({ scopes: ['read_api'] });
    const gitlab = adapter(clock, { pacing: {} });
    sim.faults.failNext(1, { status: 429, retryAfterSeconds: 7 });

    await gitlab.runner(url, id, accessToken);

    expect(clock.sleptMs).toEqual([7_000]);
    expect(clock.now() - clock.startMs).toBe(7_000);
    expect(sim.stats.rateLimited).toBe(1);
  });
});

describe('RequestPacer after a 429', () => {
  const URL_A = 'https://gitlab.example.com/api/v4/';
  const URL_B = 'https://other.example.com/api/v4/';
  const retryAfter = (seconds: number) => new Headers({ 'Retry-After': String(seconds) });

  it('a 429 with Retry-After 7 makes the next request to the same url wait 7 s, whatever its credential; another url does not wait', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const pacers = new PacerRegistry(clock);
    const first = await pacers.pacerFor(URL_A, 'glpat-one').acquire();
    first.observe(retryAfter(7), 429);
    first.release();

    await pacers.pacerFor(URL_B, 'glpat-one').acquire();
    expect(clock.sleptMs).toEqual([]);
    await pacers.pacerFor(URL_A, 'glpat-one').acquire();
    await pacers.pacerFor(URL_A, undefined).acquire();

    expect(clock.sleptMs).toEqual([7_000]);
    expect(clock.now() - clock.startMs).toBe(7_000);
  });

  it('halves the requests in flight on a 429 and grows them back by one per run of successes, never above the maximum', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const pacer = new RequestPacer(clock, { maxInFlight: 8 });
    const inFlight: PacedRequest[] = [];
    for (let i = 0; i < 8; i += 1) inFlight.push(await pacer.acquire());
    let ninthStarted = false;
    const ninth = pacer.acquire().then((request) => {
      ninthStarted = true;
      return request;
    });
    await Promise.resolve();
    expect(ninthStarted).toBe(false);

    inFlight[0]!.observe(retryAfter(1), 429);
    expect(pacer.concurrency.limit).toBe(4);
    // The other seven were already in flight: their 429s are the same signal, not seven more halvings.
    for (const request of inFlight.slice(1, 4)) request.observe(retryAfter(1), 429);
    expect(pacer.concurrency.limit).toBe(4);
    for (const request of inFlight) request.release();
    const next = await ninth;
    expect(ninthStarted).toBe(true);
    next.observe(new Headers(), 200);
    next.release();

    // Successes of requests sent after the halving: +1 after each run of `limit` of them.
    const limits: number[] = [];
    for (let i = 0; i < 60; i += 1) {
      const request = await pacer.acquire();
      request.observe(new Headers(), 200);
      request.release();
      limits.push(pacer.concurrency.limit);
    }
    // The ninth request's success was the first of the run: three more make four, and the limit 5.
    expect(limits.slice(0, 5)).toEqual([4, 4, 5, 5, 5]);
    expect(Math.max(...limits)).toBe(8);
    expect(limits.at(-1)).toBe(8);
  });

  it('never lets more than the halved limit start, and never goes below one', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const pacer = new RequestPacer(clock, { maxInFlight: 4 });
    for (let round = 0; round < 5; round += 1) {
      const request = await pacer.acquire();
      request.observe(retryAfter(1), 429);
      request.release();
    }
    expect(pacer.concurrency.limit).toBe(1);

    const only = await pacer.acquire();
    let secondStarted = false;
    const second = pacer.acquire().then((request) => {
      secondStarted = true;
      return request;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondStarted).toBe(false);
    only.release();
    (await second).release();
    expect(pacer.concurrency).toMatchObject({ limit: 1, inFlight: 0, max: 4 });
  });

  it('works with no header at all: 200s never wait, a bare 429 holds back 1 s, then 2 s for the next in a row', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const pacer = new RequestPacer(clock);
    for (let i = 0; i < 50; i += 1) {
      const request = await pacer.acquire();
      request.observe(new Headers(), 200);
      request.release();
    }
    expect(clock.sleptMs).toEqual([]);

    const first = await pacer.acquire();
    first.observe(new Headers(), 429);
    first.release();
    const second = await pacer.acquire();
    second.observe(new Headers(), 429);
    second.release();
    const third = await pacer.acquire();
    third.observe(new Headers(), 200);
    third.release();
    const fourth = await pacer.acquire();
    fourth.observe(new Headers(), 429);
    fourth.release();
    await pacer.acquire();

    expect(clock.sleptMs).toEqual([1_000, 2_000, 1_000]);
    expect(pacer.state).toBeUndefined();
  });

  it('cuts a Retry-After longer than maxHoldMs', async () => {
    const clock = new TestClock({ start: START_MS }).inMs;
    const pacer = new RequestPacer(clock, { maxHoldMs: 60_000 });
    const request = await pacer.acquire();
    request.observe(retryAfter(3600), 429);
    request.release();

    await pacer.acquire();

    expect(clock.sleptMs).toEqual([60_000]);
  });
});
