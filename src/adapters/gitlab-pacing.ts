/**
 * Client-side pacing of GitLab requests, so that a fleet-wide scan slows down before GitLab's rate limit
 * answers 429 rather than storming into it and backing off.
 *
 * GitLab counts requests per user (authenticated: the access token) or per IP (unauthenticated: reset by
 * token, verify) in fixed windows (Rack::Attack, 60 s on GitLab.com: 2,000 authenticated requests a
 * minute), and reports where a caller stands on its replies:
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (epoch seconds of the window's end).
 * One `RequestPacer` per (GitLab url, access token or none) paces by two rules, each optional:
 *
 * 1. **The headers** (always on; nothing to configure). After every reply that carries
 *    RateLimit-Remaining and RateLimit-Reset, the pacer knows how many requests are left in the window:
 *    GitLab's figure minus the requests this pacer sent after the one that reply answers (they are in
 *    flight, GitLab has not counted them in that figure yet). While more than `slowDownShare` (20 %) of
 *    the limit is left, requests go at once. Below that, they are spaced evenly so that what is left above
 *    a reserve of `reserveShare` (5 % of the limit, for other clients of the same token) lasts until the
 *    reset. At the reserve, every request waits for the reset. A 429 empties the window at once, so
 *    requests already queued wait for the reset too instead of each collecting its own 429.
 *    The reset is taken relative to the reply's `Date` header (GitLab's clock), so a skewed local clock
 *    does not matter; `Date` has a resolution of 1 s, which makes the wait at most 1 s longer.
 * 2. **A budget** (`requestsPerMinute`, optional): requests start at least 60,000 / budget ms apart, for
 *    a GitLab that sends no RateLimit headers, or to leave most of a shared token's limit to others.
 *
 * A window that ended is forgotten: the next reply describes the new one. Without headers and without a
 * budget, the pacer never waits. Retries go through the pacer like first attempts.
 */

export interface PacingOptions {
  /** Follow GitLab's RateLimit-* headers (rule 1). Default true. */
  fromHeaders?: boolean;
  /** A budget per GitLab url and access token: requests start at least 60,000 / budget ms apart. */
  requestsPerMinute?: number;
  /** Share of the window's limit below which requests are spread out until the reset. Default 0.2. */
  slowDownShare?: number;
  /** Share of the limit kept for other clients of the same token: at this many left, wait for the reset. Default 0.05. */
  reserveShare?: number;
}

export interface PacingClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** A handle on one request: `observe` its reply's headers (any status), when there is a reply. */
export interface PacedRequest {
  observe(headers: Headers, status: number): void;
}

interface WindowState {
  limit: number;
  /** Requests left in the window, as of `atSeq` (every request with seq ≤ atSeq counted). */
  remaining: number;
  atSeq: number;
  /** Local time at which GitLab's window ends. */
  resetAtMs: number;
}

export class RequestPacer {
  private readonly intervalMs: number;
  private readonly slowDownShare: number;
  private readonly reserveShare: number;
  private readonly fromHeaders: boolean;
  /** Requests started through this pacer so far (the sequence number of the latest). */
  private sent = 0;
  /** Earliest start of the next request under the budget or the slow-down spacing. */
  private nextSlotMs = 0;
  private window: WindowState | undefined;

  constructor(
    private readonly clock: PacingClock,
    options: PacingOptions = {},
  ) {
    const budget = options.requestsPerMinute;
    if (budget !== undefined && !(Number.isFinite(budget) && budget > 0)) throw new RangeError('requestsPerMinute must be a positive number');
    this.intervalMs = budget === undefined ? 0 : 60_000 / budget;
    this.slowDownShare = options.slowDownShare ?? 0.2;
    this.reserveShare = options.reserveShare ?? 0.05;
    this.fromHeaders = options.fromHeaders ?? true;
  }

  /** Waits until a request may start, and counts it. */
  async acquire(): Promise<PacedRequest> {
    // A sleep counts as having waited its time even if `now` did not move (a test's instant sleep).
    let now = this.clock.now();
    for (let wait = this.waitMs(now); wait > 0; wait = this.waitMs(now)) {
      await this.clock.sleep(wait);
      now = Math.max(this.clock.now(), now + wait);
    }
    const spacing = Math.max(this.intervalMs, this.slowDownSpacingMs(now));
    this.nextSlotMs = Math.max(now, this.nextSlotMs) + spacing;
    this.sent += 1;
    const seq = this.sent;
    return { observe: (headers, status) => this.observe(seq, headers, status) };
  }

  /** What the pacer knows of GitLab's window, for logs and tests. */
  get state(): { limit: number; left: number; resetInMs: number } | undefined {
    const w = this.window;
    if (!w) return undefined;
    return { limit: w.limit, left: this.left(w), resetInMs: Math.max(0, w.resetAtMs - this.clock.now()) };
  }

  private left(w: WindowState): number {
    return w.remaining - (this.sent - w.atSeq);
  }

  private waitMs(now: number): number {
    const w = this.window;
    if (w && now >= w.resetAtMs) this.window = undefined;
    else if (w && this.left(w) <= this.reserve(w)) return w.resetAtMs - now;
    return this.nextSlotMs - now;
  }

  private reserve(w: WindowState): number {
    return Math.floor(w.limit * this.reserveShare);
  }

  /** Below the slow-down share: spread what is left above the reserve evenly until the reset. */
  private slowDownSpacingMs(now: number): number {
    const w = this.window;
    if (!w) return 0;
    const left = this.left(w);
    if (left > w.limit * this.slowDownShare) return 0;
    const usable = left - this.reserve(w);
    return usable <= 0 ? 0 : (w.resetAtMs - now) / usable;
  }

  private observe(seq: number, headers: Headers, status: number): void {
    if (!this.fromHeaders) return;
    const now = this.clock.now();
    const remaining = integerHeader(headers, 'ratelimit-remaining');
    const resetInMs = resetDelayMs(headers, now);
    if (resetInMs === undefined) return;
    const limit = integerHeader(headers, 'ratelimit-limit') ?? this.window?.limit ?? remaining;
    const left = status === 429 ? 0 : remaining;
    if (left === undefined || limit === undefined) return;
    const resetAtMs = now + resetInMs;
    const w = this.window;
    // A reply about a later window replaces what we knew; about the same one, the lower count wins.
    const sameWindow = w !== undefined && Math.abs(w.resetAtMs - resetAtMs) < 1_000;
    if (!sameWindow && w !== undefined && resetAtMs < w.resetAtMs) return;
    const candidate: WindowState = { limit, remaining: left, atSeq: seq, resetAtMs: sameWindow ? Math.max(w.resetAtMs, resetAtMs) : resetAtMs };
    if (!sameWindow || this.left(candidate) < this.left(w)) this.window = candidate;
  }
}

/** Milliseconds to the end of GitLab's window, on GitLab's clock (its Date header) when it sent one. */
function resetDelayMs(headers: Headers, localNowMs: number): number | undefined {
  const reset = headers.get('ratelimit-reset')?.trim();
  if (!reset || !/^\d+$/.test(reset)) return undefined;
  const seconds = Number(reset);
  // GitLab sends an epoch; some proxies send seconds from now. Tell them apart by size.
  if (seconds <= 1_000_000_000) return seconds * 1000;
  const serverDate = Date.parse(headers.get('date') ?? '');
  const serverNowMs = Number.isNaN(serverDate) ? localNowMs : serverDate;
  return Math.max(0, seconds * 1000 - serverNowMs);
}

function integerHeader(headers: Headers, name: string): number | undefined {
  const value = headers.get(name)?.trim();
  return value && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * The pacers of one adapter, one per (GitLab url, credential): GitLab limits each user (access token)
 * and each IP (no token) on its own. The oldest is dropped beyond `max`.
 */
export class PacerRegistry {
  private readonly pacers = new Map<string, RequestPacer>();

  constructor(
    private readonly clock: PacingClock,
    private readonly options: PacingOptions = {},
    private readonly max = 64,
  ) {
    // Fail at construction, not at the first request.
    new RequestPacer(clock, options);
  }

  pacerFor(baseUrl: string, credential: string | undefined): RequestPacer {
    const key = `${baseUrl}\u0000${credential ?? ''}`;
    let pacer = this.pacers.get(key);
    if (!pacer) {
      if (this.pacers.size >= this.max) {
        const oldest = this.pacers.keys().next().value;
        if (oldest !== undefined) this.pacers.delete(oldest);
      }
      pacer = new RequestPacer(this.clock, this.options);
      this.pacers.set(key, pacer);
    }
    return pacer;
  }
}
