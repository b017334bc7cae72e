import type { RotationDeps } from './ports.ts';
import { runRotationStep, type StepOutcome } from './rotation-steps.ts';
import { ROTATION_STEPS } from './types.ts';
import type { RotationRecord } from './types.ts';

/**
 * What Secrets Manager's RotateSecret does, for the local engine: open a rotation (a version id in
 * AWSPENDING) under a lock, so two rotations of one runner never interleave.
 */
export interface RotationStarter {
  /**
   * Labels `newVersionId` AWSPENDING with no value, or, where an earlier rotation failed and left a version
   * in AWSPENDING, returns that one (`resumed`): its steps are idempotent, so re-running them finishes it.
   */
  beginRotation(secretId: string, newVersionId: string): Promise<{ versionId: string; resumed: boolean }>;
  withRotationLock<T>(secretId: string, work: () => Promise<T>): Promise<T>;
}

export interface RotateNowDeps extends RotationDeps {
  starter: RotationStarter;
  newVersionId(): string;
}

export interface RotateNowResult {
  secretId: string;
  versionId: string;
  resumed: boolean;
  steps: StepOutcome[];
  record: RotationRecord | undefined;
}

/** Runs createSecret → setSecret → testSecret → finishSecret for one secret, as the rotation hook would be called. */
export async function rotateNow(deps: RotateNowDeps, secretId: string, budgetMs: number): Promise<RotateNowResult> {
  return deps.starter.withRotationLock(secretId, async () => {
    const { versionId, resumed } = await deps.starter.beginRotation(secretId, deps.newVersionId());
    const deadline = new Date(deps.clock.now().getTime() + budgetMs);
    const steps: StepOutcome[] = [];
    for (const step of ROTATION_STEPS) {
      steps.push(await runRotationStep(deps, { step, secretId, versionId, deadline }));
    }
    const record = steps.find((s) => s.record)?.record;
    return { secretId, versionId, resumed, steps, record };
  });
}
