/**
 * The "replace" strategy: a new runner beside the old one, so that some runner of the pair always holds
 * a valid token on every host (no outage window; DESIGN.md, end of "Rotation, step by step"). It is also
 * how `rotator migrate` moves a runner off a legacy registration token.
 *
 * - createSecret: read the old runner's settings, create the new runner with them (POST /user/runners)
 *   and store its token as AWSPENDING at once (invariant 2: nothing in between). The old runner stays
 *   valid. A store that never lands deletes the new runner again.
 * - setSecret: enable the new runner on every other project the old one served (idempotent), then add
 *   its table on every host, copied from the old one's (`--mode add`).
 * - testSecret: wait until every host's gitlab-runner has contacted GitLab as the new runner (its
 *   system_id among the new runner's managers). A host that did not take it, or never makes contact,
 *   fails the step naming the host: the old runner is kept everywhere and AWSCURRENT does not move.
 * - finishSecret: record and promote (AWSCURRENT names the new runner, which every host runs), then
 *   retire the old runner (retireReplacedRunner): remove its table from the hosts, make sure no other
 *   host still runs it, delete it. Its token dies only then.
 *
 * Every step may run again for the same version. Retiring is also finished by a finishSecret run again
 * after the promotion, and by every scan until the record says it is done, so a crash or a GitLab outage
 * after the promotion never leaves the old runner behind for good. The access token (the admin token of the
 * GitLab) must be allowed to read, create and delete runners (`api` scope, or an administrator's token).
 */
import { GitLabNotFoundError, RotationError } from './errors.ts';
import type { ReplaceTiming, RotationDeps } from './ports.ts';
import { currentVersionId } from './rotation-guards.ts';
import { serializeSecretValue } from './secret-value.ts';
import { describeError, pendingOf, readValue, recordPending, storeUntilDeadline, type StepOutcome, type StepRequest } from './step-support.ts';
import { promoteVersion, pushVersion, type StrategyMarks } from './strategy-steps.ts';
import { hostHoldsVersion, restrictHosts } from './types.ts';
import type { HostResult, RotationRecord, RotationStep, RunnerSecretValue, RunnerSettings } from './types.ts';

/** gitlab-runner polls every few seconds (check_interval 3 s by default): minutes is plenty. */
export const DEFAULT_REPLACE_TIMING: ReplaceTiming = { confirmWithinMs: 5 * 60_000, pollMs: 5_000 };

/** A new rotation replaces its runner when the runner's config asks for it, or `rotator migrate` did. */
export async function replacementWanted(deps: RotationDeps, secretId: string): Promise<boolean> {
  if (deps.runnerFor(secretId)?.strategy === 'replace') return true;
  return (await deps.ledger.replacementRequested(secretId)) !== undefined;
}

/** A rotation in flight is a replacement when its version holds another runner than AWSCURRENT. */
export async function isReplacement(deps: RotationDeps, secretId: string, versionId: string): Promise<boolean> {
  const pending = await deps.secrets.getValue(secretId, { versionId });
  if (pending === undefined) return false;
  const current = await deps.secrets.getValue(secretId, { stage: 'AWSCURRENT' });
  if (current === undefined) return false;
  return runnerIdOf(pending) !== runnerIdOf(current);
}

/**
 * Why a replacement of this runner needs an administrator's access token, or undefined when a Maintainer's
 * (project) or Owner's (group) will do. GitLab lets only an administrator (lib/api/ci/runners.rb):
 * - enable a locked project runner in a project (`authenticate_enable_runner!`: 403 "Runner is locked");
 *   project runners are registered locked by default, and the new runner copies `locked`;
 * - delete a project runner of more than one project (`authenticate_delete_runner!`: 403 "Runner associated
 *   with more than one project").
 * A project runner that serves several projects meets the second rule whatever its lock, so it is refused
 * before anything is created: never a new runner left behind, never an old one no scan can delete.
 */
export function replacementNeedsAdmin(settings: Pick<RunnerSettings, 'runnerType' | 'projectIds' | 'locked'>): string | undefined {
  if (settings.runnerType !== 'project_type' || settings.projectIds.length <= 1) return undefined;
  const enable = settings.locked ? 'enable the locked new runner in the other projects ("Runner is locked") and ' : '';
  return `it is a project runner of ${settings.projectIds.length} projects (${settings.projectIds.join(', ')}), and GitLab lets only an administrator ${enable}delete a project runner of more than one project ("Runner associated with more than one project")`;
}

export async function replaceCreateSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null, current: RunnerSecretValue): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'createSecret';
  const { gitlabUrl } = current;
  const accessToken = await requireAccessToken(deps, secretId, current, step);
  const old = await deps.gitlab.runner(gitlabUrl, current.runnerId, accessToken);
  if (old.runnerType === 'project_type' && old.projectIds.length === 0) {
    throw new RotationError(`Runner ${current.runnerId} is a project runner but GitLab shows no project of it to the access token`, {
      secretId,
      step,
      fix: `Give the access token's user the Maintainer role on runner ${current.runnerId}'s projects, then rotate again.`,
    });
  }
  const adminOnly = replacementNeedsAdmin(old);
  if (adminOnly && !(await deps.gitlab.isAdmin(gitlabUrl, accessToken))) {
    throw new RotationError(`Replacing runner ${current.runnerId} needs an administrator's access token: ${adminOnly}; nothing was created`, {
      secretId,
      step,
      code: 'replace-needs-access-token',
      fix: `Store an administrator's access token in the admin token secret of ${gitlabUrl} (GET /user must say is_admin), or rotate runner ${current.runnerId} with the reset strategy.`,
    });
  }
  const created = await deps.gitlab.createRunner(gitlabUrl, accessToken, old);
  const createdAt = deps.clock.now().toISOString();
  const next: RunnerSecretValue = { runnerId: created.id, gitlabUrl, token: created.token, tokenExpiresAt: created.tokenExpiresAt, tokenObtainedAt: createdAt };
  let attempts: number;
  try {
    attempts = await storeUntilDeadline(deps, request, serializeSecretValue(next), (tries, error) => {
      return new RotationError(
        `GitLab created runner ${created.id} to replace runner ${current.runnerId} but storing its token as version ${versionId} of ${secretId} failed ${tries} times; runner ${current.runnerId} keeps working`,
        { secretId, step, code: 'store-failed', fix: `Fix the store (${describeError(error)}), then rotate again.`, cause: error },
      );
    });
  } catch (error) {
    // An attempt whose reply was lost may have stored it after all: then the version holds the runner.
    const landed = await deps.secrets.getValue(secretId, { versionId }).catch(() => undefined);
    if (landed === undefined || runnerIdOf(landed) !== created.id) {
      // Nobody holds the new runner's token: delete it, so that a retry does not leave one behind per attempt.
      await deleteRunner(deps, gitlabUrl, created.id, accessToken).catch((deleteError: unknown) => {
        deps.events({ kind: 'warning', secretId, message: `could not delete the unused new runner ${created.id}: ${describeError(deleteError)}; delete it in GitLab` });
      });
    }
    throw error;
  }
  const storedAt = deps.clock.now().toISOString();
  deps.events({ kind: 'runner-created', secretId, runnerId: created.id, replaces: current.runnerId, projects: old.projectIds });
  deps.events({ kind: 'token-stored', secretId, versionId, attempts });
  await recordPending(deps, {
    secretId,
    versionId,
    fromVersionId,
    resetAt: createdAt,
    storedAt,
    hosts: [],
    ...replaceMarks(current),
  });
  return { step };
}

/** The replace strategy's setSecret: the new runner is enabled on every project, then the hosts add its table beside the old one's. */
export async function replaceSetSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'setSecret';
  const next = await readValue(deps, secretId, { versionId }, step);
  const current = await readValue(deps, secretId, { stage: 'AWSCURRENT' }, step);
  return pushVersion(deps, request, fromVersionId, {
    value: next,
    marks: replaceMarks(current),
    beforePush: () => enableOnEveryProject(deps, secretId, current, next.runnerId, step),
    addFromRunnerId: current.runnerId,
    missed: (h) => `host ${h.host} did not add runner ${next.runnerId}: ${h.status} (${h.detail}); runner ${current.runnerId} keeps working there`,
  });
}

/**
 * Waits until each host that added the new runner shows up among its managers (the host's system_id):
 * only a gitlab-runner holding the new token can create that record. Fails, naming the hosts, when a
 * host did not add the runner, reported no system_id, or made no contact in time.
 */
export async function replaceTestSecret(deps: RotationDeps, request: StepRequest): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'testSecret';
  const next = await readValue(deps, secretId, { versionId }, step);
  const current = await readValue(deps, secretId, { stage: 'AWSCURRENT' }, step);
  const { hosts } = await pendingOf(deps, secretId, versionId, null);
  const unconfirmed = (list: HostResult[], why: string) => unconfirmedError(secretId, next.runnerId, current.runnerId, list, why);
  if (hosts.length === 0) throw unconfirmed([], 'no host results are recorded for this rotation (setSecret did not run or its record was lost)');
  const notAdded = hosts.filter((h) => !hostHoldsVersion(h) || h.systemId === null);
  if (notAdded.length > 0) {
    const named = notAdded.map((h) => (hostHoldsVersion(h) ? { ...h, status: 'failed' as const, detail: `${h.detail}; reported no system_id to confirm it by` } : h));
    throw unconfirmed(named, 'did not add the new runner');
  }
  const accessToken = await requireAccessToken(deps, secretId, next, step);
  const timing = deps.replace ?? DEFAULT_REPLACE_TIMING;
  const giveUpAt = Math.min(request.deadline.getTime(), deps.clock.now().getTime() + timing.confirmWithinMs);
  const waiting = new Map(hosts.map((h) => [h.systemId as string, h]));
  for (;;) {
    for (const manager of await deps.gitlab.managers(next.gitlabUrl, next.runnerId, accessToken)) {
      const host = waiting.get(manager.systemId);
      if (!host) continue;
      waiting.delete(manager.systemId);
      deps.events({ kind: 'host-confirmed', secretId, runnerId: next.runnerId, host: host.host, systemId: manager.systemId });
    }
    if (waiting.size === 0) break;
    if (deps.clock.now().getTime() + timing.pollMs >= giveUpAt) {
      const seconds = Math.round(timing.confirmWithinMs / 1000);
      const silent = [...waiting.values()].map((h) => ({ ...h, status: 'timed-out' as const, detail: `its gitlab-runner did not contact GitLab as runner ${next.runnerId} (within ${seconds} s or the step's deadline)` }));
      throw unconfirmed(silent, 'never contacted GitLab as the new runner');
    }
    await deps.clock.sleep(timing.pollMs);
  }
  deps.events({ kind: 'token-verified', secretId, versionId, systemId: null, verified: true, reason: `every host's gitlab-runner contacted GitLab as runner ${next.runnerId}` });
  return { step, hosts };
}

/**
 * The replace strategy's finishSecret: AWSCURRENT moves first, while every host still has both tables, so at
 * no moment does the secret name a runner the hosts do not run; then the old runner is retired, and its
 * token dies with it (so that is the record's resetAt). testSecret let no host miss: there is none to name.
 */
export async function replaceFinishSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'finishSecret';
  const next = await readValue(deps, secretId, { versionId }, step);
  const current = await readValue(deps, secretId, { stage: 'AWSCURRENT' }, step);
  return promoteVersion(deps, request, fromVersionId, {
    value: next,
    marks: replaceMarks(current),
    oldTokenDies: 'promotion',
    afterPromotion: (record) => retireReplacedRunner(deps, record, current.gitlabUrl),
  });
}

/** The ledger's mark of a replacement: the runner the new one replaces is AWSCURRENT's until the promotion. */
function replaceMarks(current: RunnerSecretValue): StrategyMarks {
  return { strategy: 'replace', replacedRunnerId: current.runnerId };
}

/** What retiring an old runner needs: the rotation's ports, which the scan has too. */
export type RetireDeps = Pick<RotationDeps, 'secrets' | 'gitlab' | 'fleet' | 'ledger' | 'clock' | 'events' | 'adminToken' | 'runnerFor'>;

/**
 * The old runner of a finished replacement goes: its table is removed from the hosts that run the new
 * runner (idempotent), then, unless some other host still runs it, it is deleted (its token dies), and the
 * record is marked retired. A runner gone already means this was done before. Called by finishSecret after
 * the promotion, by finishSecret run again, and by the scan while the record is not marked retired.
 *
 * Acts only while the record is still the secret's story: AWSCURRENT is the record's version and names the
 * new runner. After a cancelled promotion or an adopt of another token it does nothing (the old runner may
 * be the one the hosts run). Throws a RotationError when a host the rotation did not know still runs the
 * old runner (it would go offline), or when the delete fails.
 */
export async function retireReplacedRunner(deps: RetireDeps, record: RotationRecord, gitlabUrl: string): Promise<void> {
  const { secretId, replacedRunnerId: oldId } = record;
  if (record.strategy !== 'replace' || oldId === undefined || record.replacedRunnerRetiredAt !== undefined) return;
  if (!(await stillCurrent(deps, record))) {
    deps.events({ kind: 'warning', secretId, message: `runner ${oldId} is not retired: AWSCURRENT is no longer the replacement to runner ${record.runnerId} (version ${record.toVersionId})` });
    return;
  }
  const step = 'finishSecret';
  const accessToken = await requireAccessToken(deps, secretId, { gitlabUrl, runnerId: oldId }, step);
  try {
    await deps.gitlab.runner(gitlabUrl, oldId, accessToken);
  } catch (error) {
    if (!(error instanceof GitLabNotFoundError)) throw error;
    await deps.ledger.markRetired(secretId, record.toVersionId, deps.clock.now().toISOString());
    return;
  }
  const runner = deps.runnerFor(secretId);
  if (runner) {
    // Only where the new runner runs: a host that does not run it keeps its only working table.
    const running = record.hosts.filter(hostHoldsVersion).map((h) => h.host);
    const hosts = restrictHosts(runner.hosts, running);
    const removed = await deps.fleet.remove({ ...runner, runnerId: oldId, hosts }, { secretId, versionId: record.toVersionId }, (result) =>
      deps.events({ kind: 'host-removed', secretId, runnerId: oldId, result }),
    );
    for (const left of removed.filter((h) => !hostHoldsVersion(h))) {
      deps.events({
        kind: 'warning',
        secretId,
        message: `host ${left.host} still has runner ${oldId}'s table (${left.status}: ${left.detail}); runner ${record.runnerId} works there, remove the dead table with update-runner-token.sh --mode remove`,
      });
    }
  }
  await refuseWhileOthersRunIt(deps, record, gitlabUrl, oldId, accessToken);
  try {
    const alreadyGone = await deleteRunner(deps, gitlabUrl, oldId, accessToken);
    deps.events({ kind: 'runner-deleted', secretId, runnerId: oldId, alreadyGone });
  } catch (error) {
    throw new RotationError(`Runner ${record.runnerId} replaced runner ${oldId} on every host and is current, but deleting runner ${oldId} failed`, {
      secretId,
      step,
      code: 'replaced-runner-not-deleted',
      fix: `Delete runner ${oldId} in GitLab (DELETE /runners/${oldId}, or Remove runner in its page), or let the next scan do it: no host uses it, but its token (in AWSPREVIOUS) stays valid until then.`,
      cause: error,
    });
  }
  await deps.ledger.markRetired(secretId, record.toVersionId, deps.clock.now().toISOString());
}

/** AWSCURRENT is the record's version and names its new runner. */
async function stillCurrent(deps: RetireDeps, record: RotationRecord): Promise<boolean> {
  const description = await deps.secrets.describe(record.secretId);
  if (currentVersionId(description) !== record.toVersionId) return false;
  const raw = await deps.secrets.getValue(record.secretId, { stage: 'AWSCURRENT' });
  return raw !== undefined && runnerIdOf(raw) === record.runnerId && record.runnerId !== record.replacedRunnerId;
}

/** GitLab's Ci::Runner::ONLINE_CONTACT_TIMEOUT: a host that contacted GitLab this long before the rotation may be back. */
const RECENT_CONTACT_MS = 2 * 3_600_000;

/**
 * A host the rotation did not move still runs the old runner: an instance that came up with the tag and
 * the old token, or a host that was down during the rotation. It shows as a manager of the old runner
 * with a system_id none of the moved hosts reported, that contacted GitLab since two hours (GitLab's
 * online window) before the new token was stored. Deleting the old runner would take that host offline.
 * (Hosts cloned with the same `.runner_system_id` cannot be told apart: `rotator doctor` reports them.)
 */
async function refuseWhileOthersRunIt(deps: RetireDeps, record: RotationRecord, gitlabUrl: string, oldId: number, accessToken: string): Promise<void> {
  const known = new Set(record.hosts.map((h) => h.systemId).filter((id): id is string => id !== null));
  const since = Date.parse(record.storedAt) - RECENT_CONTACT_MS;
  const strangers = (await deps.gitlab.managers(gitlabUrl, oldId, accessToken)).filter(
    (m) => !known.has(m.systemId) && m.contactedAt !== null && Date.parse(m.contactedAt) >= since,
  );
  if (strangers.length === 0) return;
  const finishedAt = deps.clock.now().toISOString();
  const hosts: HostResult[] = strangers.map((m) => ({
    host: `system_id ${m.systemId}${m.ipAddress ? ` (${m.ipAddress})` : ''}`,
    status: 'failed',
    systemId: m.systemId,
    detail: `still runs runner ${oldId} (contacted GitLab at ${m.contactedAt}) but was not among the hosts this rotation moved to runner ${record.runnerId}`,
    finishedAt,
  }));
  throw new RotationError(`Runner ${oldId} is not deleted: ${hosts.length} host(s) this rotation did not know still run it`, {
    secretId: record.secretId,
    step: 'finishSecret',
    code: 'replacement-unconfirmed',
    hosts,
    fix: `Give the named hosts runner ${record.runnerId} (list them among the runner's hosts and re-push, or update-runner-token.sh --mode add), or stop them (or delete runner ${oldId} in GitLab yourself); the next scan then deletes runner ${oldId}.`,
  });
}

/**
 * A project runner serves every project of the old one: the first owns it (POST /user/runners), the
 * others are enabled here, in setSecret, so that the token is stored before any other call (invariant 2)
 * and a retry enables only what is missing.
 */
async function enableOnEveryProject(deps: RotationDeps, secretId: string, current: RunnerSecretValue, newId: number, step: RotationStep): Promise<void> {
  const accessToken = await requireAccessToken(deps, secretId, current, step);
  const old = await deps.gitlab.runner(current.gitlabUrl, current.runnerId, accessToken);
  if (old.runnerType !== 'project_type') return;
  const serving = new Set((await deps.gitlab.runner(current.gitlabUrl, newId, accessToken)).projectIds);
  for (const projectId of old.projectIds) {
    if (!serving.has(projectId)) await deps.gitlab.enableRunnerInProject(current.gitlabUrl, projectId, newId, accessToken);
  }
}

/** DELETE /runners/:id; true when it was gone already (a retried finishSecret). */
async function deleteRunner(deps: Pick<RotationDeps, 'gitlab'>, gitlabUrl: string, runnerId: number, accessToken: string): Promise<boolean> {
  try {
    await deps.gitlab.deleteRunner(gitlabUrl, runnerId, accessToken);
    return false;
  } catch (error) {
    if (error instanceof GitLabNotFoundError) return true;
    throw error;
  }
}

async function requireAccessToken(deps: Pick<RotationDeps, 'adminToken'>, secretId: string, value: Pick<RunnerSecretValue, 'gitlabUrl' | 'runnerId'>, step: RotationStep): Promise<string> {
  const token = await deps.adminToken(value.gitlabUrl);
  if (token !== undefined) return token;
  throw new RotationError(`Replacing runner ${value.runnerId} needs an access token for ${value.gitlabUrl} that may read, create and delete runners, and none is configured`, {
    secretId,
    step,
    code: 'replace-needs-access-token',
    fix: 'Configure the admin access token for this GitLab (an `api`-scope token of a user who may manage the runner), or set the runner back to strategy "reset".',
  });
}

function unconfirmedError(secretId: string, newId: number, oldId: number, hosts: HostResult[], why: string): RotationError {
  const names = hosts.map((h) => h.host).join(', ');
  return new RotationError(`${hosts.length === 0 ? 'Hosts unknown' : `Host(s) ${names}`}: ${why}; runner ${oldId} is kept on every host and stays current`, {
    secretId,
    step: 'testSecret',
    code: 'replacement-unconfirmed',
    hosts,
    fix: `Check gitlab-runner on the named hosts (\`rotator doctor\`: running, config.toml valid, GitLab reachable), then rotate again: the rotation resumes with runner ${newId}. To give up instead, remove runner ${newId}'s table from the hosts (update-runner-token.sh --mode remove), delete runner ${newId} in GitLab, cancel the rotation, and withdraw a migration (\`rotator migrate --cancel\`) or set the runner's strategy back to reset.`,
  });
}

/** The runner id of a stored value without parsing (or checking) the rest. */
function runnerIdOf(raw: string): unknown {
  try {
    return (JSON.parse(raw) as { runner_id?: unknown }).runner_id;
  } catch {
    return undefined;
  }
}
