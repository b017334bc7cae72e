/**
 * Endpoints a runner calls with its own token (no access token): reset by token, verify,
 * jobs/request, unregister, and legacy registration with a registration token.
 */
import { forbidden, json, noContent, registrationDisallowed, badParam, type Reply } from './replies.ts';
import { issuedTokenBody } from './runner-views.ts';
import {
  optionalBoolean,
  optionalEnum,
  optionalInteger,
  optionalList,
  optionalObject,
  optionalString,
  requiredString,
  type ParamValue,
} from './request-params.ts';
import type { RequestContext, RouteSpec } from './routes.ts';
import type { ManagerReport } from './simulator-state.ts';

/** `POST /runners/reset_authentication_token`: the old token dies the moment the new one is issued. */
function resetWithToken({ state, params }: RequestContext): Reply {
  const token = requiredString(params, 'token');
  const id = state.runnerIdForToken(token);
  if (id === undefined) return forbidden();
  const issued = state.resetToken(id)!;
  return json(201, issuedTokenBody(issued.token, issued.tokenExpiresAt));
}

/**
 * `POST /runners/verify`: the token is checked first (403), then a glrt- token needs a system_id
 * (400). With a system_id the runner-manager record is created or its contacted_at updated.
 */
function verify(context: RequestContext): Reply {
  const { state, params } = context;
  const token = requiredString(params, 'token');
  const id = state.runnerIdForToken(token);
  if (id === undefined) return forbidden();
  const systemId = optionalString(params, 'system_id');
  if (state.isGlrtToken(token) && !systemId) return badParam('system_id', 'is missing');
  state.recordContact(id, systemId ? managerReport(context, systemId) : undefined);
  const runner = state.view(id)!;
  return json(200, { id, ...issuedTokenBody(token, runner.tokenExpiresAt) });
}

/** `POST /jobs/request`: gitlab-runner's poll. No jobs here: 204, and the manager's contact is recorded. */
function requestJob(context: RequestContext): Reply {
  const { state, params } = context;
  const token = requiredString(params, 'token');
  const id = state.runnerIdForToken(token);
  if (id === undefined) return forbidden();
  const systemId = optionalString(params, 'system_id');
  state.recordContact(id, systemId ? managerReport(context, systemId) : undefined);
  return noContent();
}

/** `DELETE /runners` with the runner's own token. */
function unregister({ state, params }: RequestContext): Reply {
  const token = requiredString(params, 'token');
  const id = state.runnerIdForToken(token);
  if (id === undefined) return forbidden();
  state.deleteRunner(id);
  return noContent();
}

/** Legacy `POST /runners` with a registration token: 410 unless legacy registration is enabled. */
function registerLegacy({ state, settings, params }: RequestContext): Reply {
  const registrationToken = requiredString(params, 'token');
  if (!settings.legacyRegistrationEnabled) return registrationDisallowed();
  if (settings.registrationToken === undefined || registrationToken !== settings.registrationToken) return forbidden();
  const maximumTimeout = optionalInteger(params, 'maximum_timeout');
  const { id, token } = state.addRunner({
    legacyToken: true,
    runnerType: 'instance_type',
    description: optionalString(params, 'description') ?? '',
    tagList: optionalList(params, 'tag_list') ?? [],
    runUntagged: optionalBoolean(params, 'run_untagged') ?? true,
    locked: optionalBoolean(params, 'locked') ?? false,
    paused: optionalBoolean(params, 'paused') ?? (optionalBoolean(params, 'active') === false),
    accessLevel: optionalEnum(params, 'access_level', ['not_protected', 'ref_protected'] as const) ?? 'not_protected',
    maximumTimeout: maximumTimeout ?? null,
    maintenanceNote: optionalString(params, 'maintenance_note'),
  });
  return json(201, issuedTokenBody(token, state.view(id)!.tokenExpiresAt, id));
}

function managerReport({ params, remoteAddress }: RequestContext, systemId: string): ManagerReport {
  const info = optionalObject(params, 'info') ?? {};
  return {
    systemId,
    ipAddress: remoteAddress,
    version: text(info.version),
    revision: text(info.revision),
    platform: text(info.platform),
    architecture: text(info.architecture),
  };
}

function text(value: ParamValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export const runnerTokenRoutes: readonly RouteSpec[] = [
  { method: 'POST', pattern: '/runners/reset_authentication_token', handler: resetWithToken, resetsToken: true },
  { method: 'POST', pattern: '/runners/verify', handler: verify },
  { method: 'POST', pattern: '/jobs/request', handler: requestJob },
  { method: 'DELETE', pattern: '/runners', handler: unregister },
  { method: 'POST', pattern: '/runners', handler: registerLegacy },
];
