/**
 * Endpoints that need an access token (PRIVATE-TOKEN): reset by id, runner details and managers,
 * runner lists, runner creation and deletion, enabling a project runner on a project, version. See access-control.ts for who may do what.
 */
import { accessTokenOf, checkAccess, type AccessNeed } from './access-control.ts';
import { paginate } from './pagination.ts';
import { badParam, json, noContent, notFound, type Reply } from './replies.ts';
import {
  optionalBoolean,
  optionalEnum,
  optionalInteger,
  optionalList,
  optionalString,
  type Params,
} from './request-params.ts';
import type { Handler, RequestContext, RouteSpec } from './routes.ts';
import { issuedTokenBody, managerView, runnerDetail, runnerStatus, runnerSummary } from './runner-views.ts';
import type { RunnerView } from './simulator-state.ts';

const RUNNER_TYPES = ['instance_type', 'group_type', 'project_type'] as const;
const STATUSES = ['online', 'offline', 'stale', 'never_contacted'] as const;

/** Wraps a handler with an access check; the handler runs only when access is granted. */
function withAccess(need: AccessNeed, handler: Handler): Handler {
  return (context) => checkAccess(context.state, context.headers, need) ?? handler(context);
}

/** Looks up `:id`; 404 "Runner Not Found" when there is no such runner. */
function withRunner(handler: (context: RequestContext, runner: RunnerView) => Reply): Handler {
  return (context) => {
    const runner = context.state.view(Number(context.pathParams.id));
    return runner ? handler(context, runner) : notFound('Runner');
  };
}

/**
 * `POST /runners/:id/reset_authentication_token` (lib/api/ci/runners.rb, `authenticate_update_runner!`):
 * needs an access token that may manage the runner; no runner heartbeat and no manager record (unlike
 * the reset by token).
 */
function resetById({ state }: RequestContext, runner: RunnerView): Reply {
  const issued = state.resetToken(runner.id)!;
  return json(201, issuedTokenBody(issued.token, issued.tokenExpiresAt));
}

/** `GET /runners/:id` (lib/api/ci/runners.rb). */
function showRunner({ state }: RequestContext, runner: RunnerView): Reply {
  return json(200, runnerDetail(runner, state.now()));
}

/** `GET /runners/:id/managers` (lib/api/ci/runners.rb): every manager record, `<legacy>` ones included. */
function listManagers({ state }: RequestContext, runner: RunnerView): Reply {
  const now = state.now();
  return json(200, [...runner.managers.values()].map((manager) => managerView(manager, now)));
}

/**
 * `DELETE /runners/:id` (lib/api/ci/runners.rb `authenticate_delete_runner!`): an admin may delete any runner;
 * anyone else gets 403 "Runner associated with more than one project" for a project runner serving more
 * than one project (they may disable it from the other projects first, or ask an admin).
 */
function deleteRunner(context: RequestContext, runner: RunnerView): Reply {
  if (!callerIsAdmin(context) && runner.projectIds.length > 1) return forbiddenBecause('Runner associated with more than one project');
  context.state.deleteRunner(runner.id);
  return noContent();
}

/** The access token of the request is an administrator's (checkAccess already let it in). */
function callerIsAdmin({ state, headers }: RequestContext): boolean {
  const token = accessTokenOf(headers);
  return token !== undefined && state.accessToken(token)?.admin === true;
}

/** `{"message":"403 Forbidden - <reason>"}`, what Grape's `forbidden!(reason)` sends. */
function forbiddenBecause(reason: string): Reply {
  return json(403, { message: `403 Forbidden - ${reason}` });
}

/**
 * `GET /user` (lib/api/users.rb): the token's user, presented with Entities::UserWithAdmin (which adds
 * `is_admin: true`) only when that user is an administrator; anyone else gets Entities::UserPublic, with no
 * `is_admin` field at all.
 */
function currentUser(context: RequestContext): Reply {
  const admin = callerIsAdmin(context);
  return json(200, { id: admin ? 1 : 2, username: admin ? 'root' : 'maintainer', state: 'active', ...(admin ? { is_admin: true } : {}) });
}

/**
 * `GET /runners` and `GET /runners/all` (lib/api/ci/runners.rb), newest first (GitLab's default `created_at_desc`). Filters:
 * `type`, `paused`, `status`, `tag_list` (the runner has every tag listed).
 */
function listRunners({ state, query, selfUrl }: RequestContext): Reply {
  const filter = queryParams(query);
  const type = optionalEnum(filter, 'type', RUNNER_TYPES);
  const paused = optionalBoolean(filter, 'paused');
  const status = optionalEnum(filter, 'status', STATUSES);
  const tags = optionalList(filter, 'tag_list');
  const now = state.now();
  const matching: RunnerView[] = [];
  for (const runner of state.views()) {
    if (type !== undefined && runner.runnerType !== type) continue;
    if (paused !== undefined && runner.paused !== paused) continue;
    if (status !== undefined && runnerStatus(runner, now) !== status) continue;
    if (tags !== undefined && !tags.every((tag) => runner.tagList.includes(tag))) continue;
    matching.push(runner);
  }
  matching.reverse();
  const page = paginate(matching, query, selfUrl);
  return json(200, page.items.map((runner) => runnerSummary(runner, now)), page.headers);
}

/**
 * `POST /user/runners` (lib/api/user_runners.rb, Ci::Runners::CreateRunnerService): runner_type required;
 * group_id for group_type, project_id for project_type. `locked` defaults to false here, as the model does.
 * An instance runner needs an administrator (Ci::Runners::CreateRunnerService, InstanceRunnerStrategy).
 */
function createRunner(context: RequestContext): Reply {
  const { state, params } = context;
  const runnerType = optionalEnum(params, 'runner_type', RUNNER_TYPES);
  if (runnerType === undefined) return badParam('runner_type', 'is missing');
  // Ci::Runners::CreateRunnerService's InstanceRunnerStrategy: only an administrator may create an instance runner.
  if (runnerType === 'instance_type' && !callerIsAdmin(context)) return forbiddenBecause('Insufficient permissions');
  const groupId = optionalInteger(params, 'group_id');
  const projectId = optionalInteger(params, 'project_id');
  if (runnerType === 'group_type' && groupId === undefined) return badParam('group_id', 'is missing');
  if (runnerType === 'project_type' && projectId === undefined) return badParam('project_id', 'is missing');
  const { id, token } = state.addRunner({
    runnerType,
    groupId: runnerType === 'group_type' ? groupId : undefined,
    projectIds: runnerType === 'project_type' && projectId !== undefined ? [projectId] : [],
    description: optionalString(params, 'description') ?? '',
    paused: optionalBoolean(params, 'paused') ?? false,
    locked: optionalBoolean(params, 'locked') ?? false,
    runUntagged: optionalBoolean(params, 'run_untagged') ?? true,
    tagList: optionalList(params, 'tag_list') ?? [],
    accessLevel: optionalEnum(params, 'access_level', ['not_protected', 'ref_protected'] as const) ?? 'not_protected',
    maximumTimeout: optionalInteger(params, 'maximum_timeout') ?? null,
    maintenanceNote: optionalString(params, 'maintenance_note'),
  });
  return json(201, issuedTokenBody(token, state.view(id)!.tokenExpiresAt, id));
}

/**
 * `POST /projects/:id/runners` (runner_id; lib/api/ci/runners.rb `authenticate_enable_runner!`): 403 for a
 * runner that is not a project runner; then an admin may enable any project runner, anyone else gets 403
 * "Runner is locked" for a locked one (project runners are registered locked by default:
 * `gitlab-runner register --locked` defaults to true).
 */
function enableInProject(context: RequestContext): Reply {
  const { state, params, pathParams } = context;
  const runnerId = optionalInteger(params, 'runner_id');
  if (runnerId === undefined) return badParam('runner_id', 'is missing');
  const projectId = Number(pathParams.id);
  const runner = state.view(runnerId);
  if (runner?.runnerType === 'project_type' && runner.locked && !callerIsAdmin(context)) return forbiddenBecause('Runner is locked');
  switch (state.enableInProject(runnerId, projectId)) {
    case 'no-runner':
      return notFound('Runner');
    case 'not-project':
      return forbiddenBecause('Runner is a group or instance runner');
    case 'already':
      return json(400, { message: { runner_id: ['has already been taken'] } });
    case 'enabled':
      return json(201, runnerSummary(state.view(runnerId)!, state.now()));
  }
}

/** `GET /version` (lib/api/version.rb): any valid token. */
function version({ settings }: RequestContext): Reply {
  return json(200, { version: settings.version, revision: settings.revision });
}

/** `GET /metadata` (lib/api/metadata.rb, GitLab 15.2+), what gitbeaker's Metadata.show reads. */
function metadata({ settings }: RequestContext): Reply {
  return json(200, { version: settings.version, revision: settings.revision, kas: { enabled: false, externalUrl: null, version: null }, enterprise: false });
}

function queryParams(query: URLSearchParams): Params {
  const params: Params = {};
  for (const [key, value] of query) params[key] = value;
  return params;
}

export const accessTokenRoutes: readonly RouteSpec[] = [
  { method: 'POST', pattern: '/runners/:id/reset_authentication_token', handler: withAccess('write', withRunner(resetById)), resetsToken: true },
  { method: 'GET', pattern: '/runners/all', handler: withAccess('admin', listRunners) },
  { method: 'GET', pattern: '/runners', handler: withAccess('read', listRunners) },
  { method: 'GET', pattern: '/runners/:id', handler: withAccess('read', withRunner(showRunner)) },
  { method: 'GET', pattern: '/runners/:id/managers', handler: withAccess('read', withRunner(listManagers)) },
  { method: 'DELETE', pattern: '/runners/:id', handler: withAccess('write', withRunner(deleteRunner)) },
  { method: 'POST', pattern: '/user/runners', handler: withAccess('create', createRunner) },
  { method: 'POST', pattern: '/projects/:id/runners', handler: withAccess('write', enableInProject) },
  { method: 'GET', pattern: '/user', handler: withAccess('any', currentUser) },
  { method: 'GET', pattern: '/version', handler: withAccess('any', version) },
  { method: 'GET', pattern: '/metadata', handler: withAccess('any', metadata) },
];
