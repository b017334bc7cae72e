/**
 * GitLab's request throttle (Rack::Attack): a fixed 60-second window per caller, aligned to the
 * minute of the simulated clock, so a test that advances `now` also moves past a window.
 */

const WINDOW_MS = 60_000;

export interface RateLimit {
  requestsPerMinute: number;
}

export interface RateLimitVerdict {
  limited: boolean;
  /** Seconds to the end of the window, at least 1. */
  retryAfterSeconds: number;
  /**
   * RateLimit-* headers as GitLab's throttled responder builds them (lib/gitlab/rack_attack.rb), plus
   * Retry-After when limited. The simulator puts them on the 429 only, unless told otherwise.
   */
  headers: Record<string, string>;
}

/** Counts hits per key in fixed windows aligned to multiples of 60 s. O(1) per hit. */
export class FixedWindowCounter {
  private readonly windows = new Map<string, { index: number; count: number }>();

  hit(key: string, nowMs: number): { count: number; windowEndMs: number } {
    const index = Math.floor(nowMs / WINDOW_MS);
    let window = this.windows.get(key);
    if (!window || window.index !== index) {
      window = { index, count: 0 };
      this.windows.set(key, window);
    }
    window.count += 1;
    return { count: window.count, windowEndMs: (index + 1) * WINDOW_MS };
  }

  clear(): void {
    this.windows.clear();
  }
}

export function validateRateLimit(limit: RateLimit | null | undefined): RateLimit | null {
  if (limit === null || limit === undefined) return null;
  if (!Number.isInteger(limit.requestsPerMinute) || limit.requestsPerMinute < 1) {
    throw new RangeError('rateLimit.requestsPerMinute must be a positive integer');
  }
  return { requestsPerMinute: limit.requestsPerMinute };
}

export class RateLimiter {
  private limit: RateLimit | null;
  private readonly counter = new FixedWindowCounter();

  constructor(limit: RateLimit | null | undefined) {
    this.limit = validateRateLimit(limit);
  }

  /** A new limit starts from empty windows, so a test that sets one mid-run is not throttled by the past. */
  setLimit(limit: RateLimit | null): void {
    this.limit = validateRateLimit(limit);
    this.counter.clear();
  }

  /** Counts the request; undefined when no limit is set. */
  check(caller: string, now: Date): RateLimitVerdict | undefined {
    if (this.limit === null) return undefined;
    const nowMs = now.getTime();
    const { count, windowEndMs } = this.counter.hit(caller, nowMs);
    const limit = this.limit.requestsPerMinute;
    const limited = count > limit;
    const retryAfterSeconds = Math.max(1, Math.ceil((windowEndMs - nowMs) / 1000));
    const headers: Record<string, string> = {
      'RateLimit-Name': caller === 'anonymous' ? 'throttle_unauthenticated_api' : 'throttle_authenticated_api',
      'RateLimit-Limit': String(limit),
      'RateLimit-Observed': String(count),
      'RateLimit-Remaining': String(Math.max(0, limit - count)),
      'RateLimit-Reset': String(Math.floor(windowEndMs / 1000)),
      'RateLimit-ResetTime': new Date(windowEndMs).toUTCString(),
    };
    if (limited) headers['Retry-After'] = String(retryAfterSeconds);
    return { limited, retryAfterSeconds, headers };
  }
}
