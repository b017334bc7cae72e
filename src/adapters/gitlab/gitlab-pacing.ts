/**
 * Client-side pacing of GitLab requests, so that a fleet-wide scan finishes under GitLab's rate limit
 * whether or not GitLab tells the client where it stands.
 *
 * GitLab counts requests per user (authenticated: the access token) or per IP (unauthenticated: reset by
 * token, verify) in fixed windows (Rack::Attack, 60 s on GitLab.com: 2,000 authenticated API requests a
 * minute per user). **A self-managed GitLab sends `RateLimit-*` only with the 429** (lib/gitlab/rack_attack.rb,
 * `throttled_response_headers`), together with `Retry-After` (seconds to the window's end); only an instance
 * with the feature flag `rate_limiting_headers_for_unthrottled_requests` sends them on every reply. So the
 * client usually learns of the limit by hitting it, and the pacing has to work from the 429 alone:
 *
 * 1. **Per GitLab url** (a `UrlGate`, shared by every credential of that url: a 429 does not say which of
 *    GitLab's throttles answered, and they all sit behind the same server):
 *    - **Retry-After is honoured**: after a 429 no request to that url starts before `Retry-After` has
 *      passed (else `RateLimit-Reset`; with neither, 1 s, 2 s, 4 s … for 429s in a row), capped at
 *      `maxHoldMs`. The request that got the 429 and every other request to the url wait alike.
 *    - **Requests in flight adapt (AIMD)**: at most `limit` requests to the url are in flight; `limit`
 *      starts at `maxInFlight`, halves on a 429 (never below 1), and grows by one after each `limit`
 *      successes with no 429 between (never above `maxInFlight`). 429s of requests that were already in flight when the limit
 *      was last halved do not halve it again: a burst of 429s from one exhausted window is one signal.
 *      Waiting requests get a slot in the order they asked for it.
 * 2. **The headers**, when GitLab sends them (always on unless `fromHeaders: false`). After every reply
 *    that carries RateLimit-Remaining and RateLimit-Reset, the pacer of that (url, credential) knows how
 *    many requests are left in the window: GitLab's figure minus the requests this pacer sent after the
 *    one that reply answers (they are in flight, GitLab has not counted them in that figure yet). While
 *    more than `slowDownShare` (20 %) of the limit is left, requests go at once. Below that, they are
 *    spaced evenly so that what is left above a reserve of `reserveShare` (5 % of the limit, for other
 *    clients of the same token) lasts until the reset. At the reserve, every request waits for the reset.
 *    A 429 empties the window at once. The reset is taken relative to the reply's `Date` header (GitLab's
 *    clock), so a skewed local clock does not matter; `Date` has a resolution of 1 s, which makes the wait
 *    at most 1 s longer.
 * 3. **A budget** (`requestsPerMinute`, optional): requests start at least 60,000 / budget ms apart, to stay
 *    under a limit known in advance without a single 429, or to leave most of a shared token's limit to others.
 *
 * A window that ended is forgotten: the next reply describes the new one. Retries go through the pacer
 * like first attempts. The clock (`now`, `sleep`) is injected: nothing here reads the time itself.
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
  /** Most requests in flight to one GitLab url: where the adaptive limit starts and the most it grows back to. Default 32. */
  maxInFlight?: number;
  /** The longest a 429 holds back its GitLab url (a longer Retry-After is cut to this). Default 60,000; the adapter passes its maxRetryWaitMs. */
  maxHoldMs?: number;
  /**
   * 4. **A budget shared with other processes** (the scan's Lambda workers, dynamodb-rate-budget.ts): after
   *    this process's own waits, every request takes one from the url's shared budget, and a 429 holds
   *    every process back. Per url, whatever the credential.
   */
  shared?: SharedRateBudget;
}

/** A GitLab rate budget that several processes draw from (the scan workers of one fleet). */
export interface SharedRateBudget {
  /** Resolves when one more request to `baseUrl` fits the budget; may throw (RateBudgetDeferredError) instead of waiting past a deadline. */
  take(baseUrl: string): Promise<void>;
  /** Before this process waits on its own (a 429's hold, spacing) until `untilMs`: throws RateBudgetDeferredError when that is past the deadline. */
  checkWait(baseUrl: string, untilMs: number): void;
  /** GitLab answered 429: hold every process back `holdMs`, and learn its limit per minute (RateLimit-Limit) when the reply named it. */
  rateLimited(baseUrl: string, holdMs: number, limitPerMinute: number | undefined): void;
}

export const DEFAULT_MAX_IN_FLIGHT = 32;
const DEFAULT_MAX_HOLD_MS = 60_000;
/** The hold after a 429 that names no wait: 1 s, doubled for each 429 in a row on the url. */
const FIRST_BLIND_HOLD_MS = 1_000;

export interface PacingClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/**
 * A handle on one request: `observe` its reply's headers (any status), when there is a reply, then
 * `release` its slot in flight once the reply is read or the attempt failed (idempotent). Release before
 * waiting to retry: a request that waits holds no slot.
 */
export interface PacedRequest {
  observe(headers: Headers, status: number): void;
  release(): void;
}

/**
 * One GitLab url's share of the pacing: the requests in flight (additive increase, multiplicative
 * decrease) and the hold-back after a 429. Every pacer of the url (one per credential) shares it.
 */
export class UrlGate {
  /** Requests allowed in flight now: 1 … max. */
  private allowed: number;
  private inFlight = 0;
  /** Callers waiting for a slot, first come first served; a slot is handed over, not raced for. */
  private readonly waiting: Array<() => void> = [];
  /** Requests started through this gate (the sequence number of the latest). */
  private started = 0;
  /** `started` when the limit was last halved: 429s of requests up to it are the same signal. */
  private halvedAtSeq = 0;
  private successes = 0;
  private blindHolds = 0;
  /** No request to the url starts before this (local clock). */
  holdUntilMs = 0;

  constructor(
    readonly max: number,
    private readonly maxHoldMs: number,
  ) {
    this.allowed = max;
  }

  get state(): { limit: number; inFlight: number; max: number; holdUntilMs: number } {
    return { limit: this.allowed, inFlight: this.inFlight, max: this.max, holdUntilMs: this.holdUntilMs };
  }

  /** Resolves once a slot in flight is this caller's. */
  async enter(): Promise<void> {
    if (this.waiting.length === 0 && this.inFlight < this.allowed) {
      this.inFlight += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  leave(): void {
    this.inFlight -= 1;
    this.handOver();
  }

  /** A request starts now: its sequence number. */
  start(): number {
    this.started += 1;
    return this.started;
  }

  succeeded(seq: number): void {
    this.blindHolds = 0;
    if (seq <= this.halvedAtSeq) return;
    this.successes += 1;
    if (this.successes < this.allowed) return;
    this.successes = 0;
    if (this.allowed < this.max) {
      this.allowed += 1;
      this.handOver();
    }
  }

  /** A 429 to request `seq`: hold the url back `holdMs` (undefined: GitLab named no wait), and halve. */
  rateLimited(seq: number, holdMs: number | undefined, nowMs: number): void {
    const hold = holdMs ?? FIRST_BLIND_HOLD_MS * 2 ** this.blindHolds++;
    this.holdUntilMs = Math.max(this.holdUntilMs, nowMs + Math.min(hold, this.maxHoldMs));
    this.successes = 0;
    if (seq > this.halvedAtSeq) {
      this.allowed = Math.max(1, Math.floor(this.allowed / 2));
      this.halvedAtSeq = this.started;
    }
  }

  private handOver(): void {
    while (this.waiting.length > 0 && this.inFlight < this.allowed) {
      this.inFlight += 1;
      this.waiting.shift()!();
    }
  }
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

  private readonly gate: UrlGate;
  private readonly shared: { take(): Promise<void>; checkWait(untilMs: number): void; rateLimited(holdMs: number, limitPerMinute: number | undefined): void } | undefined;

  /** `gate`: the url's gate, shared with the url's other pacers; by default one of its own. `baseUrl`: the url, for a shared budget. */
  constructor(
    private readonly clock: PacingClock,
    options: PacingOptions = {},
    gate?: UrlGate,
    baseUrl = '',
  ) {
    const budget = options.requestsPerMinute;
    if (budget !== undefined && !(Number.isFinite(budget) && budget > 0)) throw new RangeError('requestsPerMinute must be a positive number');
    this.intervalMs = budget === undefined ? 0 : 60_000 / budget;
    this.slowDownShare = options.slowDownShare ?? 0.2;
    this.reserveShare = options.reserveShare ?? 0.05;
    this.fromHeaders = options.fromHeaders ?? true;
    this.gate = gate ?? newGate(options);
    const shared = options.shared;
    this.shared = shared && {
      take: () => shared.take(baseUrl),
      checkWait: (untilMs) => shared.checkWait(baseUrl, untilMs),
      rateLimited: (holdMs, limit) => shared.rateLimited(baseUrl, holdMs, limit),
    };
  }

  /** Waits for a slot in flight and until a request may start, and counts it. */
  async acquire(): Promise<PacedRequest> {
    await this.gate.enter();
    let now = this.clock.now();
    try {
      // A sleep counts as having waited its time even if `now` did not move (a test's instant sleep).
      for (let wait = this.waitMs(now); wait > 0; wait = this.waitMs(now)) {
        // With a shared budget, a wait past the invocation's deadline defers the request instead.
        this.shared?.checkWait(now + wait);
        await this.clock.sleep(wait);
        now = Math.max(this.clock.now(), now + wait);
      }
      // Last, after this process's own waits: a request taken from the shared budget is spent.
      if (this.shared) {
        await this.shared.take();
        now = Math.max(this.clock.now(), now);
      }
    } catch (error) {
      this.gate.leave();
      throw error;
    }
    const spacing = Math.max(this.intervalMs, this.slowDownSpacingMs(now));
    this.nextSlotMs = Math.max(now, this.nextSlotMs) + spacing;
    this.sent += 1;
    const seq = this.sent;
    const urlSeq = this.gate.start();
    let released = false;
    return {
      observe: (headers, status) => this.observe(seq, urlSeq, headers, status),
      release: () => {
        if (released) return;
        released = true;
        this.gate.leave();
      },
    };
  }

  /** The url's requests in flight: the adaptive limit, how many are in flight, the ceiling, the hold-back. */
  get concurrency(): { limit: number; inFlight: number; max: number; holdUntilMs: number } {
    return this.gate.state;
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
    return Math.max(this.gate.holdUntilMs - now, this.headerWaitMs(now));
  }

  private headerWaitMs(now: number): number {
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

  private observe(seq: number, urlSeq: number, headers: Headers, status: number): void {
    const now = this.clock.now();
    if (status === 429) {
      const holdMs = holdAfter429Ms(headers, now);
      this.gate.rateLimited(urlSeq, holdMs, now);
      // The other workers hold back the whole Retry-After (up to the end of an hour-long window on a
      // self-managed GitLab), not this process's cap of it: waiting that out is what deferral is for.
      this.shared?.rateLimited(holdMs ?? Math.max(0, this.gate.holdUntilMs - now), integerHeader(headers, 'ratelimit-limit'));
    }
    else if (status >= 200 && status < 300) this.gate.succeeded(urlSeq);
    if (!this.fromHeaders) return;
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

function newGate(options: PacingOptions): UrlGate {
  const max = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('maxInFlight must be an integer ≥ 1');
  const maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
  if (!(Number.isFinite(maxHoldMs) && maxHoldMs >= 0)) throw new RangeError('maxHoldMs must be a number ≥ 0');
  return new UrlGate(max, maxHoldMs);
}

/**
 * How long a 429 asks to wait, in ms: `Retry-After` (delta-seconds, or an HTTP date read against the
 * reply's `Date`), else `RateLimit-Reset`; undefined when it names no wait.
 */
export function holdAfter429Ms(headers: Headers, localNowMs: number): number | undefined {
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - serverNowMs(headers, localNowMs));
  }
  return resetDelayMs(headers, localNowMs);
}

function serverNowMs(headers: Headers, localNowMs: number): number {
  const serverDate = Date.parse(headers.get('date') ?? '');
  return Number.isNaN(serverDate) ? localNowMs : serverDate;
}

/** Milliseconds to the end of GitLab's window, on GitLab's clock (its Date header) when it sent one. */
function resetDelayMs(headers: Headers, localNowMs: number): number | undefined {
  const reset = headers.get('ratelimit-reset')?.trim();
  if (!reset || !/^\d+$/.test(reset)) return undefined;
  const seconds = Number(reset);
  // GitLab sends an epoch; some proxies send seconds from now. Tell them apart by size.
  if (seconds <= 1_000_000_000) return seconds * 1000;
  return Math.max(0, seconds * 1000 - serverNowMs(headers, localNowMs));
}

function integerHeader(headers: Headers, name: string): number | undefined {
  const value = headers.get(name)?.trim();
  return value && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * The pacers of one adapter: one per (GitLab url, credential) for the headers and the budget (GitLab
 * counts each user, access token, and each IP, no token, on its own), sharing one `UrlGate` per url for
 * the hold-back after a 429 and the requests in flight. The oldest of each is dropped beyond `max`.
 */
export class PacerRegistry {
  private readonly pacers = new Map<string, RequestPacer>();
  private readonly gates = new Map<string, UrlGate>();

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
      pacer = new RequestPacer(this.clock, this.options, this.gateFor(baseUrl), baseUrl);
      remember(this.pacers, key, pacer, this.max);
    }
    return pacer;
  }

  private gateFor(baseUrl: string): UrlGate {
    let gate = this.gates.get(baseUrl);
    if (!gate) {
      gate = newGate(this.options);
      remember(this.gates, baseUrl, gate, this.max);
    }
    return gate;
  }
}

function remember<T>(map: Map<string, T>, key: string, value: T, max: number): void {
  if (map.size >= max) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  map.set(key, value);
}
