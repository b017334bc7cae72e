import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { blockSize, DynamoDbRateBudget, RATE_BUDGET_PARTITION_PREFIX, RATE_BUDGET_SORT_KEY } from '../../../src/adapters/aws/dynamodb-rate-budget.ts';
import { RequestPacer } from '../../../src/adapters/gitlab/gitlab-pacing.ts';
import { RateBudgetDeferredError } from '../../../src/core/errors.ts';
import { FakeDynamoTable } from '../../support/fake-dynamodb.ts';
import { TestClock } from '../../support/test-clock.ts';

const URL = 'https://gitlab.example.com/';
const MINUTE = 60_000;

/** Epoch ms, a second into a minute: several workers share the clock, and a sleep ends at its moment (TestClock). */
const START_MS = 10 * MINUTE + 1_000;
type EpochMsClock = TestClock['inMs'];

let table: FakeDynamoTable;
afterEach(() => table?.mock.restore());

function budget(clock: EpochMsClock, options: { requestsPerMinute?: number; workers?: number; deadline?: () => number | undefined } = {}) {
  return new DynamoDbRateBudget({
    client: table.client,
    tableName: 'ledger',
    clock,
    requestsPerMinute: options.requestsPerMinute,
    workers: options.workers ?? 4,
    deadline: options.deadline ?? (() => undefined),
  });
}

/** `count` requests through `b`, each stamped with the clock when the budget let it go. */
async function requests(b: DynamoDbRateBudget, clock: EpochMsClock, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i += 1) {
    await b.take(URL);
    times.push(clock.now());
  }
  return times;
}

const perWindow = (times: number[]) => {
  const counts = new Map<number, number>();
  for (const t of times) counts.set(Math.floor(t / MINUTE), (counts.get(Math.floor(t / MINUTE)) ?? 0) + 1);
  return [...counts.values()];
};

describe('the GitLab rate budget the scan workers share', () => {
  it('lets four workers together send no more than the budget in any minute of the epoch', async () => {
    table = new FakeDynamoTable();
    const clock = new TestClock({ start: START_MS }).inMs;
    const workers = Array.from({ length: 4 }, () => budget(clock, { requestsPerMinute: 120 }));
    const all = (await Promise.all(workers.map((w) => requests(w, clock, 90)))).flat();
    expect(all).toHaveLength(360);
    for (const count of perWindow(all)) expect(count).toBeLessThanOrEqual(120);
    // 360 requests at 120 a minute: three windows, the first one starting at the clock's start.
    expect(perWindow(all).length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...all) - Math.min(...all)).toBeLessThan(4 * MINUTE);
  });

  it('claims requests in blocks, so the table sees a write per block rather than per request', async () => {
    table = new FakeDynamoTable();
    const clock = new TestClock({ start: START_MS }).inMs;
    const b = budget(clock, { requestsPerMinute: 600, workers: 2 });
    await requests(b, clock, 60);
    expect(blockSize(600, 2)).toBe(30);
    expect(table.mock.commandCalls(UpdateCommand).length).toBeLessThanOrEqual(3);
    expect(table.items.get(`${RATE_BUDGET_PARTITION_PREFIX}${URL}|${RATE_BUDGET_SORT_KEY}`)).toMatchObject({ used: 60 });
  });

  it('holds every worker back after one of them got a 429, until its Retry-After', async () => {
    table = new FakeDynamoTable();
    const clock = new TestClock({ start: START_MS }).inMs;
    const [first, second] = [budget(clock, { requestsPerMinute: 1_000 }), budget(clock, { requestsPerMinute: 1_000 })];
    await first!.take(URL);
    const start = clock.now();
    first!.rateLimited(URL, 30_000, undefined);
    await new Promise((resolve) => setImmediate(resolve));
    // The other worker has never seen a 429, yet waits: it hears of the hold at its first claim.
    await second!.take(URL);
    expect(clock.now()).toBeGreaterThanOrEqual(start + 30_000);
  });

  it('learns GitLab\'s limit from a 429\'s RateLimit-Limit and keeps to 90 % of it from then on', async () => {
    table = new FakeDynamoTable();
    const clock = new TestClock({ start: START_MS }).inMs;
    const [first, second] = [budget(clock, { workers: 2 }), budget(clock, { workers: 2 })];
    await first!.take(URL);
    first!.rateLimited(URL, 1_000, 100);
    await new Promise((resolve) => setImmediate(resolve));
    // No configured budget: after the hold, the learned 90 a minute is the limit of both workers together.
    const all = (await Promise.all([requests(first!, clock, 135), requests(second!, clock, 135)])).flat();
    for (const count of perWindow(all)) expect(count).toBeLessThanOrEqual(90);
  });

  it('defers, sending nothing, when the next request would only fit after the invocation\'s deadline', async () => {
    table = new FakeDynamoTable();
    const clock = new TestClock({ start: START_MS }).inMs;
    const deadline = clock.now() + 5_000;
    const b = budget(clock, { requestsPerMinute: 10, workers: 2, deadline: () => deadline });
    const sent = await (async () => {
      let n = 0;
      try {
        for (;;) {
          await b.take(URL);
          n += 1;
        }
      } catch (error) {
        expect(error).toBeInstanceOf(RateBudgetDeferredError);
        expect((error as RateBudgetDeferredError).nextSlotAtMs).toBe(11 * MINUTE);
        expect((error as Error).message).toContain(URL);
        return n;
      }
    })();
    expect(sent).toBe(10);
    expect(clock.now()).toBeLessThanOrEqual(deadline);
  });

  it("defers a request, sleeping nothing, when its worker's own 429 hold would outlast the deadline", async () => {
    table = new FakeDynamoTable();
    const clock = new TestClock({ start: START_MS }).inMs;
    const deadline = clock.now() + 10_000;
    const pacer = new RequestPacer(clock, { maxHoldMs: 60_000, shared: budget(clock, { requestsPerMinute: 600, deadline: () => deadline }) }, undefined, URL);
    const first = await pacer.acquire();
    first.observe(new Headers({ 'retry-after': '50' }), 429);
    first.release();
    const start = clock.now();
    await expect(pacer.acquire()).rejects.toBeInstanceOf(RateBudgetDeferredError);
    expect(clock.now()).toBe(start);
  });

  it("shares a 429's whole Retry-After with the other workers, not the 60 s this worker waits at most", async () => {
    table = new FakeDynamoTable();
    const clock = new TestClock({ start: START_MS }).inMs;
    const pacer = new RequestPacer(clock, { maxHoldMs: 60_000, shared: budget(clock, { requestsPerMinute: 600 }) }, undefined, URL);
    const request = await pacer.acquire();
    const at = clock.now();
    // A self-managed GitLab's hour-long window: Retry-After up to the end of the hour.
    request.observe(new Headers({ 'retry-after': '1800', 'ratelimit-limit': '120' }), 429);
    await new Promise((resolve) => setImmediate(resolve));
    expect(table.items.get(`${RATE_BUDGET_PARTITION_PREFIX}${URL}|${RATE_BUDGET_SORT_KEY}`)).toMatchObject({ holdUntil: at + 1_800_000, learned: 120 });
  });

  it('refuses a budget that is not a positive whole number of requests', () => {
    table = new FakeDynamoTable();
    expect(() => budget(new TestClock({ start: START_MS }).inMs, { requestsPerMinute: 0 })).toThrow(/requestsPerMinute/);
    expect(() => budget(new TestClock({ start: START_MS }).inMs, { workers: 0 })).toThrow(/workers/);
  });
});
