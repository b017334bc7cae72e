/**
 * Access-token checks. Simplified from GitLab (documented in README of the simulator, see
 * gitlab-simulator.ts): an admin token may do everything; otherwise
 * - read: `api`, `read_api` or `manage_runner`;
 * - write (reset by id, delete): `api` or `manage_runner`;
 * - create (`POST /user/runners`): `create_runner` or `api` (api is GitLab's all-purpose scope);
 * - admin (`GET /runners/all`): admin only;
 * - any: any valid token (`GET /version`).
 * No or an unknown token is 401; a known token without what is needed is 403.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { forbidden, unauthorized, type Reply } from './replies.ts';
import type { AccessScope, AccessTokenRecord, SimulatorState } from './simulator-state.ts';

export type AccessNeed = 'any' | 'read' | 'write' | 'create' | 'admin';

const SCOPES_FOR: Record<Exclude<AccessNeed, 'any' | 'admin'>, readonly AccessScope[]> = {
  read: ['api', 'read_api', 'manage_runner'],
  write: ['api', 'manage_runner'],
  create: ['create_runner', 'api'],
};

/** The access token of a request: `PRIVATE-TOKEN`, else `Authorization: Bearer`. */
export function accessTokenOf(headers: IncomingHttpHeaders): string | undefined {
  const privateToken = headers['private-token'];
  if (typeof privateToken === 'string' && privateToken !== '') return privateToken;
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && /^bearer\s+/i.test(authorization)) return authorization.replace(/^bearer\s+/i, '');
  return undefined;
}

/** undefined when allowed; otherwise the 401/403 reply. */
export function checkAccess(state: SimulatorState, headers: IncomingHttpHeaders, need: AccessNeed): Reply | undefined {
  const token = accessTokenOf(headers);
  const record = token === undefined ? undefined : state.accessToken(token);
  if (!record) return unauthorized();
  return allows(record, need) ? undefined : forbidden();
}

function allows(record: AccessTokenRecord, need: AccessNeed): boolean {
  if (need === 'any' || record.admin) return true;
  if (need === 'admin') return false;
  return SCOPES_FOR[need].some((scope) => record.scopes.has(scope));
}
