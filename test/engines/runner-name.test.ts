import { describe, expect, it } from 'vitest';
import { RUNNER_TAG } from '../../src/config/runner-tags.ts';
import { runnerNameOfSecret } from '../../src/engines/runner-name.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbC123';

describe('runnerNameOfSecret', () => {
  it.each([
    ['the runner tag, where the tags were read', ARN, { [RUNNER_TAG.name]: 'docker-builders' }, 'docker-builders'],
    ['the secret name without the prefix, from an ARN', ARN, {}, 'builders'],
    ['the secret name without the prefix, from a name', 'gitlab-runner-rotator/builders', {}, 'builders'],
    ['the whole name of a secret outside the prefix', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-password-AbCdEf', {}, 'prod/db-password'],
    ['the whole name when it is only the prefix', 'gitlab-runner-rotator/', {}, 'gitlab-runner-rotator/'],
  ])('is %s', (_what, secretId, tags, name) => {
    expect(runnerNameOfSecret(secretId, 'gitlab-runner-rotator/', tags)).toBe(name);
  });

  it('is the secret name itself under an empty prefix', () => {
    expect(runnerNameOfSecret(ARN, '')).toBe('gitlab-runner-rotator/builders');
  });
});
