/**
 * Endpoints a runner calls with its own token (no access token): reset by token, verify,
 * jobs/request, unregister, and legacy registration with a registration token.
 */
import { forbidden, json, noContent, registrationDisallowed, type Reply } from './replies.ts';
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

/** The system_id GitLab files a request under when it carries none (lib/api/ci/helpers/runner.rb LEGACY_SYSTEM_XID). */
export const LEGACY_SYSTEM_ID = '<legacy>';

/** Looks up the runner of the request's `token`; 403 when GitLab would not accept it. Nothing else. */
function withRunnerToken(handler: (context: RequestContext, runner: { id: number; token: string }) => Reply): Handler {
  return (context) => {
    const token = requiredString(context.params, 'token');
    const id = context.state.runnerIdForToken(token);
    return id === undefined ? forbidden() : handler(context, { id, token });
  };
}

/**
 * GitLab's `authenticate_runner!` (lib/api/ci/helpers/runner.rb), which verify, reset by token and
 * jobs/request run first: 403 unless the token is a runner's current one; then `current_runner.heartbeat`
 * (the runner's contacted_at) and `current_runner_manager&.heartbeat(runner_details)`, where the manager is
 * `ensure_manager(params.fetch(:system_id, '<legacy>'))` and the details carry the caller's `ip_address`
 * (and `info`'s version, revision, platform, architecture when sent). So every such call creates or
 * refreshes a manager record, in the name of whatever system_id it carries.
 */
function authenticatedRunner(handler: (context: RequestContext, runner: { id: number; token: string }) => Reply): Handler {
  return withRunnerToken((context, runner) => {
    context.state.recordContact(runner.id, managerReport(context, optionalString(context.params, 'system_id') ?? LEGACY_SYSTEM_ID));
    return handler(context, runner);
  });
}

/**
 * `POST /runners/reset_authentication_token` (lib/api/ci/runner.rb): authenticate_runner!, then
 * Ci::Runners::ResetAuthenticationTokenService; the old token dies the moment the new one is issued.
 */
const resetWithToken = authenticatedRunner(({ state }, { id }) => {
  const issued = state.resetToken(id)!;
  return json(201, issuedTokenBody(issued.token, issued.tokenExpiresAt));
});

/**
 * `POST /runners/verify` (lib/api/ci/runner.rb): authenticate_runner!, then 200 with the runner's id, token
 * and token_expires_at (Entities::Ci::RunnerRegistrationDetails). `system_id` is optional: without one the
 * heartbeat goes to the `<legacy>` manager.
 */
const verify = authenticatedRunner(({ state }, { id, token }) => json(200, { id, ...issuedTokenBody(token, state.view(id)!.tokenExpiresAt) }));

/** `POST /jobs/request` (lib/api/ci/runner.rb): gitlab-runner's poll; authenticate_runner!, then 204: no jobs here. */
const requestJob = authenticatedRunner(() => noContent());

/** `DELETE /runners` with the runner's own token (lib/api/ci/runner.rb: no manager heartbeat). */
const unregister = withRunnerToken(({ state }, { id }) => {
  state.deleteRunner(id);
  return noContent();
});

/** Legacy `POST /runners` with a registration token (lib/api/ci/runner.rb): 410 unless legacy registration is enabled. */
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
