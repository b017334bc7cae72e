import { GitLabForbiddenError, RotationError } from './errors.ts';
import { ROTATOR_SYSTEM_ID } from './rotator-identity.ts';
import type { RotationDeps, RotationEvent } from './ports.ts';
import { isReplacement, retireReplacedRunner, replaceCreateSecret, replaceFinishSecret, replaceSetSecret, replaceTestSecret, replacementWanted } from './replace-steps.ts';
import { checkRotationGuards, currentVersionId } from './rotation-guards.ts';
import { parseSecretValue, serializeSecretValue } from './secret-value.ts';
import { describeError, readValue, recordOf, recordPending, storeUntilDeadline, type StepOutcome, type StepRequest } from './step-support.ts';
import { promoteVersion, pushVersion } from './strategy-steps.ts';
import { atRunnerId, hostHoldsVersion } from './types.ts';
import type { IssuedToken, RunnerSecretValue } from './types.ts';

export type { StepOutcome, StepRequest } from './step-support.ts';

/**
 * Runs one step of a rotation. The default "reset" strategy: GitLab kills the old token the moment it
 * issues the new one, so the order is the design (DESIGN.md, "Rotation, step by step"): createSecret
 * resets and stores at once, setSecret pushes to every host, testSecret only reads, finishSecret
 * promotes. Every step may run again for the same version without minting a second token.
 *
 * The "replace" strategy (replace-steps.ts) runs where the runner's config asks for it or `rotator
 * migrate` requested it; once createSecret stored a version for another runner id than AWSCURRENT's,
 * the later steps follow that version, whatever the config says now.
 */
export async function runRotationStep(deps: RotationDeps, request: StepRequest): Promise<StepOutcome> {
  const { step, secretId, versionId } = request;
  const description = await deps.secrets.describe(secretId);
  const guard = checkRotationGuards(description, versionId, step);
  if (!guard.proceed) {
    deps.events({ kind: 'step-skipped', secretId, step, versionId, reason: guard.reason });
    // A finishSecret retried after it promoted still reports its rotation, so the hosts that missed stay named,
    // and retires the old runner of a replacement that failed or died after its promotion.
    const record = step === 'finishSecret' ? await recordOf(deps, secretId, versionId) : undefined;
    if (record?.strategy === 'replace') await retireReplacedRunner(deps, record, (await readValue(deps, secretId, { versionId }, step)).gitlabUrl);
    return { step, skipped: guard.reason, ...(record ? { record, hosts: record.hosts } : {}) };
  }
  deps.events({ kind: 'step-started', secretId, step, versionId });
  const fromVersionId = currentVersionId(description);
  if (step === 'createSecret') return createSecret(deps, request, fromVersionId);
  const replacing = await isReplacement(deps, secretId, versionId);
  switch (step) {
    case 'setSecret':
      return replacing ? replaceSetSecret(deps, request, fromVersionId) : setSecret(deps, request, fromVersionId);
    case 'testSecret':
      return replacing ? replaceTestSecret(deps, request) : testSecret(deps, request);
    case 'finishSecret':
      return replacing ? replaceFinishSecret(deps, request, fromVersionId) : finishSecret(deps, request, fromVersionId);
  }
}

async function createSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'createSecret';
  if ((await deps.secrets.getValue(secretId, { versionId })) !== undefined) {
    const reason = `version ${versionId} already holds a token: not resetting again`;
    deps.events({ kind: 'step-skipped', secretId, step, versionId, reason });
    return { step, skipped: reason };
  }
  const current = await readValue(deps, secretId, { stage: 'AWSCURRENT' }, step);
  if (await replacementWanted(deps, secretId)) return replaceCreateSecret(deps, request, fromVersionId, current);
  const { issued, reset } = await resetToken(deps, secretId, current);
  const resetAt = deps.clock.now().toISOString();
  const next: RunnerSecretValue = { ...current, token: issued.token, tokenExpiresAt: issued.tokenExpiresAt, tokenObtainedAt: resetAt };
  const attempts = await storeUntilDeadline(
    deps,
    request,
    serializeSecretValue(next),
    (tries, error) =>
      new RotationError(
        `GitLab issued a new token for runner ${current.runnerId} but storing it as version ${versionId} of ${secretId} failed ${tries} times; the old token is dead. The next attempt finds the current token rejected and recovers by id`,
        {
          secretId,
          step,
          code: 'store-failed',
          fix: `Make sure an admin access token is configured for ${current.gitlabUrl}, fix the store (${describeError(error)}), then rotate again.`,
          cause: error,
        },
      ),
  );
  const storedAt = deps.clock.now().toISOString();
  // Events only after the store: nothing may stand between GitLab's reply and the store (invariant 2).
  deps.events(reset);
  deps.events({ kind: 'token-stored', secretId, versionId, attempts });
  await recordPending(deps, { secretId, versionId, fromVersionId, resetAt, storedAt, hosts: [] });
  return { step };
}

/** Resets with the current token; on 403, by id with the admin token when there is one. */
async function resetToken(
  deps: RotationDeps,
  secretId: string,
  current: RunnerSecretValue,
): Promise<{ issued: IssuedToken; reset: RotationEvent }> {
  const { gitlabUrl, runnerId } = current;
  try {
    const issued = await deps.gitlab.resetWithToken(gitlabUrl, current.token);
    return { issued, reset: { kind: 'token-reset', secretId, runnerId, via: 'current-token' } };
  } catch (error) {
    if (!(error instanceof GitLabForbiddenError)) throw error;
    const adopted = await resetWithHostToken(deps, secretId, current);
    if (adopted) return adopted;
    const adminToken = await deps.adminToken(gitlabUrl);
    if (adminToken === undefined) {
      throw new RotationError(
        `GitLab at ${gitlabUrl} rejected the current token of runner ${runnerId} (expired, revoked, or reset earlier with its reply lost) and no admin access token is configured to reset it by id`,
        {
          secretId,
          step: 'createSecret',
          code: 'current-token-rejected-no-admin-token',
          fix: `Reset runner ${runnerId}'s token by id (POST /runners/${runnerId}/reset_authentication_token with an access token that may manage the runner, or "Reset token" in the runner's page), store it as the current value of ${secretId}, then rotate again; or configure an admin access token for recovery.`,
          cause: error,
        },
      );
    }
    const issued = await deps.gitlab.resetById(gitlabUrl, runnerId, adminToken);
    return { issued, reset: { kind: 'token-reset', secretId, runnerId, via: 'admin-token' } };
  }
}

/**
 * A host whose gitlab-runner rotated the token by itself holds the only token GitLab accepts: find it
 * (verified as the rotator, never in the host's name) and reset with it, so every host gets the next token.
 */
async function resetWithHostToken(
  deps: RotationDeps,
  secretId: string,
  current: RunnerSecretValue,
): Promise<{ issued: IssuedToken; reset: RotationEvent } | undefined> {
  const runner = deps.runnerFor(secretId);
  if (!runner || !deps.fleet.hostTokens) return undefined;
  const seen = new Set([current.token]);
  for (const candidate of await deps.fleet.hostTokens(atRunnerId(runner, current.runnerId))) {
    if (seen.has(candidate.token)) continue;
    seen.add(candidate.token);
    try {
      await deps.gitlab.verify(current.gitlabUrl, candidate.token);
    } catch (error) {
      if (error instanceof GitLabForbiddenError) continue;
      throw error;
    }
    const issued = await deps.gitlab.resetWithToken(current.gitlabUrl, candidate.token);
    return { issued, reset: { kind: 'token-reset', secretId, runnerId: current.runnerId, via: 'host-token', host: candidate.host } };
  }
  return undefined;
}

/** The reset strategy's setSecret: the hosts update the token of the runner's table; a miss is recorded, not fatal. */
async function setSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null): Promise<StepOutcome> {
  const value = await readValue(deps, request.secretId, { versionId: request.versionId }, 'setSecret');
  return pushVersion(deps, request, fromVersionId, {
    value,
    marks: {},
    missed: (h) => `host ${h.host} did not take version ${request.versionId}: ${h.status} (${h.detail})`,
  });
}

/**
 * Read-only for the hosts and the secret: confirms that GitLab accepts the pending token with
 * POST /runners/verify, as the rotator (ROTATOR_SYSTEM_ID): GitLab refreshes the runner's contacted_at and
 * the rotator's own manager record, never a host's, so a host whose gitlab-runner did not reload does not
 * look contacted. A host counts as having the token only by its updater's report (setSecret), and as
 * running it only by its own contact. Behaves on a version with no value, as RotateSecret with
 * RotateImmediately=false asks.
 */
async function testSecret(deps: RotationDeps, request: StepRequest): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'testSecret';
  const raw = await deps.secrets.getValue(secretId, { versionId });
  if (raw === undefined) {
    const reason = `version ${versionId} holds no token yet: nothing to test`;
    deps.events({ kind: 'step-skipped', secretId, step, versionId, reason });
    return { step, skipped: reason };
  }
  const value = parseSecretValue(raw, `${secretId} version ${versionId}`);
  const hosts = (await deps.ledger.pending(secretId, versionId))?.hosts ?? [];
  try {
    const verified = await deps.gitlab.verify(value.gitlabUrl, value.token);
    if (verified.runnerId !== value.runnerId) {
      throw new RotationError(`GitLab says version ${versionId} of ${secretId} belongs to runner ${verified.runnerId}, not ${value.runnerId}`, {
        secretId,
        step,
        fix: `Check that ${secretId} is the secret of runner ${value.runnerId}.`,
      });
    }
  } catch (error) {
    if (!(error instanceof GitLabForbiddenError)) throw error;
    throw new RotationError(`GitLab rejects the pending token of runner ${value.runnerId} (version ${versionId} of ${secretId})`, {
      secretId,
      step,
      code: 'pending-token-rejected',
      fix: `Someone reset runner ${value.runnerId}'s token after this rotation issued it. Cancel the rotation (remove AWSPENDING from ${versionId}) and rotate again; recovery needs the admin access token.`,
      cause: error,
    });
  }
  deps.events({ kind: 'token-verified', secretId, versionId, systemId: ROTATOR_SYSTEM_ID, verified: true, reason: 'GitLab accepts it (POST /runners/verify as the rotator)' });
  return { step, hosts };
}

/** The reset strategy's finishSecret: the old token died at the reset; the hosts that missed are named, the next scan re-pushes. */
async function finishSecret(deps: RotationDeps, request: StepRequest, fromVersionId: string | null): Promise<StepOutcome> {
  const { secretId } = request;
  const value = await readValue(deps, secretId, { versionId: request.versionId }, 'finishSecret');
  return promoteVersion(deps, request, fromVersionId, {
    value,
    marks: {},
    oldTokenDies: 'reset',
    afterPromotion: (record) => {
      for (const missed of record.hosts.filter((h) => !hostHoldsVersion(h))) {
        deps.events({ kind: 'warning', secretId, message: `host ${missed.host} still lacks the current token (${missed.status}); the next scan re-pushes it` });
      }
    },
  });
}
