import { describe, expect, it } from 'vitest';
import { RotationGuardError } from '../../src/core/errors.ts';
import { checkRotationGuards, currentVersionId } from '../../src/core/rotation-guards.ts';
import type { SecretDescription } from '../../src/core/ports.ts';

const description = (rotationEnabled = true): SecretDescription => ({
  secretId: 'runner-a',
  rotationEnabled,
  versions: [
    { versionId: 'v1', stages: ['AWSCURRENT'] },
    { versionId: 'v2', stages: ['AWSPENDING'] },
    { versionId: 'v0', stages: ['AWSPREVIOUS'] },
  ],
});

describe('checkRotationGuards', () => {
  it('lets a step run on the AWSPENDING version', () => {
    expect(checkRotationGuards(description(), 'v2', 'createSecret')).toEqual({ proceed: true });
  });

  it('returns quietly when the version is already AWSCURRENT', () => {
    const result = checkRotationGuards(description(), 'v1', 'finishSecret');
    expect(result.proceed).toBe(false);
  });

  it.each([
    ['rotation is disabled', description(false), 'v2', 'not enabled for rotation'],
    ['the token is not a version of the secret', description(), 'v9', 'has no stage for rotation'],
    ['the version is not AWSPENDING', description(), 'v0', 'not set as AWSPENDING'],
  ])('throws a RotationGuardError when %s', (_name, desc, versionId, message) => {
    let caught: unknown;
    try {
      checkRotationGuards(desc, versionId, 'setSecret');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RotationGuardError);
    expect((caught as RotationGuardError).message).toContain(message);
    expect((caught as RotationGuardError).step).toBe('setSecret');
  });

  it('finds the AWSCURRENT version', () => {
    expect(currentVersionId(description())).toBe('v1');
    expect(currentVersionId({ ...description(), versions: [] })).toBeNull();
  });
});
