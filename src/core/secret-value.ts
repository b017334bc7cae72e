import { InvalidInputError } from './errors.ts';
import type { RunnerSecretValue } from './types.ts';

/**
 * The JSON kept in each secret version. Keys are GitLab's own snake_case names so that a host can pick
 * the token out with POSIX tools: {"runner_id":12,"url":"https://…","token":"glrt-…",
 * "token_expires_at":"…"|null,"token_obtained_at":"…"}.
 */
interface StoredShape {
  runner_id: number;
  url: string;
  token: string;
  token_expires_at: string | null;
  token_obtained_at: string;
}

export function serializeSecretValue(value: RunnerSecretValue): string {
  const stored: StoredShape = {
    runner_id: value.runnerId,
    url: value.gitlabUrl,
    token: value.token,
    token_expires_at: value.tokenExpiresAt,
    token_obtained_at: value.tokenObtainedAt,
  };
  return JSON.stringify(stored);
}

/**
 * Parses and checks a stored value. Errors name the secret and the field, never the value itself:
 * the raw text holds a token.
 */
export function parseSecretValue(raw: string, where: string): RunnerSecretValue {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    throw new InvalidInputError(where, 'secret value is not JSON (expected {"runner_id", "url", "token", …})');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new InvalidInputError(where, 'secret value is not a JSON object');
  }
  const o = data as Record<string, unknown>;
  if (o.adopted === false) {
    throw new InvalidInputError(where, 'the runner is not adopted yet: store its current token first (`rotator adopt`)');
  }
  const runnerId = o.runner_id;
  if (typeof runnerId !== 'number' || !Number.isInteger(runnerId) || runnerId <= 0) {
    throw new InvalidInputError(`${where}: runner_id`, 'must be a positive integer');
  }
  const url = o.url;
  if (typeof url !== 'string' || !/^https?:\/\/[^\s/]+/.test(url)) {
    throw new InvalidInputError(`${where}: url`, 'must be an http(s) URL of the GitLab instance');
  }
  const token = o.token;
  if (typeof token !== 'string' || token.length < 8 || /\s/.test(token)) {
    throw new InvalidInputError(`${where}: token`, 'must be a non-empty runner token without whitespace');
  }
  const expires = o.token_expires_at ?? null;
  if (expires !== null && (typeof expires !== 'string' || Number.isNaN(Date.parse(expires)))) {
    throw new InvalidInputError(`${where}: token_expires_at`, 'must be an ISO 8601 time or null');
  }
  const obtained = o.token_obtained_at;
  if (typeof obtained !== 'string' || Number.isNaN(Date.parse(obtained))) {
    throw new InvalidInputError(`${where}: token_obtained_at`, 'must be an ISO 8601 time');
  }
  return { runnerId, gitlabUrl: url, token, tokenExpiresAt: expires, tokenObtainedAt: obtained };
}
