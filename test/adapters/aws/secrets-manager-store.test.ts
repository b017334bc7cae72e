import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  InternalServiceError,
  InvalidParameterException,
  InvalidRequestException,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type ListSecretsCommandInput,
} from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretsManagerStore } from '../../../src/adapters/aws/secrets-manager-store.ts';
import { InvalidInputError, RotationInProgressError, SecretNotFoundError } from '../../../src/core/errors.ts';
import { FakeSecretsManager } from '../../support/fake-secrets-manager.ts';
import { captured, expectNoTokens } from '../../support/token-leaks.ts';

const SECRET = 'gitlab-runner/builders';
const V1 = '11111111-1111-4111-8111-111111111111';
const V2 = '22222222-2222-4222-8222-222222222222';
const VALUE = JSON.stringify({ runnerId: 7, gitlabUrl: 'https://gitlab.example.com', token: 'glrt-pending-token-0123456789' });
const OTHER_VALUE = JSON.stringify({ runnerId: 7, gitlabUrl: 'https://gitlab.example.com', token: 'glrt-another-token-9876543210' });

const $metadata = {};

let client: SecretsManagerClient;
let sm: AwsClientStub<SecretsManagerClient>;
let store: SecretsManagerStore;

beforeEach(() => {
  client = new SecretsManagerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  sm = mockClient(client);
  store = new SecretsManagerStore(client);
});
afterEach(() => {
  sm.restore();
});

describe('SecretsManagerStore.describe', () => {
  it('reads the rotation flag and each version’s staging labels from DescribeSecret', async () => {
    sm.on(DescribeSecretCommand).resolves({
      RotationEnabled: true,
      VersionIdsToStages: { [V1]: ['AWSPREVIOUS'], [V2]: ['AWSCURRENT', 'AWSPENDING', 'my-custom-label'] },
    });
    expect(await store.describe(SECRET)).toEqual({
      secretId: SECRET,
      rotationEnabled: true,
      versions: [
        { versionId: V1, stages: ['AWSPREVIOUS'] },
        { versionId: V2, stages: ['AWSCURRENT', 'AWSPENDING'] },
      ],
    });
    expect(sm.commandCalls(DescribeSecretCommand)[0]?.args[0].input).toEqual({ SecretId: SECRET });
  });

  it('counts rotation as off unless RotationEnabled is true, and a secret without versions as having none', async () => {
    sm.on(DescribeSecretCommand).resolves({});
    expect(await store.describe(SECRET)).toEqual({ secretId: SECRET, rotationEnabled: false, versions: [] });
  });

  it('turns ResourceNotFoundException into a SecretNotFoundError that names the secret', async () => {
    const cause = new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata });
    sm.on(DescribeSecretCommand).rejects(cause);
    const error = await store.describe(SECRET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SecretNotFoundError);
    expect(error).toMatchObject({ secretId: SECRET, cause });
    expect((error as Error).message).toContain(SECRET);
  });

  it('rethrows an exception it does not know unchanged', async () => {
    const unknown = new InternalServiceError({ message: 'An error occurred on the server side.', $metadata });
    sm.on(DescribeSecretCommand).rejects(unknown);
    await expect(store.describe(SECRET)).rejects.toBe(unknown);
  });
});

describe('SecretsManagerStore.getValue', () => {
  it('reads a version by VersionId', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: VALUE });
    expect(await store.getValue(SECRET, { versionId: V2 })).toBe(VALUE);
    expect(sm.commandCalls(GetSecretValueCommand)[0]?.args[0].input).toEqual({ SecretId: SECRET, VersionId: V2 });
  });

  it('reads a staging label by VersionStage', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: VALUE });
    expect(await store.getValue(SECRET, { stage: 'AWSCURRENT' })).toBe(VALUE);
    expect(sm.commandCalls(GetSecretValueCommand)[0]?.args[0].input).toEqual({ SecretId: SECRET, VersionStage: 'AWSCURRENT' });
  });

  it('answers undefined for the AWSPENDING version RotateSecret opened before createSecret filled it', async () => {
    sm.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({ message: `Secrets Manager can't find the specified secret value for VersionId: ${V2}`, $metadata }),
    );
    expect(await store.getValue(SECRET, { versionId: V2 })).toBeUndefined();
  });

  it('refuses a version that holds binary data instead of a string', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2, 3]) });
    await expect(store.getValue(SECRET, { stage: 'AWSCURRENT' })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('rethrows an exception it does not know unchanged', async () => {
    const unknown = new InternalServiceError({ message: 'An error occurred on the server side.', $metadata });
    sm.on(GetSecretValueCommand).rejects(unknown);
    await expect(store.getValue(SECRET, { versionId: V2 })).rejects.toBe(unknown);
  });
});

describe('SecretsManagerStore.putPendingValue', () => {
  it('puts the value under the version id as ClientRequestToken with the AWSPENDING label', async () => {
    sm.on(PutSecretValueCommand).resolves({ VersionId: V2 });
    await store.putPendingValue(SECRET, V2, VALUE);
    expect(sm.commandCalls(PutSecretValueCommand)[0]?.args[0].input).toEqual({
      SecretId: SECRET,
      ClientRequestToken: V2,
      SecretString: VALUE,
      VersionStages: ['AWSPENDING'],
    });
  });

  it('succeeds again with the same value under the same version, as Secrets Manager ignores such a repeat', async () => {
    const fake = new FakeSecretsManager();
    try {
      fake.createSecret(SECRET);
      const real = new SecretsManagerStore(fake.client);
      await real.adoptCurrent(SECRET, V1, OTHER_VALUE);
      const opened = await real.startRotation(SECRET);
      await real.putPendingValue(SECRET, opened, VALUE);
      await real.putPendingValue(SECRET, opened, VALUE);
      expect(fake.mock.commandCalls(PutSecretValueCommand)).toHaveLength(3);
      expect(await real.getValue(SECRET, { versionId: opened })).toBe(VALUE);
      expect(fake.stages(SECRET)).toEqual({ [V1]: ['AWSCURRENT'], [opened]: ['AWSPENDING'] });
    } finally {
      fake.restore();
    }
  });

  it('turns a different value under the same version into a RotationInProgressError that names the version', async () => {
    const cause = new ResourceExistsException({ message: "You can't modify an existing version, you can only create a new version.", $metadata });
    sm.on(PutSecretValueCommand).rejects(cause);
    const error = await store.putPendingValue(SECRET, V2, OTHER_VALUE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RotationInProgressError);
    expect(error).toMatchObject({ secretId: SECRET, step: 'createSecret', cause });
    expect((error as Error).message).toContain(V2);
  });

  it('turns a missing secret into a SecretNotFoundError', async () => {
    sm.on(PutSecretValueCommand).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata }));
    await expect(store.putPendingValue(SECRET, V2, VALUE)).rejects.toBeInstanceOf(SecretNotFoundError);
  });
});

describe('SecretsManagerStore.promote', () => {
  it('moves AWSCURRENT to the new version and off the old one, then clears AWSPENDING from the new one', async () => {
    sm.on(UpdateSecretVersionStageCommand).resolves({});
    await store.promote(SECRET, V2, V1);
    expect(sm.commandCalls(UpdateSecretVersionStageCommand).map((c) => c.args[0].input)).toEqual([
      { SecretId: SECRET, VersionStage: 'AWSCURRENT', MoveToVersionId: V2, RemoveFromVersionId: V1 },
      { SecretId: SECRET, VersionStage: 'AWSPENDING', RemoveFromVersionId: V2 },
    ]);
  });

  it('leaves RemoveFromVersionId out of the move when no version was current', async () => {
    sm.on(UpdateSecretVersionStageCommand).resolves({});
    await store.promote(SECRET, V2, null);
    const move = sm.commandCalls(UpdateSecretVersionStageCommand)[0]?.args[0].input;
    expect(move).toEqual({ SecretId: SECRET, VersionStage: 'AWSCURRENT', MoveToVersionId: V2 });
    expect(move).not.toHaveProperty('RemoveFromVersionId');
  });

  it('leaves the stages as the rotation template does: new version AWSCURRENT only, old one AWSPREVIOUS', async () => {
    const fake = new FakeSecretsManager();
    try {
      fake.createSecret(SECRET);
      const real = new SecretsManagerStore(fake.client);
      await real.adoptCurrent(SECRET, V1, OTHER_VALUE);
      const opened = await real.startRotation(SECRET);
      await real.putPendingValue(SECRET, opened, VALUE);
      await real.promote(SECRET, opened, V1);
      expect(fake.stages(SECRET)).toEqual({ [V1]: ['AWSPREVIOUS'], [opened]: ['AWSCURRENT'] });
    } finally {
      fake.restore();
    }
  });

  it('turns a missing secret into a SecretNotFoundError', async () => {
    sm.on(UpdateSecretVersionStageCommand).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata }));
    await expect(store.promote(SECRET, V2, V1)).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it('rethrows a refused move unchanged: RemoveFromVersionId must name the version that holds AWSCURRENT', async () => {
    const refused = new InvalidParameterException({
      message: 'When you move staging label AWSCURRENT, if you specify RemoveFromVersionId, it must be set to the version that currently has the staging label AWSCURRENT.',
      $metadata,
    });
    sm.on(UpdateSecretVersionStageCommand).rejects(refused);
    await expect(store.promote(SECRET, V2, V1)).rejects.toBe(refused);
  });
});

describe('SecretsManagerStore.adoptCurrent', () => {
  it('puts an existing runner token under the version id with the AWSCURRENT label', async () => {
    sm.on(PutSecretValueCommand).resolves({ VersionId: V1 });
    await store.adoptCurrent(SECRET, V1, VALUE);
    expect(sm.commandCalls(PutSecretValueCommand)[0]?.args[0].input).toEqual({
      SecretId: SECRET,
      ClientRequestToken: V1,
      SecretString: VALUE,
      VersionStages: ['AWSCURRENT'],
    });
  });

  it('says which secret is missing when the stack has not created it', async () => {
    sm.on(PutSecretValueCommand).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata }));
    await expect(store.adoptCurrent(SECRET, V1, VALUE)).rejects.toThrow(SECRET);
    await expect(store.adoptCurrent(SECRET, V1, VALUE)).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it('refuses to reuse a version id that holds another value', async () => {
    sm.on(PutSecretValueCommand).rejects(new ResourceExistsException({ message: "You can't modify an existing version.", $metadata }));
    await expect(store.adoptCurrent(SECRET, V1, VALUE)).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('SecretsManagerStore.startRotation', () => {
  it('asks RotateSecret to rotate immediately and returns the new version id', async () => {
    sm.on(RotateSecretCommand).resolves({ VersionId: V2 });
    expect(await store.startRotation(SECRET)).toBe(V2);
    expect(sm.commandCalls(RotateSecretCommand)[0]?.args[0].input).toEqual({ SecretId: SECRET, RotateImmediately: true });
  });

  it('turns "a previous rotation isn\'t complete" into a RotationInProgressError with the way out', async () => {
    const cause = new InvalidRequestException({ message: "A previous rotation isn't complete. That rotation will be reattempted.", $metadata });
    sm.on(RotateSecretCommand).rejects(cause);
    const error = await store.startRotation(SECRET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RotationInProgressError);
    expect(error).toMatchObject({ secretId: SECRET, step: 'createSecret', cause });
    expect((error as RotationInProgressError).fix).toContain('aws secretsmanager cancel-rotate-secret');
  });

  it('rethrows any other InvalidRequestException unchanged', async () => {
    const other = new InvalidRequestException({ message: 'You can\'t perform this operation on the secret because it was marked for deletion.', $metadata });
    sm.on(RotateSecretCommand).rejects(other);
    await expect(store.startRotation(SECRET)).rejects.toBe(other);
  });

  it('is refused by the service model while the opened version still waits in AWSPENDING', async () => {
    const fake = new FakeSecretsManager();
    try {
      fake.createSecret(SECRET);
      const real = new SecretsManagerStore(fake.client);
      await real.adoptCurrent(SECRET, V1, OTHER_VALUE);
      await real.startRotation(SECRET);
      await expect(real.startRotation(SECRET)).rejects.toBeInstanceOf(RotationInProgressError);
    } finally {
      fake.restore();
    }
  });
});

describe('SecretsManagerStore.listManagedSecrets', () => {
  it('lists every page of secrets carrying the tag and summarises each without reading a value', async () => {
    const inputs: ListSecretsCommandInput[] = [];
    const pages = [
      {
        NextToken: 'page-2',
        SecretList: [
          {
            ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:runner-a-AbCdEf',
            Name: 'runner-a',
            Tags: [
              { Key: 'team', Value: 'ci' },
              { Key: 'gitlab-runner', Value: 'builders' },
            ],
            RotationEnabled: true,
            RotationRules: { AutomaticallyAfterDays: 30 },
            LastRotatedDate: new Date('2026-03-01T10:00:00.000Z'),
            SecretVersionsToStages: { [V1]: ['AWSPREVIOUS'], [V2]: ['AWSCURRENT', 'AWSPENDING'] },
          },
        ],
      },
      {
        SecretList: [
          {
            ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:runner-b-GhIjKl',
            Name: 'runner-b',
            Tags: [{ Key: 'gitlab-runner', Value: 'deployers' }],
            SecretVersionsToStages: { [V1]: ['AWSCURRENT'], [V2]: ['AWSPENDING'] },
          },
        ],
      },
    ];
    sm.on(ListSecretsCommand).callsFake((input: ListSecretsCommandInput) => {
      inputs.push({ ...input });
      return pages[inputs.length - 1];
    });

    const summaries = await store.listManagedSecrets('gitlab-runner', 'runner-');

    const filters = [
      { Key: 'tag-key', Values: ['gitlab-runner'] },
      { Key: 'name', Values: ['runner-'] },
    ];
    expect(inputs).toEqual([
      { Filters: filters, MaxResults: 100, NextToken: undefined },
      { Filters: filters, MaxResults: 100, NextToken: 'page-2' },
    ]);
    expect(summaries).toEqual([
      {
        arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:runner-a-AbCdEf',
        name: 'runner-a',
        tags: { team: 'ci', 'gitlab-runner': 'builders' },
        rotateEveryDays: 30,
        rotationEnabled: true,
        lastRotatedAt: '2026-03-01T10:00:00.000Z',
        versions: [
          { versionId: V1, stages: ['AWSPREVIOUS'] },
          { versionId: V2, stages: ['AWSCURRENT', 'AWSPENDING'] },
        ],
        rotationInProgress: false,
      },
      {
        arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:runner-b-GhIjKl',
        name: 'runner-b',
        tags: { 'gitlab-runner': 'deployers' },
        rotateEveryDays: undefined,
        rotationEnabled: false,
        lastRotatedAt: null,
        versions: [
          { versionId: V1, stages: ['AWSCURRENT'] },
          { versionId: V2, stages: ['AWSPENDING'] },
        ],
        rotationInProgress: true,
      },
    ]);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });
});

describe('SecretsManagerStore and the token', () => {
  it('never puts the secret value in an error message or in what util.inspect shows of the error', async () => {
    sm.on(PutSecretValueCommand).rejects(new ResourceExistsException({ message: "You can't modify an existing version.", $metadata }));
    sm.on(RotateSecretCommand).rejects(new InvalidRequestException({ message: "A previous rotation isn't complete. That rotation will be reattempted.", $metadata }));
    const errors = [
      await store.putPendingValue(SECRET, V2, VALUE).catch((e: unknown) => e),
      await store.adoptCurrent(SECRET, V1, VALUE).catch((e: unknown) => e),
      await store.startRotation(SECRET).catch((e: unknown) => e),
    ];
    expect(errors.every((e) => e instanceof Error)).toBe(true);
    expectNoTokens(captured(...errors), [VALUE, 'glrt-pending-token-0123456789']);
  });
});
