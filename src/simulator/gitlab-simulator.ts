/**
 * A GitLab REST API v4 simulator on 127.0.0.1 (ephemeral port), built on node:http only. The demo
 * and every integration test use it; it never does any network except listen on 127.0.0.1, and it
 * never writes to stdout or stderr.
 *
 * Choices where GitLab leaves room (see also access-control.ts, faults.ts, rate-limiter.ts):
 * - `GET /runners` lists every runner (GitLab lists the runners the user owns); both lists are
 *   newest first, as GitLab's default `created_at_desc`.
 * - Runner-token calls heartbeat as GitLab's do (runner-token-routes.ts); admin-only rules in access-token-routes.ts.
 * - `revokeToken` behaves like a reset whose reply was lost: the runner gets a new token nobody knows.
 * - `dropNextReset` is consumed by the next reset that succeeds (2xx): it is applied, then its
 *   connection is destroyed without a reply.
 * - Faults are checked before the rate limit; the rate limit before the route. Latency is applied
 *   to every reply, including 429s and injected failures, after the request took effect.
 * - Rate-limit windows follow the simulated clock (`now`), aligned to the minute like Rack::Attack.
 *   `RateLimit-*` headers come with the 429 only, as GitLab's (lib/gitlab/rack_attack.rb), unless
 *   `rateLimitHeadersOnEveryReply` (GitLab's `rate_limiting_headers_for_unthrottled_requests` flag).
 *   `stats.peakRequestsPerMinute` is the most requests one caller made in one such window, counted
 *   whether or not a limit is set.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidInputError } from '../core/errors.ts';
import { accessTokenOf } from './access-control.ts';
import { FaultInjector, type SimulatorFaults } from './faults.ts';
import { FixedWindowCounter, RateLimiter, type RateLimit } from './rate-limiter.ts';
import { notFound, statusMessage, type Reply } from './replies.ts';
import { ParamError, parseParams, readBody } from './request-params.ts';
import { createRouter, type MatchedRoute, type SimulatorSettings } from './routes.ts';
import { SimulatorState, type AccessScope, type AddRunnerInit, type SimulatedRunner } from './simulator-state.ts';

export type { AddRunnerInit, SimulatedManager, SimulatedRunner } from './simulator-state.ts';
export type { SimulatorFaults, FailOptions, PathFilter } from './faults.ts';

export interface SimulatorOptions {
  /** Added before every reply (default 0). */
  latencyMs?: number;
  /** Fixed 60 s window per caller (PRIVATE-TOKEN value, else 'anonymous'); default none. */
  rateLimit?: { requestsPerMinute: number };
  /**
   * Send the `RateLimit-*` headers on every reply under a rate limit, not only on the 429. Default false,
   * as GitLab: Rack::Attack's throttled responder (lib/gitlab/rack_attack.rb, `throttled_response_headers`)
   * adds them to the 429 alone, with `Retry-After`. True is the instance whose admin turned on the feature
   * flag `rate_limiting_headers_for_unthrottled_requests` (GitLab MR 209485, a Rack middleware that adds
   * them to unthrottled replies too).
   */
  rateLimitHeadersOnEveryReply?: boolean;
  /** runner_token_expiration_interval; null/undefined = tokens never expire; < 7200 throws (GitLab's minimum). */
  tokenLifetimeSeconds?: number | null;
  /** Default false: POST /runners answers 410. */
  legacyRegistrationEnabled?: boolean;
  /** The legacy registration token accepted when enabled (none accepted when absent). */
  registrationToken?: string;
  /** Simulated clock, default () => new Date(). */
  now?: () => Date;
  /** The Date response header is now() + skew (for clock checks); default 0. */
  clockSkewMs?: number;
  /** GET /version, default '17.6.0'. */
  version?: string;
}

export interface SimulatorStats {
  requests: number;
  /** Keyed by `METHOD /pattern` (e.g. `POST /runners/:id/reset_authentication_token`), or `unmatched`. */
  byRoute: Record<string, number>;
  /** Replies with status 429 (the rate limit, and 429s injected with failNext). */
  rateLimited: number;
  peakRequestsPerMinute?: number;
}

/** GitLab's minimum runner_token_expiration_interval. */
export const MIN_TOKEN_LIFETIME_SECONDS = 7200;
const DEFAULT_VERSION = '17.6.0';
const SIMULATED_REVISION = '5c2a1e9d0b4';

export class GitLabSimulator {
  readonly faults: SimulatorFaults;
  readonly stats: SimulatorStats = { requests: 0, byRoute: {}, rateLimited: 0, peakRequestsPerMinute: 0 };

  private readonly faultInjector = new FaultInjector();
  private readonly state: SimulatorState;
  private readonly settings: SimulatorSettings;
  private readonly router = createRouter();
  private readonly limiter: RateLimiter;
  private readonly peakCounter = new FixedWindowCounter();
  private readonly now: () => Date;
  private readonly clockSkewMs: number;
  private readonly rateLimitHeadersOnEveryReply: boolean;
  private latencyMs: number;
  private server: Server | undefined;
  private baseUrl: string | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: SimulatorOptions = {}) {
    const lifetime = options.tokenLifetimeSeconds ?? null;
    if (lifetime !== null && !(Number.isFinite(lifetime) && lifetime >= MIN_TOKEN_LIFETIME_SECONDS)) {
      throw new InvalidInputError('SimulatorOptions.tokenLifetimeSeconds', `must be at least ${MIN_TOKEN_LIFETIME_SECONDS} (GitLab's minimum runner_token_expiration_interval) or null`);
    }
    const clockSkewMs = options.clockSkewMs ?? 0;
    if (!Number.isFinite(clockSkewMs)) throw new InvalidInputError('SimulatorOptions.clockSkewMs', 'must be a finite number');
    this.now = options.now ?? (() => new Date());
    this.clockSkewMs = clockSkewMs;
    this.latencyMs = checkLatency(options.latencyMs ?? 0);
    this.limiter = new RateLimiter(options.rateLimit);
    this.rateLimitHeadersOnEveryReply = options.rateLimitHeadersOnEveryReply ?? false;
    this.state = new SimulatorState({ now: this.now, tokenLifetimeSeconds: lifetime });
    this.settings = {
      version: options.version ?? DEFAULT_VERSION,
      revision: SIMULATED_REVISION,
      legacyRegistrationEnabled: options.legacyRegistrationEnabled ?? false,
      registrationToken: options.registrationToken,
    };
    this.faults = this.faultInjector;
  }

  /** Listens on 127.0.0.1, on `port` or an ephemeral one (0, the default); resolves `http://127.0.0.1:PORT` (no /api/v4). */
  async start(port = 0): Promise<string> {
    if (this.server && this.baseUrl) return this.baseUrl;
    const server = createServer((req, res) => this.handle(req, res));
    // No server-side keep-alive timeout: the client closes idle sockets (stop() closes the rest). A
    // server that closes first races a busy client reusing the socket, which then sees ECONNRESET.
    server.keepAliveTimeout = 0;
    server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const listening = (server.address() as AddressInfo).port;
    this.server = server;
    this.baseUrl = `http://127.0.0.1:${listening}`;
    return this.baseUrl;
  }

  /** Closes the server and every open socket, hanging and delayed requests included. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.baseUrl = undefined;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  get url(): string {
    if (!this.baseUrl) throw new Error('GitLabSimulator is not started: call start() first');
    return this.baseUrl;
  }

  addRunner(init?: AddRunnerInit): { id: number; token: string } {
    return this.state.addRunner(init);
  }

  /** Returns a `glpat-…` token. */
  addAccessToken(init: { scopes: AccessScope[]; admin?: boolean }): string {
    return this.state.addAccessToken(init);
  }

  /** A copy of the runner's record, for assertions. */
  runner(id: number): SimulatedRunner | undefined {
    return this.state.snapshot(id);
  }

  /** The ids of every runner that exists, in id order. */
  runnerIds(): number[] {
    return [...this.state.views()].map((runner) => runner.id);
  }

  /** How many runners exist (created, registered or added, and not deleted). */
  get runnerCount(): number {
    return this.state.runnerCount;
  }

  /** The runner a token belongs to if GitLab would accept it now (not expired, not revoked). */
  runnerIdForToken(token: string): number | undefined {
    return this.state.runnerIdForToken(token);
  }

  accepts(token: string): boolean {
    return this.state.runnerIdForToken(token) !== undefined;
  }

  /** token_expires_at = now - 1 s. Throws RangeError for an unknown runner. */
  expireToken(runnerId: number): void {
    this.state.expireToken(runnerId);
  }

  /** The token stops working (as after a reset whose reply was lost). Throws RangeError for an unknown runner. */
  revokeToken(runnerId: number): void {
    this.state.revokeToken(runnerId);
  }

  setLatency(ms: number): void {
    this.latencyMs = checkLatency(ms);
  }

  /** A new limit (or none) starts from empty windows. */
  setRateLimit(limit: RateLimit | null): void {
    this.limiter.setLimit(limit);
  }

  resetStats(): void {
    this.stats.requests = 0;
    this.stats.rateLimited = 0;
    this.stats.peakRequestsPerMinute = 0;
    for (const key of Object.keys(this.stats.byRoute)) delete this.stats.byRoute[key];
    this.peakCounter.clear();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.process(req, res).catch(() => {
      if (!res.headersSent && !res.destroyed) this.reply(res, statusMessage(500));
    });
  }

  private async process(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = this.router.match(method, url.pathname);
    const caller = accessTokenOf(req.headers) ?? 'anonymous';
    const now = this.now();
    this.count(route, caller, now);

    let rawBody: string;
    try {
      rawBody = await readBody(req);
    } catch (error) {
      if (error instanceof ParamError) this.reply(res, error.reply);
      else req.socket.destroy();
      return;
    }

    if (this.faultInjector.takeHang(url.pathname)) return;
    const failure = this.faultInjector.takeFailure(url.pathname, req.method ?? 'GET');
    if (failure) {
      const headers: Record<string, string> = failure.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(failure.retryAfterSeconds) };
      this.reply(res, { ...statusMessage(failure.status), headers });
      return;
    }

    const verdict = this.limiter.check(caller, now);
    if (verdict?.limited) {
      this.reply(res, { status: 429, text: 'Retry later\n', headers: verdict.headers });
      return;
    }

    const reply = route ? this.route(route, req, url, rawBody) : notFound();
    // GitLab sends RateLimit-* with the 429 only (lib/gitlab/rack_attack.rb), unless the instance turned
    // on `rate_limiting_headers_for_unthrottled_requests`: see SimulatorOptions.rateLimitHeadersOnEveryReply.
    if (verdict && this.rateLimitHeadersOnEveryReply) reply.headers = { ...verdict.headers, ...reply.headers };
    if (route?.spec.resetsToken && reply.status >= 200 && reply.status < 300 && this.faultInjector.takeDropReset()) {
      this.afterLatency(() => req.socket.destroy());
      return;
    }
    this.reply(res, reply);
  }

  private route(route: MatchedRoute, req: IncomingMessage, url: URL, rawBody: string): Reply {
    try {
      const params = parseParams(url.searchParams, rawBody, req.headers['content-type']);
      return route.spec.handler({
        state: this.state,
        settings: this.settings,
        pathParams: route.pathParams,
        query: url.searchParams,
        params,
        headers: req.headers,
        remoteAddress: req.socket.remoteAddress ?? '127.0.0.1',
        selfUrl: `${this.baseUrl ?? 'http://127.0.0.1'}${url.pathname}`,
      });
    } catch (error) {
      if (error instanceof ParamError) return error.reply;
      return statusMessage(500);
    }
  }

  private count(route: MatchedRoute | undefined, caller: string, now: Date): void {
    const key = route?.key ?? 'unmatched';
    this.stats.requests += 1;
    this.stats.byRoute[key] = (this.stats.byRoute[key] ?? 0) + 1;
    const { count } = this.peakCounter.hit(caller, now.getTime());
    if (count > (this.stats.peakRequestsPerMinute ?? 0)) this.stats.peakRequestsPerMinute = count;
  }

  /** Sends after the configured latency; the Date header comes from the simulated clock + skew. */
  private reply(res: ServerResponse, reply: Reply): void {
    if (reply.status === 429) this.stats.rateLimited += 1;
    this.afterLatency(() => {
      if (res.destroyed || res.headersSent) return;
      const body =
        reply.text !== undefined ? reply.text : reply.status === 204 || reply.body === undefined ? undefined : JSON.stringify(reply.body);
      res.statusCode = reply.status;
      res.setHeader('Date', new Date(this.now().getTime() + this.clockSkewMs).toUTCString());
      for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
      if (body === undefined) {
        res.end();
        return;
      }
      res.setHeader('Content-Type', reply.text !== undefined ? 'text/plain' : 'application/json');
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(body);
    });
  }

  private afterLatency(action: () => void): void {
    if (this.latencyMs <= 0) {
      action();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, this.latencyMs);
    this.timers.add(timer);
  }
}

function checkLatency(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError('latencyMs must be a finite number >= 0');
  return ms;
}
