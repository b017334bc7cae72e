/** What the two strategies' rotation steps share: reading values, the ledger's pending record, the store. */
import { RotationError, RotationInProgressError } from './errors.ts';
import type { PendingRotation, RotationDeps } from './ports.ts';
import { parseSecretValue } from './secret-value.ts';
import type { HostResult, ManagedRunner, RotationRecord, RotationStep, RunnerSecretValue } from './types.ts';

/** One invocation of the rotation hook: Secrets Manager's {Step, SecretId, ClientRequestToken}. */
export interface StepRequest {
  step: RotationStep;
  secretId: string;
  /** The ClientRequestToken: the id of the version this rotation fills. */
  versionId: string;
  /** Give up retrying (the store, the pushes, the waits) by then: the Lambda's deadline less a margin. */
  deadline: Date;
}

export interface StepOutcome {
  step: RotationStep;
  /** Set when the step had nothing to do (a retry, an already finished rotation). */
  skipped?: string;
  hosts?: HostResult[];
  record?: RotationRecord;
}

export async function readValue(
  deps: RotationDeps,
  secretId: string,
  ref: { versionId: string } | { stage: 'AWSCURRENT' },
  step: RotationStep,
): Promise<RunnerSecretValue> {
  const raw = await deps.secrets.getValue(secretId, ref);
  const label = 'versionId' in ref ? `version ${ref.versionId}` : ref.stage;
  if (raw === undefined) {
    throw new RotationError(`${secretId} has no value at ${label}`, {
      secretId,
      step,
      fix: step === 'createSecret' ? `Adopt the runner first so that ${secretId} holds its current token.` : 'Run createSecret for this version first.',
    });
  }
  return parseSecretValue(raw, `${secretId} ${label}`);
}

export function managedRunner(deps: RotationDeps, secretId: string, step: RotationStep): ManagedRunner {
  const runner = deps.runnerFor(secretId);
  if (!runner) {
    throw new RotationError(`No managed runner in the fleet config uses secret ${secretId}`, {
      secretId,
      step,
      fix: 'Add the runner to the fleet config (name, GitLab url, runner id, hosts) and deploy it.',
    });
  }
  return runner;
}

export async function recordOf(deps: RotationDeps, secretId: string, versionId: string): Promise<RotationRecord | undefined> {
  const last = await deps.ledger.lastRotation(secretId);
  return last?.toVersionId === versionId ? last : undefined;
}

/**
 * The pending record of this rotation; where createSecret's ledger write was lost, the written rotation
 * record (a finishSecret retried after its record was written), else what later steps can know.
 */
export async function pendingOf(deps: RotationDeps, secretId: string, versionId: string, fromVersionId: string | null): Promise<PendingRotation> {
  const pending = await deps.ledger.pending(secretId, versionId);
  if (pending) return pending;
  const recorded = await recordOf(deps, secretId, versionId);
  if (recorded) {
    return { secretId, versionId, fromVersionId, resetAt: recorded.resetAt, storedAt: recorded.storedAt, hosts: recorded.hosts };
  }
  const now = deps.clock.now().toISOString();
  return { secretId, versionId, fromVersionId, resetAt: now, storedAt: now, hosts: [] };
}

/** The ledger holds timings and host results only: losing a write must not fail a rotation whose token is stored. */
export async function recordPending(deps: RotationDeps, pending: PendingRotation): Promise<void> {
  try {
    await deps.ledger.savePending(pending);
  } catch (error) {
    deps.events({ kind: 'warning', secretId: pending.secretId, message: `could not record rotation progress: ${describeError(error)}` });
  }
}

/**
 * Invariant 2: GitLab's reply is stored before anything else happens. The store is retried with the same
 * version id (idempotent) until it lands or the deadline nears; the token is never held anywhere else.
 * `failure` says what a store that never landed means for this strategy.
 */
export async function storeUntilDeadline(
  deps: RotationDeps,
  request: StepRequest,
  value: string,
  failure: (attempts: number, error: unknown) => RotationError,
): Promise<number> {
  const { secretId, versionId, deadline } = request;
  let waitMs = 100;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await deps.secrets.putPendingValue(secretId, versionId, value);
      return attempt;
    } catch (error) {
      // A different value already under this version id will not change by retrying; what GitLab just
      // issued is lost all the same, and says so (store-failed, and its alert).
      if (error instanceof RotationInProgressError) throw failure(attempt, error);
      if (deps.clock.now().getTime() + waitMs >= deadline.getTime()) throw failure(attempt, error);
      await deps.clock.sleep(waitMs);
      waitMs = Math.min(waitMs * 2, 2_000);
    }
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
