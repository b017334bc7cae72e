/** Replies as GitLab sends them: a status, a JSON body, and extra headers. */
import { STATUS_CODES } from 'node:http';

export interface Reply {
  status: number;
  /** JSON-serialised; absent for 204. */
  body?: unknown;
  /** A text/plain body instead of JSON (GitLab's throttle reply). */
  text?: string;
  headers?: Record<string, string>;
}

export function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return headers ? { status, body, headers } : { status, body };
}

export function noContent(): Reply {
  return { status: 204 };
}

/** `{"message":"<status> <reason>"}`, GitLab's shape for 401, 403, 404, 5xx. */
export function statusMessage(status: number, reason = STATUS_CODES[status] ?? 'Error'): Reply {
  return json(status, { message: `${status} ${reason}` });
}

export const unauthorized = (): Reply => statusMessage(401, 'Unauthorized');
export const forbidden = (): Reply => statusMessage(403, 'Forbidden');
export const notFound = (what?: string): Reply => statusMessage(404, what ? `${what} Not Found` : 'Not Found');
export const registrationDisallowed = (): Reply => statusMessage(410, 'Gone - runner registration disallowed');

/** Grape's parameter errors: `{"error":"token is missing"}` with 400. */
export function badParam(name: string, problem: 'is missing' | 'is invalid' | 'does not have a valid value'): Reply {
  return json(400, { error: `${name} ${problem}` });
}
