/**
 * The HTTP leg of the GitLab adapter: a gitbeaker request handler that replaces the one
 * @gitbeaker/rest ships, so that retries, waits and timeouts are ours to bound.
 *
 * Why not keep @gitbeaker/rest 43.8's own handler (node_modules/@gitbeaker/rest/dist/index.mjs:55-86,
 * `defaultRequestHandler`): it retries 429 and 502 (only those, line 56) up to 10 times with a fixed
 * `delay(2 ** i * 0.25)` in *milliseconds* (line 80: 0.25 ms … 128 ms), never reads Retry-After, cannot be
 * configured, and retries a POST after a 502 silently, so a reset whose first reply was lost would come
 * back as a plain 403 with no hint that the token was already reset. Its failures also carry the whole
 * `Request` (body = the runner token, headers = PRIVATE-TOKEN) in `cause`.
 *
 * What we keep from gitbeaker: `createRequesterFn` and its options handler
 * (node_modules/@gitbeaker/requester-utils/dist/index.mjs:21-83: auth header from `token`, JSON body with
 * decamelized keys, `qs` query string, the per-client rate limiter of 3,000 requests/min), the response
 * shape `{ body, headers, status }` the typed resources of @gitbeaker/core expect (they follow
 * pagination through `headers.link`), and the same body parsing as rest's `processBody`.
 * Passing `requesterFn` to a resource constructor overrides the preset one
 * (`createPresetConstructor`, requester-utils index.mjs:86, spreads the preset first, then the caller's config).
 * Timeouts: rest maps a fetch TimeoutError/AbortError to GitbeakerTimeoutError (rest index.mjs:73), but the
 * signal comes only from @gitbeaker/core's RequestHelper (core/dist/index.mjs:107-182:
 * `AbortSignal.timeout(queryTimeout)`, default 300 s, one signal per call shared by every page), and a
 * direct `requester.post` gets none at all. We set `queryTimeout: null` and time each attempt here.
 *
 * The HTTP itself goes through `policy.send` (gitlab-http.ts: node:http/https with the adapter's CA), not
 * rest's fetch: one HTTP leg for every GitLab request, the doctor's probe included.
 */
import { redactSecrets } from '../../core/redact.ts';
import { setTimeout as delay } from 'node:timers/promises';
import {
  createRequesterFn,
  type FormattedResponse,
  type RateLimiters,
  type RequestOptions,
  type RequesterType,
  type ResourceOptions,
} from '@gitbeaker/requester-utils';
import { classifyNoReply, connectionErrorCode, nodeHttpSend, type HttpSend, type NoReplyCause } from './gitlab-http.ts';
import type { PacerRegistry } from './gitlab-pacing.ts';

export interface TransportPolicy {
  /** Attempts per HTTP request for 429, 5xx and no-reply failures (the first one included). */
  maxAttempts: number;
  /** Cap on any single wait between attempts (Retry-After or back-off). */
  maxRetryWaitMs: number;
  /** Per attempt, from sending the request to the end of the reply body. */
  requestTimeoutMs: number;
  sleep: (ms: number) => Promise<void>;
  /** The HTTP leg (gitlab-http.ts): node:http/https trusting the adapter's CA. */
  send: HttpSend;
  /**
   * Client-side pacing (gitlab-pacing.ts): per GitLab url, the hold-back after a 429 (its Retry-After)
   * and the requests in flight (halved on a 429, grown back on successes); per (url, access token),
   * GitLab's RateLimit-* headers when it sends them and an optional budget. It replaces gitbeaker's own
   * per-client limiter (a fixed 3,000 requests a minute, blind to GitLab's answers), which this transport
   * never calls. None: no pacing (a 429 is still waited out, by this request alone).
   */
  pacers?: PacerRegistry;
}

export const DEFAULT_TRANSPORT_POLICY: TransportPolicy = {
  maxAttempts: 3,
  maxRetryWaitMs: 60_000,
  requestTimeoutMs: 30_000,
  sleep: (ms) => delay(ms),
  send: nodeHttpSend(),
};

/** Back-off for 5xx and no reply when the server names no wait: 250 ms, 1 s, 4 s, 16 s … (capped). */
export function backoffMs(failedAttempt: number, capMs: number): number {
  return Math.min(250 * 4 ** (failedAttempt - 1), capMs);
}

/**
 * Requests that must not be repeated after an attempt whose outcome is unknown (5xx, no reply): a
 * second POST /user/runners would create a second runner with a live token nobody holds.
 * They are still retried after 429 and after a refused connection, where nothing was done.
 */
const NOT_REPEATABLE: ReadonlyArray<{ method: string; endpoint: RegExp }> = [
  { method: 'POST', endpoint: /^user\/runners$/ },
  { method: 'POST', endpoint: /^runners$/ },
];

/**
 * Connection errors that prove the request never reached GitLab: besides the causes classifyNoReply names
 * dns, refused and tls (a certificate is verified in the handshake, before any byte of the request is
 * written), a network or host that cannot be reached.
 */
const NOT_SENT_CODES = new Set(['ENETUNREACH', 'EHOSTUNREACH']);
const NOT_SENT_CAUSES: ReadonlySet<NoReplyCause> = new Set(['dns', 'refused', 'tls']);

export type FailureKind = 'status' | 'no-reply' | 'bad-reply';

/**
 * What the transport throws when a request fails. It holds no Request, Response or header: only the
 * facts below, with any token it could see scrubbed from `description` and `reason`.
 * The adapter turns it into one of the GitLab* errors of src/core/errors.ts.
 */
export class GitLabCallFailure extends Error {
  readonly kind: FailureKind;
  readonly method: string;
  /** The path relative to /api/v4, no query: `runners/42/managers`. */
  readonly path: string;
  readonly status: number | undefined;
  readonly statusText: string | undefined;
  /** GitLab's own words (`message` or `error` of the JSON body), scrubbed. */
  readonly description: string | undefined;
  /** For no reply: what happened (`timed out after 30000 ms`, `ECONNREFUSED`). */
  readonly reason: string | undefined;
  /** Seconds the last 429/503 asked us to wait (uncapped), when it said. */
  readonly retryAfterSeconds: number | undefined;
  readonly attempts: number;
  /**
   * Set on a non-GET request when an earlier attempt got a 5xx or no reply after it may have reached
   * GitLab: that attempt may have been applied and its reply lost. Says what that attempt got.
   */
  readonly earlierUncertainAttempt: string | undefined;
  /** For no reply: the last attempt provably never reached GitLab (DNS, refused, TLS trust). */
  readonly notSent: boolean;

  constructor(fields: {
    kind: FailureKind;
    method: string;
    path: string;
    status?: number;
    statusText?: string;
    description?: string;
    reason?: string;
    retryAfterSeconds?: number;
    attempts: number;
    earlierUncertainAttempt?: string;
    notSent?: boolean;
  }) {
    super(`${fields.method} /${fields.path}: ${fields.status ?? fields.reason ?? fields.kind}`);
    this.name = 'GitLabCallFailure';
    this.kind = fields.kind;
    this.method = fields.method;
    this.path = fields.path;
    this.status = fields.status;
    this.statusText = fields.statusText;
    this.description = fields.description;
    this.reason = fields.reason;
    this.retryAfterSeconds = fields.retryAfterSeconds;
    this.attempts = fields.attempts;
    this.earlierUncertainAttempt = fields.earlierUncertainAttempt;
    this.notSent = fields.notSent ?? false;
  }
}


/** The secret values a request carries: its auth header and a `token` field in its JSON body. */
function secretsOf(options: RequestOptions): string[] {
  const secrets: string[] = [];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (/^(private-token|job-token|authorization)$/i.test(name) && typeof value === 'string') {
      secrets.push(value, value.replace(/^Bearer\s+/i, ''));
    }
  }
  if (typeof options.body === 'string') {
    try {
      const parsed: unknown = JSON.parse(options.body);
      if (parsed && typeof parsed === 'object' && 'token' in parsed && typeof parsed.token === 'string') {
        secrets.push(parsed.token);
      }
    } catch {
      // not JSON: nothing to learn
    }
  }
  return secrets;
}

/** The access token a request authenticates with (the pacing key), undefined for none. */
function credentialOf(headers: RequestOptions['headers']): string | undefined {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (/^(private-token|job-token|authorization)$/i.test(name) && typeof value === 'string') return value;
  }
  return undefined;
}

/**
 * Retry-After as seconds (delta-seconds or an HTTP date), else RateLimit-Reset (epoch seconds). Dates are
 * read against the reply's own `Date` (GitLab's clock) when it has one, else against `nowMs`.
 */
export function retryAfterSeconds(headers: Headers, nowMs: number): number | undefined {
  const serverDate = Date.parse(headers.get('date') ?? '');
  const serverNowMs = Number.isNaN(serverDate) ? nowMs : serverDate;
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - serverNowMs) / 1000));
  }
  const reset = headers.get('ratelimit-reset')?.trim();
  if (reset && /^\d+$/.test(reset)) {
    const resetSeconds = Number(reset);
    // GitLab sends an epoch; some proxies send seconds from now. Tell them apart by size.
    return resetSeconds > 1_000_000_000 ? Math.max(0, Math.ceil(resetSeconds - serverNowMs / 1000)) : resetSeconds;
  }
  return undefined;
}

/**
 * GitLab's own words from an error reply, as rest's `throwFailedRequestError` reads them: redacted first,
 * then cut to 500 (JSON) or 200 (other) characters. In that order: a cut through a token would leave a
 * piece the redactor no longer recognizes (a legacy token has no prefix; only its whole value is known).
 */
function describe(text: string, contentType: string | null, secrets: readonly string[]): string | undefined {
  if (!text) return undefined;
  if (contentType?.includes('application/json')) {
    try {
      const output: unknown = JSON.parse(text);
      if (output && typeof output === 'object') {
        const record = output as Record<string, unknown>;
        const content = record.error ?? record.message;
        if (content === undefined) return undefined;
        return redactSecrets(typeof content === 'string' ? content : JSON.stringify(content), secrets).slice(0, 500);
      }
    } catch {
      return undefined;
    }
  }
  return redactSecrets(text, secrets).slice(0, 200);
}

/** rest's `processBody`, with a JSON parse error turned into `undefined` (its message quotes the body). */
async function parseBody(response: Response): Promise<{ ok: true; body: unknown } | { ok: false }> {
  if (response.status === 204) return { ok: true, body: null };
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
  if (contentType === 'application/json') {
    const text = await response.text();
    if (text === '') return { ok: true, body: {} };
    try {
      return { ok: true, body: JSON.parse(text) ?? {} };
    } catch {
      return { ok: false };
    }
  }
  if (contentType.startsWith('text/')) return { ok: true, body: await response.text() };
  return { ok: true, body: await response.blob() };
}

interface NoReply {
  reason: string;
  /** True when the request provably never reached GitLab (refused, unknown host). */
  notSent: boolean;
}

/** A rejection of `send` (gitlab-http.ts) that means "no HTTP reply"; undefined for anything else (a bug …). */
export function noReply(error: unknown, timeoutMs: number): NoReply | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error.name === 'TimeoutError') return { reason: `no reply within ${timeoutMs} ms`, notSent: false };
  if (error.name === 'AbortError') return { reason: 'the request was aborted', notSent: false };
  const code = connectionErrorCode(error);
  if (code === undefined) return undefined;
  const detail = error.message.split('\n')[0] || code;
  return { reason: detail.includes(code) ? detail : `${code}: ${detail}`, notSent: NOT_SENT_CODES.has(code) || NOT_SENT_CAUSES.has(classifyNoReply(code)) };
}

/**
 * Builds the request handler. One HTTP request = up to `maxAttempts` attempts:
 * - 2xx → the parsed reply.
 * - 429 → wait at least what GitLab asked (Retry-After, else RateLimit-Reset, else back-off) and try
 *   again. With pacing, the url's pacer holds this request and every other one to the url back for that
 *   long (and halves the requests in flight); without, this request sleeps. A Retry-After longer than
 *   `maxRetryWaitMs` is not waited out: GitLabCallFailure at once, rather than a retry GitLab said would
 *   fail.
 * - 5xx and no reply → wait Retry-After or back-off (capped) and try again, except for requests in
 *   NOT_REPEATABLE, whose outcome is then unknown and is reported at once.
 * - any other status → GitLabCallFailure at once.
 */
function requestHandler(policy: TransportPolicy) {
  return async (endpoint: string, options?: Record<string, unknown>): Promise<FormattedResponse> => {
    const { rateLimiters, agent, asStream, prefixUrl, searchParams, method = 'GET', signal, ...init } =
      (options ?? {}) as RequestOptions & { rateLimiters?: RateLimiters };
    // gitbeaker's limiter (`rateLimiters`) is replaced by our pacer: see TransportPolicy.pacers. Its
    // undici `agent` has no place in policy.send, whose trust is the adapter's (GitLabAdapterOptions.caPem).
    void rateLimiters;
    void agent;
    const baseUrl = prefixUrl?.endsWith('/') ? prefixUrl : `${prefixUrl ?? ''}/`;
    const url = new URL(endpoint, baseUrl);
    url.search = searchParams ?? '';
    const secrets = secretsOf(options as RequestOptions);
    const path = endpoint.replace(/^\/+/, '').split('?')[0]!;
    const repeatable = !NOT_REPEATABLE.some((r) => r.method === method && r.endpoint.test(path));
    /** What an earlier attempt of this non-GET request got when it may have been applied. */
    let earlierUncertainAttempt: string | undefined;
    const noteUncertain = (what: string): void => {
      if (method !== 'GET') earlierUncertainAttempt ??= what;
    };

    const pacer = policy.pacers?.pacerFor(baseUrl, credentialOf(init.headers));

    for (let attempt = 1; ; attempt += 1) {
      // Before the timeout starts: a paced wait is not the request's time.
      const paced = await pacer?.acquire();
      try {
        const timeout = AbortSignal.timeout(policy.requestTimeoutMs);
        const request = new Request(url, {
          headers: init.headers,
          body: init.body,
          method,
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        let response: Response;
        try {
          response = await policy.send(request);
        } catch (error) {
          const failed = noReply(error, policy.requestTimeoutMs);
          if (!failed) throw error;
          const reason = redactSecrets(failed.reason, secrets);
          if (attempt < policy.maxAttempts && (failed.notSent || repeatable)) {
            if (!failed.notSent) noteUncertain(`no reply (${reason})`);
            paced?.release();
            await policy.sleep(backoffMs(attempt, policy.maxRetryWaitMs));
            continue;
          }
          throw new GitLabCallFailure({ kind: 'no-reply', method, path, reason, attempts: attempt, earlierUncertainAttempt, notSent: failed.notSent });
        }

        paced?.observe(response.headers, response.status);
        const headers = Object.fromEntries(response.headers.entries());
        if (response.ok) {
          if (asStream) return { body: response.body as unknown as FormattedResponse['body'], headers, status: response.status };
          let parsed: Awaited<ReturnType<typeof parseBody>>;
          try {
            parsed = await parseBody(response);
          } catch (error) {
            const failed = noReply(error, policy.requestTimeoutMs);
            if (!failed) throw error;
            // The status line came but the body did not: GitLab processed the request, the result is lost.
            const reason = redactSecrets(`the status line came but the body did not: ${failed.reason}`, secrets);
            throw new GitLabCallFailure({ kind: 'bad-reply', method, path, status: response.status, statusText: response.statusText, reason, attempts: attempt, earlierUncertainAttempt });
          }
          if (!parsed.ok) {
            throw new GitLabCallFailure({ kind: 'bad-reply', method, path, status: response.status, statusText: response.statusText, reason: 'the reply body is not valid JSON', attempts: attempt, earlierUncertainAttempt });
          }
          return { body: parsed.body as FormattedResponse['body'], headers, status: response.status };
        }

        const { status, statusText } = response;
        const text = await response.text().catch(() => '');
        const description = describe(text, response.headers.get('content-type'), secrets) || undefined;
        const waitSeconds = retryAfterSeconds(response.headers, Date.now());
        // Honour a 429's wait: never retry before it, and do not retry at all when it is longer than we may wait.
        const waitTooLong = status === 429 && waitSeconds !== undefined && waitSeconds * 1000 > policy.maxRetryWaitMs;
        const retryable = (status === 429 && !waitTooLong) || (status >= 500 && repeatable);
        if (retryable && attempt < policy.maxAttempts) {
          if (status >= 500) noteUncertain(`${status} ${statusText}`.trim());
          paced?.release();
          // With pacing, the 429 set the url's hold-back (observe above): the next acquire waits it out.
          if (status === 429 && paced) continue;
          const waitMs = waitSeconds !== undefined ? waitSeconds * 1000 : backoffMs(attempt, policy.maxRetryWaitMs);
          await policy.sleep(Math.min(waitMs, policy.maxRetryWaitMs));
          continue;
        }
        throw new GitLabCallFailure({ kind: 'status', method, path, status, statusText, description, retryAfterSeconds: waitSeconds, attempts: attempt, earlierUncertainAttempt });
      } finally {
        paced?.release();
      }
    }
  };
}

/** A gitbeaker `requesterFn` (the `requesterFn` option of every resource) with our policy. */
export function createRequester(policy: TransportPolicy): (resourceOptions: ResourceOptions) => RequesterType {
  return createRequesterFn((_, requestOptions) => Promise.resolve(requestOptions), requestHandler(policy));
}

/** What GitLab answered a plain GET without credentials (the doctor's reachability probe), or why it did not. */
export type ProbeReply =
  | {
      kind: 'reply';
      status: number;
      /** The reply's Date header as sent, or null. */
      serverDate: string | null;
      /** `nowMs` half-way between sending the request and the reply's headers. */
      localMs: number;
    }
  | {
      kind: 'no-reply';
      cause: NoReplyCause;
      /** The system or TLS error code: ENOTFOUND, ECONNREFUSED, ETIMEDOUT, DEPTH_ZERO_SELF_SIGNED_CERT … */
      code: string;
      /** One line: the resolver's or TLS library's words, or the timeout. No token: none is sent. */
      detail: string;
    };

/**
 * One GET of `path` below `apiBase` (`https://gitlab.example.com/api/v4/`) without credentials, through
 * the same `send` (CA trust), timeout and pacing as every other request, but a single attempt, and any
 * status is an answer (a 401 says GitLab is there as well as a 200 does). Never throws for a missing reply.
 */
export async function probeOnce(policy: TransportPolicy, apiBase: string, path: string, nowMs: () => number): Promise<ProbeReply> {
  const paced = await policy.pacers?.pacerFor(apiBase, undefined).acquire();
  try {
    const started = nowMs();
    const request = new Request(new URL(path, apiBase), { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(policy.requestTimeoutMs) });
    const response = await policy.send(request);
    const localMs = Math.round((started + nowMs()) / 2);
    paced?.observe(response.headers, response.status);
    await response.body?.cancel().catch(() => undefined);
    return { kind: 'reply', status: response.status, serverDate: response.headers.get('date'), localMs };
  } catch (error) {
    if (error instanceof Error && error.name === 'TimeoutError') return { kind: 'no-reply', cause: 'timeout', code: 'ETIMEDOUT', detail: `no reply within ${policy.requestTimeoutMs} ms` };
    const code = connectionErrorCode(error) ?? (error instanceof Error ? error.name : 'ERROR');
    const detail = ((error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '').slice(0, 200);
    return { kind: 'no-reply', cause: classifyNoReply(code), code, detail };
  } finally {
    paced?.release();
  }
}
