import { Gitlab } from '@gitbeaker/rest';
import { redactSecrets } from '../../core/redact.ts';
import { InvalidInputError } from '../../core/errors.ts';
import type { GitLab } from '../../core/ports.ts';
import { isHostManager, ROTATOR_SYSTEM_ID } from '../../core/rotator-identity.ts';
import type { IssuedToken, RunnerAccessLevel, RunnerDetails, RunnerManager, RunnerSettings, RunnerType } from '../../core/types.ts';
import { translateGitLabError, type GitLabCall } from './gitlab-errors.ts';
import { PacerRegistry, type PacingOptions } from './gitlab-pacing.ts';
import { nodeHttpSend, type HttpSend } from './gitlab-http.ts';
import { createRequester, DEFAULT_TRANSPORT_POLICY, GitLabCallFailure, probeOnce, type ProbeReply, type TransportPolicy } from './gitlab-transport.ts';

export type { ProbeReply } from './gitlab-transport.ts';

export interface GitLabAdapterOptions {
  /** Attempts per request for 429, 5xx and no reply (network error, timeout), first included. Default 3. */
  maxAttempts?: number;
  /** Cap on any single wait between attempts, whether GitLab's Retry-After or our back-off. Default 60,000. */
  maxRetryWaitMs?: number;
  /** Per attempt, from sending the request to the last byte of the reply. Default 30,000. */
  requestTimeoutMs?: number;
  /** How to wait between attempts and for pacing; tests pass one that records and returns at once. */
  sleep?: (ms: number) => Promise<void>;
  /** Milliseconds since the epoch, for pacing and the probe's local time; pass the clock `sleep` advances. Default Date.now. */
  now?: () => number;
  /**
   * PEM text trusted besides Node's bundled roots for every request of this adapter (a runner's
   * `tls-ca-file`, as gitlab-runner trusts it). Default none: Node's store, with NODE_EXTRA_CA_CERTS.
   */
  caPem?: string | null;
  /** The HTTP leg; default node:http/https trusting `caPem` (gitlab-http.ts). Tests wrap it to watch requests in flight. */
  send?: HttpSend;
  /**
   * Client-side pacing (gitlab-pacing.ts): per GitLab url, a 429's Retry-After holds every request to the
   * url back and halves the requests in flight (`maxInFlight`, default 32, the most it grows back to);
   * per url and access token, `fromHeaders` follows GitLab's RateLimit-* headers when it sends them and
   * `requestsPerMinute` keeps a steady budget. Default none (every request at once, a 429 is waited out
   * and retried by that request alone); both engines turn it on.
   */
  pacing?: PacingOptions;
}

/**
 * What `POST /user/runners` takes: a runner's settings, any left out taking GitLab's default. group_type
 * needs `groupId`; project_type needs a project, the first of `projectIds` (the others are enabled with
 * enableRunnerInProject).
 */
export type CreateRunnerSpec = { runnerType: RunnerType } & Partial<Omit<RunnerSettings, 'runnerType'>>;

export interface CreatedRunner extends IssuedToken {
  id: number;
}

type Client = InstanceType<typeof Gitlab>;

/** Clients kept per (GitLab url, access token or none); the oldest is dropped beyond this. */
const MAX_CLIENTS = 32;

/**
 * The GitLab port over REST API v4, through @gitbeaker/rest 43.8: its typed resources where they exist
 * (`Runners.show/remove/enable`, `Users.createCIRunner`) and its requester for the calls it lacks
 * (reset by token, reset by id, verify with a token, managers).
 *
 * Retry policy, per HTTP request (each page of a listing is one request):
 * - 429: wait what GitLab's Retry-After says (else RateLimit-Reset, else the back-off below) and try
 *   again, up to `maxAttempts` requests in all; then GitLabRateLimitedError with the `retryAfterSeconds`
 *   GitLab last asked for. A Retry-After longer than `maxRetryWaitMs` gives that error at once: retrying
 *   sooner than GitLab said would only collect another 429.
 * - 5xx and no reply (refused, reset, DNS, TLS, or no reply within `requestTimeoutMs`): back off
 *   250 ms, 1 s, 4 s … (each capped at `maxRetryWaitMs`; a 503's Retry-After wins) and try again, up to
 *   `maxAttempts` requests; then GitLabServerError / GitLabUnreachableError. POST /user/runners is not
 *   repeated after a 5xx or a lost reply (a second runner would be created); it is after a 429 or a
 *   refused connection.
 * - A request that gets a 4xx after an earlier attempt got a 5xx or no reply says so in its message: that
 *   attempt may have been applied and its reply lost. For a reset by token that 4xx is the 403 of the
 *   token it already replaced: recover by resetting by id.
 * - 401 GitLabUnauthorizedError, 403 GitLabForbiddenError, 404 GitLabNotFoundError, 410 GitLabGoneError,
 *   any other 4xx GitLabRequestError, all at once and without retry.
 * - The longest a call can take is about maxAttempts × requestTimeoutMs + (maxAttempts − 1) × maxRetryWaitMs
 *   (defaults: 3 × 30 s + 2 × 60 s), plus any pacing wait (at most until GitLab's window resets).
 *
 * Pacing (gitlab-pacing.ts; option `pacing`, off unless given), before every attempt:
 * - Per GitLab url, always: after a 429 no request to the url starts before its Retry-After has passed
 *   (at most `maxRetryWaitMs`), and the requests allowed in flight halve (never below 1), growing back by
 *   one after a run of successes (never above `pacing.maxInFlight`, default 32). Self-managed GitLab
 *   sends RateLimit-* headers only with the 429, so this is what keeps a large scan going there.
 * - Per GitLab url and access token (or none), `pacing.fromHeaders` (default true): GitLab's
 *   `RateLimit-Remaining` / `RateLimit-Reset` headers, when it sends them on every reply:
 *   requests go at once while more than 20 % of the window's limit is left, are spread evenly until the
 *   reset below that, and wait for the reset once only a 5 % reserve is left (or after a 429).
 *   Requests still in flight are counted against what the last reply said was left, so a concurrent
 *   scan does not overshoot.
 * - `pacing.requestsPerMinute` (optional): a steady budget, for a GitLab that sends no RateLimit headers
 *   or to leave most of a shared token's limit to other clients.
 * gitbeaker's own limiter (3,000 requests a minute per client, blind to GitLab's answers) is not used:
 * it alone held a scan of 10,000 runners to 3 minutes 20 s.
 *
 * Errors: `endpoint` is the method and the path below /api/v4 without host or query
 * (`POST /runners/reset_authentication_token`); `cause` is a plain `GitLabFailureCause`
 * (status, statusText, GitLab's message, attempts) with every token this call sent scrubbed; no error
 * keeps gitbeaker's Request or Response. Errors that are not HTTP or network failures (bugs, a header
 * value Node refuses) are rethrown unchanged when nothing in them holds a token, else wrapped in a
 * GitLabRequestError keeping only their scrubbed name and message (see gitlab-errors.ts).
 *
 * Calls that need no access token (reset by token, verify, legacy register) go through a client built
 * without any `token`, so no PRIVATE-TOKEN header is sent: GitLab answers 401 to an invalid one even where
 * none is needed.
 *
 * A GitLab with a certificate from a private CA: every request goes over node:https (gitlab-http.ts),
 * which trusts the extra CAs in `NODE_EXTRA_CA_CERTS=/path/ca.pem` (read once when the process starts),
 * or, with the option `caPem`, Node's bundled roots and that PEM. Never turn verification off.
 */
export class GitLabAdapter implements GitLab {
  private readonly policy: TransportPolicy;
  private readonly requesterFn: ReturnType<typeof createRequester>;
  private readonly clients = new Map<string, Client>();
  private readonly now: () => number;

  constructor(options: GitLabAdapterOptions = {}) {
    this.now = options.now ?? Date.now;
    this.policy = {
      maxAttempts: checkInteger('maxAttempts', options.maxAttempts ?? DEFAULT_TRANSPORT_POLICY.maxAttempts, 1),
      maxRetryWaitMs: checkInteger('maxRetryWaitMs', options.maxRetryWaitMs ?? DEFAULT_TRANSPORT_POLICY.maxRetryWaitMs, 0),
      requestTimeoutMs: checkInteger('requestTimeoutMs', options.requestTimeoutMs ?? DEFAULT_TRANSPORT_POLICY.requestTimeoutMs, 1),
      sleep: options.sleep ?? DEFAULT_TRANSPORT_POLICY.sleep,
      send: options.send ?? (options.caPem ? nodeHttpSend({ caPem: options.caPem }) : DEFAULT_TRANSPORT_POLICY.send),
    };
    if (options.pacing) {
      // A 429 never holds a url back longer than one request may wait to retry.
      const pacing = { maxHoldMs: this.policy.maxRetryWaitMs, ...options.pacing };
      this.policy.pacers = new PacerRegistry({ now: this.now, sleep: this.policy.sleep }, pacing);
    }
    this.requesterFn = createRequester(this.policy);
  }

  /**
   * `GET /api/v4/version` without credentials, once: whether GitLab at the url answers at all (any
   * status, 401 included), with its Date header, or why not (DNS, refused, timeout, TLS), with the code.
   * Not a GitLab API call in the port's sense (it reads nothing of GitLab's and needs no token), but it
   * is here, on the same HTTP leg, trust and pacing as every call: it is asked to predict whether those
   * calls can connect, which a probe over another HTTP stack could not. Never throws for a missing reply;
   * a url that is not http(s) or carries credentials is a no-reply with code ERR_INVALID_URL.
   */
  async probe(gitlabUrl: string): Promise<ProbeReply> {
    let base: string;
    try {
      base = gitlabBaseUrl(gitlabUrl);
    } catch (error) {
      return { kind: 'no-reply', cause: 'other', code: 'ERR_INVALID_URL', detail: error instanceof Error ? error.message : 'not a url' };
    }
    return probeOnce(this.policy, `${base}/api/v4/`, 'version', this.now);
  }

  /**
   * `allow_runner_registration_token` from `GET /application/settings` (admin access token): whether
   * legacy registration tokens are still accepted; undefined when the reply has no such setting (GitLab
   * before 16.0). Reads only: legacy `POST /runners` is never called.
   */
  async registrationTokenAllowed(gitlabUrl: string, accessToken: string): Promise<boolean | undefined> {
    requireText('accessToken', accessToken);
    const path = 'application/settings';
    return this.call({ gitlabUrl, call: 'application-settings', accessToken }, `GET /${path}`, async (api) => {
      const reply = await api.requester.get(path);
      const allowed = record(reply.body, 'GET', path, reply.status).allow_runner_registration_token;
      return typeof allowed === 'boolean' ? allowed : undefined;
    });
  }

  async resetWithToken(gitlabUrl: string, token: string): Promise<IssuedToken> {
    requireText('token', token);
    const path = 'runners/reset_authentication_token';
    return this.call({ gitlabUrl, call: 'reset-with-token', secrets: [token] }, `POST /${path}`, async (api) => {
      // As the rotator, never as a host (rotator-identity.ts): GitLab files the call under this system_id.
      const reply = await api.requester.post(path, { body: { token, system_id: ROTATOR_SYSTEM_ID } });
      return issuedToken(reply.body, 'POST', path, reply.status);
    });
  }

  async resetById(gitlabUrl: string, runnerId: number, accessToken: string): Promise<IssuedToken> {
    requireRunnerId(runnerId);
    requireText('accessToken', accessToken);
    const path = `runners/${runnerId}/reset_authentication_token`;
    return this.call({ gitlabUrl, call: 'reset-by-id', runnerId, accessToken }, `POST /${path}`, async (api) => {
      const reply = await api.requester.post(path);
      return issuedToken(reply.body, 'POST', path, reply.status);
    });
  }

  async verify(gitlabUrl: string, token: string): Promise<{ runnerId: number; tokenExpiresAt: string | null }> {
    requireText('token', token);
    // Runners.verify exists in gitbeaker but its options type has no `token`: use the requester.
    const path = 'runners/verify';
    return this.call({ gitlabUrl, call: 'verify', secrets: [token] }, `POST /${path}`, async (api) => {
      const reply = await api.requester.post(path, { body: { token, system_id: ROTATOR_SYSTEM_ID } });
      const body = record(reply.body, 'POST', path, reply.status);
      return { runnerId: integer(body.id, 'POST', path, reply.status), tokenExpiresAt: textOrNull(body.token_expires_at) };
    });
  }

  async runner(gitlabUrl: string, runnerId: number, accessToken: string): Promise<RunnerDetails> {
    requireRunnerId(runnerId);
    requireText('accessToken', accessToken);
    const path = `runners/${runnerId}`;
    return this.call({ gitlabUrl, call: 'runner', runnerId, accessToken }, `GET /${path}`, async (api) => {
      const body = record(await api.Runners.show(runnerId), 'GET', path);
      return {
        id: integer(body.id, 'GET', path),
        status: textOrNull(body.status) ?? 'unknown',
        contactedAt: textOrNull(body.contacted_at),
        ...runnerSettings(body, path),
      };
    });
  }

  async managers(gitlabUrl: string, runnerId: number, accessToken: string): Promise<RunnerManager[]> {
    requireRunnerId(runnerId);
    requireText('accessToken', accessToken);
    const path = `runners/${runnerId}/managers`;
    return this.call({ gitlabUrl, call: 'managers', runnerId, accessToken }, `GET /${path}`, async (api) => {
      const items = await allPages(api, path);
      const managers = items.map((item) => {
        const m = record(item, 'GET', path);
        return {
          systemId: textOrNull(m.system_id) ?? '',
          contactedAt: textOrNull(m.contacted_at),
          status: textOrNull(m.status) ?? 'unknown',
          version: textOrNull(m.version),
          ipAddress: textOrNull(m.ip_address),
        };
      });
      // The rotator's own record (its resets and verifies) is no host: nothing downstream may count it.
      return managers.filter(isHostManager);
    });
  }

  async isAdmin(gitlabUrl: string, accessToken: string): Promise<boolean> {
    requireText('accessToken', accessToken);
    const path = 'user';
    return this.call({ gitlabUrl, call: 'user', accessToken }, `GET /${path}`, async (api) => {
      // lib/api/users.rb presents `is_admin` (UserWithAdmin) to administrators only.
      const body = record(await api.Users.showCurrentUser(), 'GET', path);
      return body.is_admin === true;
    });
  }

  /**
   * `POST /user/runners` (access token with create_runner or api): a new runner and its first token.
   * Users.createCIRunner sends the options snake_cased (tagList → tag_list); null settings are left out.
   */
  async createRunner(gitlabUrl: string, accessToken: string, spec: CreateRunnerSpec): Promise<CreatedRunner> {
    requireText('accessToken', accessToken);
    const { runnerType, groupId, projectIds, ...rest } = spec;
    const projectId = projectIds?.[0];
    if (runnerType === 'group_type' && (groupId === undefined || groupId === null)) throw new InvalidInputError('createRunner', 'a group_type runner needs groupId');
    if (runnerType === 'project_type' && projectId === undefined) throw new InvalidInputError('createRunner', 'a project_type runner needs a project id');
    const options: Record<string, unknown> = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined && value !== null));
    if (runnerType === 'group_type') options.groupId = groupId;
    if (runnerType === 'project_type') options.projectId = projectId;
    const path = 'user/runners';
    return this.call({ gitlabUrl, call: 'create-runner', accessToken }, `POST /${path}`, async (api) => {
      const body = record(await api.Users.createCIRunner(runnerType, options as Parameters<Client['Users']['createCIRunner']>[1]), 'POST', path);
      return { id: integer(body.id, 'POST', path), ...issuedToken(body, 'POST', path) };
    });
  }

  /** `POST /projects/:id/runners` (runner_id): a project runner also serves that project. */
  async enableRunnerInProject(gitlabUrl: string, projectId: number, runnerId: number, accessToken: string): Promise<void> {
    requireRunnerId(runnerId);
    requireText('accessToken', accessToken);
    if (!Number.isSafeInteger(projectId) || projectId <= 0) throw new InvalidInputError('projectId', `${String(projectId)} is not a project id`);
    return this.call({ gitlabUrl, call: 'enable-runner', runnerId, accessToken }, `POST /projects/${projectId}/runners`, async (api) => {
      await api.Runners.enable(projectId, runnerId);
    });
  }

  /** `DELETE /runners/:id`. */
  async deleteRunner(gitlabUrl: string, runnerId: number, accessToken: string): Promise<void> {
    requireRunnerId(runnerId);
    requireText('accessToken', accessToken);
    return this.call({ gitlabUrl, call: 'delete-runner', runnerId, accessToken }, `DELETE /runners/${runnerId}`, async (api) => {
      await api.Runners.remove({ runnerId });
    });
  }

  private async call<T>(
    ctx: { gitlabUrl: string; call: GitLabCall; runnerId?: number; accessToken?: string; secrets?: string[] },
    endpoint: string,
    fn: (api: Client) => Promise<T>,
  ): Promise<T> {
    const base = gitlabBaseUrl(ctx.gitlabUrl);
    const api = this.client(base, ctx.accessToken);
    try {
      return await fn(api);
    } catch (error) {
      const secrets = [...(ctx.secrets ?? []), ...(ctx.accessToken ? [ctx.accessToken] : [])];
      throw translateGitLabError(error, { gitlabUrl: base, call: ctx.call, runnerId: ctx.runnerId, secrets }, endpoint);
    }
  }

  /**
   * One gitbeaker client per (url, access token or none). Without an access token no `token` key is
   * passed at all: requester-utils' BaseResource (index.mjs:186-192) sets PRIVATE-TOKEN when `"token" in options`, so even
   * `{ token: undefined }` would send the header `private-token: undefined`.
   * `queryTimeout: null` stops @gitbeaker/core from adding its own AbortSignal.timeout (default 300 s,
   * one signal shared by every page of a listing); our transport times each attempt instead.
   */
  private client(host: string, accessToken: string | undefined): Client {
    const key = `${host}\u0000${accessToken ?? ''}`;
    const cached = this.clients.get(key);
    if (cached) return cached;
    // `rateLimits: {}`: no gitbeaker limiter per resource (about 20 per resource, 200 resources per client).
    const common = { host, requesterFn: this.requesterFn, queryTimeout: null, rateLimits: {} };
    const client = accessToken === undefined ? new Gitlab(common) : new Gitlab({ ...common, token: accessToken });
    if (this.clients.size >= MAX_CLIENTS) {
      const oldest = this.clients.keys().next().value;
      if (oldest !== undefined) this.clients.delete(oldest);
    }
    this.clients.set(key, client);
    return client;
  }
}

/**
 * `https://gitlab.example.com/` and `https://gitlab.example.com` alike; a path prefix is kept. Needed
 * because BaseResource builds `[host, 'api', 'v4', prefixUrl].join('/')` (requester-utils index.mjs:180),
 * which turns a trailing slash into `//api/v4`.
 */
export function gitlabBaseUrl(gitlabUrl: string, where = 'gitlabUrl'): string {
  let url: URL;
  try {
    url = new URL(gitlabUrl);
  } catch {
    // Echoed through the redactor: a url typed with its credentials may not parse either.
    throw new InvalidInputError(where, `"${redactSecrets(gitlabUrl)}" is not a url`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidInputError(where, `${url.protocol} is not http or https`);
  if (url.username || url.password) throw new InvalidInputError(where, 'the url must not carry credentials');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Follows `Link: <…>; rel="next"` from a requester GET (what core's paginated GETs do). */
async function allPages(api: Client, path: string): Promise<unknown[]> {
  const items: unknown[] = [];
  let searchParams: Record<string, string> = { per_page: '100' };
  for (let page = 1; page <= 1000; page += 1) {
    const reply = await api.requester.get(path, { searchParams });
    if (!Array.isArray(reply.body)) throw badReply('GET', path, 'the reply is not a list', reply.status);
    items.push(...(reply.body as unknown[]));
    const next = /<([^>]+)>;\s*rel="next"/.exec(reply.headers.link ?? '')?.[1];
    if (!next) return items;
    searchParams = Object.fromEntries(new URL(next).searchParams);
  }
  return items;
}

function badReply(method: string, path: string, reason: string, status?: number): GitLabCallFailure {
  return new GitLabCallFailure({ kind: 'bad-reply', method, path, status, reason, attempts: 1 });
}

function record(body: unknown, method: string, path: string, status?: number): Record<string, unknown> {
  if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  throw badReply(method, path, 'the reply is not a JSON object', status);
}

function integer(value: unknown, method: string, path: string, status?: number): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  throw badReply(method, path, 'the reply has no numeric id', status);
}

function textOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

const RUNNER_TYPES: readonly RunnerType[] = ['instance_type', 'group_type', 'project_type'];

/** The settings a replacement copies, from `GET /runners/:id` (`groups` and `projects` are lists of objects with an id). */
function runnerSettings(body: Record<string, unknown>, path: string): RunnerSettings {
  const type = RUNNER_TYPES.find((t) => t === body.runner_type);
  if (!type) throw badReply('GET', path, `the reply has no known runner_type (${String(body.runner_type)})`);
  const ids = (list: unknown) => (Array.isArray(list) ? list.map((item) => (item as { id?: unknown } | null)?.id).filter((id): id is number => Number.isSafeInteger(id)) : []);
  const accessLevel: RunnerAccessLevel = body.access_level === 'ref_protected' ? 'ref_protected' : 'not_protected';
  return {
    runnerType: type,
    groupId: ids(body.groups)[0] ?? null,
    projectIds: ids(body.projects),
    description: textOrNull(body.description) ?? '',
    tagList: Array.isArray(body.tag_list) ? body.tag_list.filter((tag): tag is string => typeof tag === 'string') : [],
    runUntagged: body.run_untagged !== false,
    locked: body.locked === true,
    accessLevel,
    maximumTimeout: typeof body.maximum_timeout === 'number' ? body.maximum_timeout : null,
    paused: pausedOf(body),
    maintenanceNote: textOrNull(body.maintenance_note),
  };
}

/** GitLab replaced `active` with `paused` in 14.8; older replies have only `active`. */
function pausedOf(body: Record<string, unknown>): boolean {
  if (typeof body.paused === 'boolean') return body.paused;
  return body.active === false;
}

function issuedToken(body: unknown, method: string, path: string, status?: number): IssuedToken {
  const r = record(body, method, path, status);
  if (typeof r.token !== 'string' || r.token === '') throw badReply(method, path, 'the reply has no token', status);
  return { token: r.token, tokenExpiresAt: textOrNull(r.token_expires_at) };
}

function requireText(name: string, value: string): void {
  if (typeof value !== 'string' || value.trim() === '') throw new InvalidInputError(name, 'must be a non-empty string');
}

function requireRunnerId(runnerId: number): void {
  if (!Number.isSafeInteger(runnerId) || runnerId <= 0) throw new InvalidInputError('runnerId', `${String(runnerId)} is not a runner id`);
}

function checkInteger(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new InvalidInputError(`GitLabAdapter ${name}`, `must be an integer ≥ ${min}, got ${String(value)}`);
  return value;
}
