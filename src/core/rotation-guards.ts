import { RotationGuardError } from './errors.ts';
import type { SecretDescription } from './ports.ts';
import type { RotationStep } from './types.ts';

export type GuardResult = { proceed: true } | { proceed: false; reason: string };

/**
 * The guards of the AWS Secrets Manager rotation template, run before every step: rotation must be
 * enabled, the ClientRequestToken must be a version of the secret, a version already AWSCURRENT means
 * the rotation is done (return quietly), and anything but AWSPENDING is an error.
 */
export function checkRotationGuards(description: SecretDescription, versionId: string, step: RotationStep): GuardResult {
  const { secretId } = description;
  if (!description.rotationEnabled) {
    throw new RotationGuardError(`Secret ${secretId} is not enabled for rotation`, {
      secretId,
      step,
      fix: 'Turn rotation on for the secret (the stack does this for every managed runner) and retry.',
    });
  }
  const version = description.versions.find((v) => v.versionId === versionId);
  if (!version) {
    throw new RotationGuardError(`Secret version ${versionId} has no stage for rotation of secret ${secretId}`, { secretId, step });
  }
  if (version.stages.includes('AWSCURRENT')) {
    return { proceed: false, reason: `version ${versionId} is already AWSCURRENT` };
  }
  if (!version.stages.includes('AWSPENDING')) {
    throw new RotationGuardError(`Secret version ${versionId} is not set as AWSPENDING for rotation of secret ${secretId}`, {
      secretId,
      step,
    });
  }
  return { proceed: true };
}

/** A version in AWSPENDING that is not AWSCURRENT: a rotation is open (RotateSecret refuses another). */
export function isOpenRotation(stages: readonly string[]): boolean {
  return stages.includes('AWSPENDING') && !stages.includes('AWSCURRENT');
}

export function openRotationVersionId(description: Pick<SecretDescription, 'versions'>): string | null {
  return description.versions.find((v) => isOpenRotation(v.stages))?.versionId ?? null;
}

export function currentVersionId(description: SecretDescription): string | null {
  return description.versions.find((v) => v.stages.includes('AWSCURRENT'))?.versionId ?? null;
}
