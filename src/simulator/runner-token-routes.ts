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
import type { Handler, RequestContext, RouteSpec } from './routes.ts';
import type { ManagerReport } from './simulator-state.ts';

/** Looks up the runner of the request's `token`; 403 when GitLab would not accept it. */
function withRunnerToken(handler: (context: RequestContext, runner: { id: number; token: string }) => Reply): Handler {
  return (context) => {
    const token = requiredString(context.params, 'token');
    const id = context.state.runnerIdForToken(token);
    return id === undefined ? forbidden() : handler(context, { id, token });
  };
}

/** `POST /runners/reset_authentication_token`: the old token dies the moment the new one is issued. */
const resetWithToken = withRunnerToken(({ state }, { id }) => {
  const issued = state.resetToken(id)!;
  return json(201, issuedTokenBody(issued.token, issued.tokenExpiresAt));
});

/**
 * `POST /runners/verify`: the token is checked first (403), then a glrt- token needs a system_id
 * (400). With a system_id the runner-manager record is created or its contacted_at updated.
 */
const verify = withRunnerToken((context, { id, token }) => {
  const { state, params } = context;
  const systemId = optionalString(params, 'system_id');
  if (state.isGlrtToken(token) && !systemId) return badParam('system_id', 'is missing');
  state.recordContact(id, systemId ? managerReport(context, systemId) : undefined);
  return json(200, { id, ...issuedTokenBody(token, state.view(id)!.tokenExpiresAt) });
});

/** `POST /jobs/request`: gitlab-runner's poll. No jobs here: 204, and the manager's contact is recorded. */
const requestJob = withRunnerToken((context, { id }) => {
  const systemId = optionalString(context.params, 'system_id');
  context.state.recordContact(id, systemId ? managerReport(context, systemId) : undefined);
  return noContent();
});

/** `DELETE /runners` with the runner's own token. */
const unregister = withRunnerToken(({ state }, { id }) => {
  state.deleteRunner(id);
  return noContent();
});

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
