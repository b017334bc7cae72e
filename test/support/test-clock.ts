import type { Clock } from '../../src/core/ports.ts';
import type { RunnerDaemons } from '../../src/simulator/runner-daemons.ts';

export interface TestClockOptions {
  /** Where time starts: ISO 8601 or epoch ms. Default: the real time when the clock is made (it moves only as the test says). */
  start?: string | number;
  /**
   * Awaited before time moves for a sleep: the work real time would not jump over (host processes still
   * running, HTTP replies in flight, the hosts' next gitlab-runner poll). Wait on the work, never on a duration.
   */
  settle?: () => Promise<void>;
}

interface Timer {
  at: number;
  order: number;
  fire: () => void;
}

/**
 * The one clock of the tests (the real one is src/adapters/local/system-clock.ts). Time never moves by
 * itself, so no test depends on the machine's speed:
 * - `advance(ms)` moves it by hand; every timer due by then fires, in time order, with the clock at its moment.
 * - `sleep(ms)` parks the caller on a timer. Once the event loop has run a turn and the settles are done, the
 *   clock jumps to the earliest timer and wakes it, one timer a turn: a sleep ends at the moment it was due
 *   (a discrete-event clock), so several workers sharing the clock wake in the order real time would wake
 *   them, and one caller's back-off waits pass at once. Every sleep is recorded in `sleptMs`.
 * - `now()` is a Date (the core's Clock); `nowMs()` is epoch ms, and `inMs` the same clock for the adapters
 *   whose clock reads epoch ms (GitLab pacing, the DynamoDB rate budget).
 */
export class TestClock implements Clock {
  private ms: number;
  private readonly timers: Timer[] = [];
  private order = 0;
  private driving = false;
  private readonly settles: Array<() => Promise<void>> = [];
  /** Where the clock started, epoch ms. */
  readonly startMs: number;
  /** Every sleep's length, in order. */
  readonly sleptMs: number[] = [];

  constructor(options: TestClockOptions = {}) {
    this.ms = options.start === undefined ? Date.now() : typeof options.start === 'number' ? options.start : Date.parse(options.start);
    this.startMs = this.ms;
    if (options.settle) this.settles.push(options.settle);
  }

  /** Adds work to wait for before time moves for a sleep (see TestClockOptions.settle). */
  settleOn(settle: () => Promise<void>): void {
    this.settles.push(settle);
  }

  readonly now = (): Date => new Date(this.ms);
  readonly nowMs = (): number => this.ms;

  readonly sleep = (ms: number): Promise<void> => {
    this.sleptMs.push(ms);
    return new Promise<void>((wake) => {
      this.addTimer(ms, wake);
      this.drive();
    });
  };

  /** This clock with `now()` in epoch ms: the same time, timers and record. */
  get inMs(): { now: () => number; sleep: (ms: number) => Promise<void>; sleptMs: number[]; startMs: number } {
    return { now: this.nowMs, sleep: this.sleep, sleptMs: this.sleptMs, startMs: this.startMs };
  }

  /** Moves time forward by hand, firing every timer due by then. */
  advance(ms: number): void {
    const until = this.ms + ms;
    for (let next = this.timers[0]; next !== undefined && next.at <= until; next = this.timers[0]) {
      this.timers.shift();
      this.ms = Math.max(this.ms, next.at);
      next.fire();
    }
    this.ms = Math.max(this.ms, until);
  }

  /**
   * Moves the clock a second past the real time, once: what a harness set up in real time (the simulator's
   * runners and their contacts, the adoption) lies before the test's first moment, however long it took.
   */
  startAfterSetup(): void {
    this.advance(Math.max(0, Date.now() - this.ms) + 1_000);
  }

  /** Calls `fire` when the clock reaches now + ms (by advance, or by the sleeps' turns). */
  addTimer(ms: number, fire: () => void): void {
    this.timers.push({ at: this.ms + Math.max(0, ms), order: this.order++, fire });
    this.timers.sort((a, b) => a.at - b.at || a.order - b.order);
  }

  /** Wakes the earliest timer once everything else has had its turn, while any timer waits. */
  private drive(): void {
    if (this.driving) return;
    this.driving = true;
    void (async () => {
      try {
        while (this.timers.length > 0) {
          await new Promise((resolve) => setImmediate(resolve));
          for (const settle of this.settles) await settle();
          const next = this.timers.shift();
          if (!next) break;
          this.ms = Math.max(this.ms, next.at);
          next.fire();
        }
      } finally {
        this.driving = false;
      }
    })();
  }
}

/**
 * Ties the hosts' gitlab-runners (which poll on real timers) to the clock: time moves for a sleep only once
 * some host has polled GitLab again, so a wait for the hosts' contact sees the polls they could make in it,
 * however slow the machine. Until `stopAll`; at least one host must keep running meanwhile.
 */
export function followDaemons(clock: TestClock, daemons: RunnerDaemons): RunnerDaemons {
  let running = true;
  const stopAll = daemons.stopAll.bind(daemons);
  daemons.stopAll = async () => {
    running = false;
    await stopAll();
  };
  clock.settleOn(async () => {
    const mark = daemons.mark();
    while (running && daemons.mark() === mark) await new Promise((resolve) => setTimeout(resolve, 1));
  });
  return daemons;
}
