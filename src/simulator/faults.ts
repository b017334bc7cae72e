/**
 * Fault injection for tests: failed replies, lost replies and hanging requests. Faults are consumed
 * by the next matching requests in arrival order and take precedence over the rate limit.
 */

/**
 * A path filter. A string matches the request path exactly, with or without the `/api/v4` prefix
 * (`'/runners/reset_authentication_token'`); a RegExp is tested against the full path
 * (`/api/v4/...`, no query string). No filter matches every request.
 */
export type PathFilter = string | RegExp;

export interface FailOptions {
  /** Default 500. */
  status?: number;
  path?: PathFilter;
  /** Sent as `Retry-After` when given. */
  retryAfterSeconds?: number;
  /** Only requests with this HTTP method (upper case); default any. */
  method?: string;
}

export interface SimulatorFaults {
  /** The next `count` matching requests get `status` (default 500) and change nothing. */
  failNext(count: number, options?: FailOptions): void;
  /** The next reset (by token or by id) is applied, then its socket is destroyed with no reply. */
  dropNextReset(): void;
  /** The next `count` matching requests never get a reply (until stop). */
  hangNext(count: number, options?: { path?: PathFilter }): void;
}

export interface Failure {
  status: number;
  retryAfterSeconds: number | undefined;
}

interface Armed<T> {
  remaining: number;
  path: PathFilter | undefined;
  method?: string;
  value: T;
}

export class FaultInjector implements SimulatorFaults {
  private failures: Armed<Failure>[] = [];
  private hangs: Armed<true>[] = [];
  private dropResets = 0;

  failNext(count: number, options: FailOptions = {}): void {
    const status = options.status ?? 500;
    if (!Number.isInteger(status) || status < 100 || status > 599) throw new RangeError('failNext: status must be an HTTP status');
    if (options.retryAfterSeconds !== undefined && !(options.retryAfterSeconds >= 0)) {
      throw new RangeError('failNext: retryAfterSeconds must be >= 0');
    }
    this.failures.push({ remaining: checkCount(count), path: options.path, method: options.method, value: { status, retryAfterSeconds: options.retryAfterSeconds } });
  }

  dropNextReset(): void {
    this.dropResets += 1;
  }

  hangNext(count: number, options: { path?: PathFilter } = {}): void {
    this.hangs.push({ remaining: checkCount(count), path: options.path, value: true });
  }

  takeHang(pathname: string): boolean {
    return take(this.hangs, pathname) !== undefined;
  }

  takeFailure(pathname: string, method: string): Failure | undefined {
    return take(this.failures, pathname, method);
  }

  takeDropReset(): boolean {
    if (this.dropResets === 0) return false;
    this.dropResets -= 1;
    return true;
  }

  clear(): void {
    this.failures = [];
    this.hangs = [];
    this.dropResets = 0;
  }
}

function checkCount(count: number): number {
  if (!Number.isInteger(count) || count < 0) throw new RangeError('fault count must be a non-negative integer');
  return count;
}

function take<T>(armed: Armed<T>[], pathname: string, method?: string): T | undefined {
  for (let index = 0; index < armed.length; index++) {
    const entry = armed[index]!;
    if (!matches(entry.path, pathname)) continue;
    if (entry.method !== undefined && entry.method !== method) continue;
    entry.remaining -= 1;
    if (entry.remaining <= 0) armed.splice(index, 1);
    return entry.value;
  }
  return undefined;
}

function matches(filter: PathFilter | undefined, pathname: string): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'string') {
    const normalized = filter.startsWith('/') ? filter : `/${filter}`;
    return pathname === normalized || pathname === `/api/v4${normalized}`;
  }
  filter.lastIndex = 0;
  return filter.test(pathname);
}
