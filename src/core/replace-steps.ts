/**
 * The "replace" strategy: a new runner beside the old one, so that some runner of the pair always holds
 * a valid token on every host (no outage window; DESIGN.md, end of "Rotation, step by step"). It is also
 * how `rotator migrate` moves a runner off a legacy registration token.
 *
 * - createSecret: read the old runner's settings, create the new runner with them (POST /user/runners),
 *   enable it on every other project the old one served, store its token as AWSPENDING at once.
 *   The old runner stays valid. A store that never lands deletes the new runner again.
 * - setSecret: add the new runner's table on every host, copied from the old one's (`--mode add`).
 * - testSecret: wait until every host's gitlab-runner has contacted GitLab as the new runner (its
 *   system_id among the new runner's managers). A host that did not take it, or never makes contact,
 *   fails the step naming the host: the old runner is kept everywhere and AWSCURRENT does not move.
 * - finishSecret: remove the old runner's table from the hosts that run the new one, record, promote,
 *   then delete the old runner (its token dies only now). A failed delete fails the step; run again, it
 *   deletes the runner (deleteReplacedRunner).
 *
 * Every step may run again for the same version. The access token (the admin token of the GitLab) must
 * be allowed to read, create and delete runners (`api` scope, or an administrator's token).
 */
import { GitLabNotFoundError, RotationError } from './errors.ts';
import type { ReplaceTiming, RotationDeps } from './ports.ts';
import { restrictHosts } from './scan-runner.ts';
import { serializeSecretValue } from './secret-value.ts';
import { describeError, managedRunner, pendingOf, readValue, recordPending, storeUntilDeadline, type StepOutcome, type StepRequest } from './step-support.ts';
import { atRunnerId, hostHoldsVersion } from './types.ts';
import type { HostResult, RotationRecord, RotationStep, RunnerSecretValue } from './types.ts';

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

export async function replaceCreateSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null, current: RunnerSecretValue): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'createSecret';
  const { gitlabUrl } = current;
  const accessToken = await requireAccessToken(deps, secretId, current, step);
  const old = await deps.gitlab.runner(gitlabUrl, current.runnerId, accessToken);
  const [owner, ...moreProjects] = old.projectIds;
  if (old.runnerType === 'project_type' && owner === undefined) {
    throw new RotationError(`Runner ${current.runnerId} is a project runner but GitLab shows no project of it to the access token`, {
      secretId,
      step,
      fix: `Give the access token's user the Maintainer role on runner ${current.runnerId}'s projects, then rotate again.`,
    });
  }
  const created = await deps.gitlab.createRunner(gitlabUrl, accessToken, old);
  const createdAt = deps.clock.now().toISOString();
  let attempts: number;
  try {
    for (const projectId of moreProjects) await deps.gitlab.enableRunnerInProject(gitlabUrl, projectId, created.id, accessToken);
    const next: RunnerSecretValue = { runnerId: created.id, gitlabUrl, token: created.token, tokenExpiresAt: created.tokenExpiresAt, tokenObtainedAt: createdAt };
    attempts = await storeUntilDeadline(deps, request, serializeSecretValue(next), (tries, error) => {
      return new RotationError(
        `GitLab created runner ${created.id} to replace runner ${current.runnerId} but storing its token as version ${versionId} of ${secretId} failed ${tries} times; runner ${current.runnerId} keeps working`,
        { secretId, step, code: 'store-failed', fix: `Fix the store (${describeError(error)}), then rotate again.`, cause: error },
      );
    });
  } catch (error) {
    // Nobody holds the new runner's token: delete it, so that a retry does not leave one behind per attempt.
    await deleteRunner(deps, gitlabUrl, created.id, accessToken).catch((deleteError: unknown) => {
      deps.events({ kind: 'warning', secretId, message: `could not delete the unused new runner ${created.id}: ${describeError(deleteError)}; delete it in GitLab` });
    });
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
    recovered: false,
    hosts: [],
    strategy: 'replace',
    replacedRunnerId: current.runnerId,
  });
  return { step };
}

export async function replaceSetSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'setSecret';
  const next = await readValue(deps, secretId, { versionId }, step);
  const current = await readValue(deps, secretId, { stage: 'AWSCURRENT' }, step);
  const runner = atRunnerId(managedRunner(deps, secretId, step), next.runnerId);
  const hosts = await deps.fleet.push(
    runner,
    { secretId, versionId, runnerId: next.runnerId, addFromRunnerId: current.runnerId, previousVersionId: fromVersionId, tokenExpiresAt: next.tokenExpiresAt },
    (result) => deps.events({ kind: 'host-result', secretId, result }),
  );
  const pending = await pendingOf(deps, secretId, versionId, fromVersionId);
  await recordPending(deps, { ...pending, hosts, strategy: 'replace', replacedRunnerId: current.runnerId });
  for (const missed of hosts.filter((h) => !hostHoldsVersion(h))) {
    deps.events({ kind: 'warning', secretId, message: `host ${missed.host} did not add runner ${next.runnerId}: ${missed.status} (${missed.detail}); runner ${current.runnerId} keeps working there` });
  }
  return { step, hosts };
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

export async function replaceFinishSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'finishSecret';
  const next = await readValue(deps, secretId, { versionId }, step);
  const current = await readValue(deps, secretId, { stage: 'AWSCURRENT' }, step);
  const pending = await pendingOf(deps, secretId, versionId, fromVersionId);
  const runner = managedRunner(deps, secretId, step);
  const running = pending.hosts.filter(hostHoldsVersion).map((h) => h.host);
  // Only where the new runner runs: a host that joined a tag since setSecret keeps the old table.
  const removed = await deps.fleet.remove({ ...runner, hosts: restrictHosts(runner.hosts, running) }, { secretId, versionId, runnerId: current.runnerId }, (result) =>
    deps.events({ kind: 'host-removed', secretId, runnerId: current.runnerId, result }),
  );
  for (const left of removed.filter((h) => !hostHoldsVersion(h))) {
    deps.events({
      kind: 'warning',
      secretId,
      message: `host ${left.host} still has runner ${current.runnerId}'s table (${left.status}: ${left.detail}); runner ${next.runnerId} works there, remove the dead table with update-runner-token.sh --mode remove`,
    });
  }
  // AWSCURRENT moves before the old runner goes: at every moment the secret names a runner every host runs.
  const promotedAt = deps.clock.now().toISOString();
  const record: RotationRecord = {
    secretId,
    runnerId: next.runnerId,
    fromVersionId,
    toVersionId: versionId,
    // The old token dies with the old runner, just after this: no host needs it any more.
    resetAt: promotedAt,
    storedAt: pending.storedAt,
    promotedAt,
    tokenExpiresAt: next.tokenExpiresAt,
    hosts: pending.hosts,
    strategy: 'replace',
    replacedRunnerId: current.runnerId,
  };
  await deps.ledger.saveRotation(record);
  await deps.secrets.promote(secretId, versionId, fromVersionId);
  deps.events({ kind: 'promoted', secretId, versionId, record });
  await deleteReplacedRunner(deps, record, current.gitlabUrl);
  return { step, record, hosts: record.hosts };
}

/**
 * DELETE /runners/:id of the runner a replace rotation replaced. Also run when finishSecret runs again after
 * it promoted (Secrets Manager retrying a step that failed here): a runner gone already is fine.
 */
export async function deleteReplacedRunner(deps: RotationDeps, record: RotationRecord, gitlabUrl: string): Promise<void> {
  const { secretId, replacedRunnerId } = record;
  if (record.strategy !== 'replace' || replacedRunnerId === undefined) return;
  const step = 'finishSecret';
  const accessToken = await requireAccessToken(deps, secretId, { gitlabUrl, runnerId: replacedRunnerId }, step);
  try {
    const alreadyGone = await deleteRunner(deps, gitlabUrl, replacedRunnerId, accessToken);
    deps.events({ kind: 'runner-deleted', secretId, runnerId: replacedRunnerId, alreadyGone });
  } catch (error) {
    throw new RotationError(`Runner ${record.runnerId} replaced runner ${replacedRunnerId} on every host and is current, but deleting runner ${replacedRunnerId} failed`, {
      secretId,
      step,
      code: 'replaced-runner-not-deleted',
      fix: `Delete runner ${replacedRunnerId} in GitLab (DELETE /runners/${replacedRunnerId}, or Remove runner in its page): no host uses it, but its token (in AWSPREVIOUS) stays valid until then.`,
      cause: error,
    });
  }
}

/** DELETE /runners/:id; true when it was gone already (a retried finishSecret). */
async function deleteRunner(deps: RotationDeps, gitlabUrl: string, runnerId: number, accessToken: string): Promise<boolean> {
  try {
    await deps.gitlab.deleteRunner(gitlabUrl, runnerId, accessToken);
    return false;
  } catch (error) {
    if (error instanceof GitLabNotFoundError) return true;
    throw error;
  }
}

async function requireAccessToken(deps: RotationDeps, secretId: string, value: Pick<RunnerSecretValue, 'gitlabUrl' | 'runnerId'>, step: RotationStep): Promise<string> {
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
    fix: `Check gitlab-runner on the named hosts (\`rotator doctor\`: running, config.toml valid, GitLab reachable), then rotate again: the rotation resumes with runner ${newId}. To give up instead, remove runner ${newId}'s table from the hosts (update-runner-token.sh --mode remove), delete runner ${newId} in GitLab and cancel the rotation.`,
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
