/**
 * The GitLab adapter's one HTTP leg: `send(Request) → Response` over node:http / node:https, used by
 * every request the adapter makes (the gitbeaker requester of gitlab-transport.ts and the doctor's
 * reachability probe alike), so that all of them trust the same CAs and fail with the same error codes.
 *
 * Why not Node's fetch (undici), which the adapter used before: a runner's `tls-ca-file` must be trusted
 * for the requests to that runner's GitLab, as gitlab-runner trusts it, and fetch takes a per-request CA
 * only through undici's Agent, which is not a dependency here. node:https takes `ca` directly and reports
 * the system and TLS error codes as they are (ENOTFOUND, ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT …).
 *
 * Trust: with no `caPem`, Node's bundled roots plus `NODE_EXTRA_CA_CERTS` (read once when the process
 * starts). With a `caPem` (a runner's tls-ca-file), what gitlab-runner trusts for it (network/client.go
 * addTLSCA: the system pool plus the file, every certificate in it an anchor): Node's bundled roots, the
 * `NODE_EXTRA_CA_CERTS` file (Node drops it from a `ca` it is given, so it is added here), and the PEM,
 * with `allowPartialTrustChain` so that an intermediate in the file is an anchor as in Go (the
 * `openssl s_client -showcerts` recipe of gitlab-runner's docs yields leaf and intermediate, no root).
 * Verification is never off. Like fetch, it ignores HTTPS_PROXY.
 *
 * Headers: a `User-Agent` (a WAF rule such as AWS's NoUserAgent_HEADER blocks requests without one, and
 * fetch sent one), `Accept: application/json`, and `Accept-Encoding: identity` (no compressed body to
 * decode), unless the request set its own. Bodies are capped at MAX_BODY_BYTES. Connections are kept alive
 * per sender (as fetch pooled them); an idle one is closed after IDLE_SOCKET_MS, before a server's
 * keep-alive timeout could close it under a new request, and idle ones do not keep the process running.
 *
 * Errors: a connection or TLS failure rejects with Node's own error (its `code` says which); a timeout or
 * abort of `request.signal` rejects with the signal's reason (a `TimeoutError` / `AbortError`), before the
 * headers or while the body is read. The transport (noReply) and the probe (classifyNoReply) read them.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { readFileSync } from 'node:fs';

/** Sends one HTTP request; a fetch-shaped function. */
export type HttpSend = (request: Request) => Promise<Response>;

/** Why GitLab did not reply: the resolver, a refused connection, no reply in time, TLS trust, or another cause. */
export type NoReplyCause = 'dns' | 'refused' | 'timeout' | 'tls' | 'other';

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const REFUSED_CODES = new Set(['ECONNREFUSED']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);
/** Certificate verification failures (OpenSSL's X509_V_ERR_* names as Node reports them). */
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Which of DNS, refused, timeout or TLS a connection error code stands for. */
export function classifyNoReply(code: string): NoReplyCause {
  if (DNS_CODES.has(code)) return 'dns';
  if (REFUSED_CODES.has(code)) return 'refused';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (TLS_CODES.has(code)) return 'tls';
  return 'other';
}

/**
 * The code of an error `send` rejected with that means "no HTTP reply" (a socket, resolver, TLS or HTTP
 * parser failure), else undefined: Node's argument errors (`ERR_INVALID_CHAR` for a bad header value …)
 * are bugs, not a GitLab that did not answer.
 */
export function connectionErrorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string') return undefined;
  return !code.startsWith('ERR_') || /^ERR_(TLS|SSL)_/.test(code) ? code : undefined;
}

/** Sent unless a request sets its own User-Agent. */
export const USER_AGENT = 'gitlab-runner-token-rotator';
/** No GitLab reply the adapter reads comes near this (a page of 100 runners is about 100 KB). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Node's own agent closes idle sockets after 5 s; nginx (GitLab's front) keeps them 65 s. */
const IDLE_SOCKET_MS = 4_000;

/** An error with a Node-style code: the transport reads `code` to tell "no usable HTTP reply". */
function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The PEM text of the NODE_EXTRA_CA_CERTS file, which Node adds to its default store only (empty when unset or unreadable, as Node then warns and goes on). */
function extraCaCertificates(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, 'utf8')];
  } catch {
    return [];
  }
}

/** Statuses whose reply has no body (and a Response must be built with none). */
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/** A sender over node:http/https that trusts `caPem` besides Node's bundled roots (null: Node's default store). */
export function nodeHttpSend(options: { caPem?: string | null } = {}): HttpSend {
  const httpAgent = new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  const trust = options.caPem ? { ca: [...rootCertificates, ...extraCaCertificates(), options.caPem], allowPartialTrustChain: true } : {};
  const httpsAgent = new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS, ...trust });
  return async (request) => {
    const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer());
    const target = new URL(request.url);
    const https = target.protocol === 'https:';
    if (!https && target.protocol !== 'http:') throw new TypeError(`${target.protocol} is not http or https`);
    const signal = request.signal;
    signal.throwIfAborted();
    return new Promise<Response>((resolve, reject) => {
      const onResponse = (res: IncomingMessage): void => {
        const status = res.statusCode ?? 0;
        const headers = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const abortBody = (): void => {
          res.destroy(signal.reason as Error);
        };
        signal.addEventListener('abort', abortBody, { once: true });
        res.once('close', () => signal.removeEventListener('abort', abortBody));
        const noBody = request.method === 'HEAD' || NULL_BODY_STATUSES.has(status);
        if (noBody) res.resume();
        if (status < 200 || status > 599) {
          // Not an HTTP reply a client can use (a Response cannot even hold it): as if none came.
          res.destroy();
          reject(codedError('HPE_INVALID_STATUS', `the server answered with status ${status}`));
          return;
        }
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > MAX_BODY_BYTES) res.destroy(codedError('EMSGSIZE', `the reply's body is larger than ${MAX_BODY_BYTES} bytes`));
        });
        resolve(new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers }));
      };
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: 'application/json', 'accept-encoding': 'identity', ...Object.fromEntries(request.headers.entries()) };
      // As fetch does: Node frames a DELETE's body only with a length (it sends no chunked DELETE).
      if (body !== undefined) headers['content-length'] = String(body.length);
      const common = { method: request.method, headers };
      const req = https ? httpsRequest(target, { ...common, agent: httpsAgent }, onResponse) : httpRequest(target, { ...common, agent: httpAgent }, onResponse);
      const abort = (): void => {
        req.destroy(signal.reason as Error);
      };
      signal.addEventListener('abort', abort, { once: true });
      req.once('close', () => signal.removeEventListener('abort', abort));
      req.on('error', reject);
      req.end(body);
    });
  };
}
