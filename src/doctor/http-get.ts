/**
 * One GET over node:http / node:https for the doctor's read-only probes (GET /version, GET
 * /application/settings), with the reason for a missing reply classified.
 *
 * Why not fetch (as the GitLab adapter uses): a runner's `tls-ca-file` must be trusted for this one
 * request, and Node's fetch takes a per-request CA only through undici's Agent, which is not a
 * dependency here. node:https takes `ca` directly and reports the system and TLS error codes as they
 * are (ENOTFOUND, ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT …). Like fetch, it ignores HTTPS_PROXY.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { NoReplyCause } from './facts.ts';

export interface GetOptions {
  timeoutMs: number;
  /** PEM text trusted besides Node's bundled roots (a runner's tls-ca-file); null: the defaults (+ NODE_EXTRA_CA_CERTS). */
  extraCa?: string | null;
  headers?: Record<string, string>;
  /** The local clock (ms); default Date.now. */
  nowMs?: () => number;
  /** Bytes of body kept; the rest is read and dropped. */
  maxBodyBytes?: number;
}

export type GetResult =
  | { kind: 'reply'; status: number; headers: IncomingMessage['headers']; body: string; localMs: number }
  | { kind: 'no-reply'; cause: NoReplyCause; code: string; detail: string };

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

export function httpGet(url: string, options: GetOptions): Promise<GetResult> {
  const nowMs = options.nowMs ?? Date.now;
  const maxBody = options.maxBodyBytes ?? 64 * 1024;
  return new Promise<GetResult>((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve({ kind: 'no-reply', cause: 'other', code: 'ERR_INVALID_URL', detail: 'not a url' });
      return;
    }
    const https = target.protocol === 'https:';
    if (!https && target.protocol !== 'http:') {
      resolve({ kind: 'no-reply', cause: 'other', code: 'ERR_UNSUPPORTED_PROTOCOL', detail: `${target.protocol} is not http or https` });
      return;
    }
    const started = nowMs();
    let settled = false;
    const settle = (result: GetResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const onResponse = (res: IncomingMessage): void => {
      const localMs = Math.round((started + nowMs()) / 2);
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept < maxBody) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      res.on('end', () => settle({ kind: 'reply', status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, maxBody), localMs }));
      res.on('error', () => settle({ kind: 'reply', status: res.statusCode ?? 0, headers: res.headers, body: '', localMs }));
    };
    const common = { method: 'GET', headers: { accept: 'application/json', ...options.headers }, agent: false as const };
    const req = https
      ? httpsRequest(target, { ...common, ...(options.extraCa ? { ca: [...rootCertificates, options.extraCa] } : {}) }, onResponse)
      : httpRequest(target, common, onResponse);
    const timer = setTimeout(() => {
      settle({ kind: 'no-reply', cause: 'timeout', code: 'ETIMEDOUT', detail: `no reply within ${options.timeoutMs} ms` });
      req.destroy();
    }, options.timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => {
      const code = typeof error.code === 'string' ? error.code : 'ERROR';
      // The message names the host and port, or OpenSSL's reason; a request carries no token in its url.
      const detail = (error.message.split('\n')[0] ?? '').slice(0, 200);
      settle({ kind: 'no-reply', cause: classifyNoReply(code), code, detail });
    });
    req.end();
  });
}
