import { DescribeSecretCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SecretsManagerStore } from '../../../src/adapters/aws/secrets-manager-store.ts';
import { parseAwsFleetConfig } from '../../../src/config/aws-fleet-config.ts';
import { runnerFromTags, runnerTags } from '../../../src/config/runner-tags.ts';
import { SecretNotFoundError } from '../../../src/core/errors.ts';
import { FakeSecretsManager } from '../../support/fake-secrets-manager.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbC123';
const client = new SecretsManagerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const sm = mockClient(client);

afterEach(() => sm.reset());
afterAll(() => sm.restore());

describe('SecretsManagerStore.describeManaged', () => {
  it('reads the name, the tags as a record, the schedule in days and the versions from one DescribeSecret, and no value', async () => {
    sm.on(DescribeSecretCommand).resolves({
      ARN,
      Name: 'gitlab-runner-rotator/builders',
      Tags: [
        { Key: 'gitlab-runner-rotator:runner', Value: 'builders' },
        { Key: 'team', Value: 'ci' },
      ],
      RotationRules: { AutomaticallyAfterDays: 30 },
      RotationEnabled: true,
      VersionIdsToStages: { 'v-1': ['AWSCURRENT'], 'v-0': ['AWSPREVIOUS', 'custom'] },
    });

    expect(await new SecretsManagerStore(client).describeManaged(ARN)).toEqual({
      arn: ARN,
      name: 'gitlab-runner-rotator/builders',
      tags: { 'gitlab-runner-rotator:runner': 'builders', team: 'ci' },
      rotateEveryDays: 30,
      rotationEnabled: true,
      lastRotatedAt: null,
      versions: [
        { versionId: 'v-1', stages: ['AWSCURRENT'] },
        { versionId: 'v-0', stages: ['AWSPREVIOUS'] },
      ],
      rotationInProgress: false,
    });
    expect(sm.commandCalls(DescribeSecretCommand).map((c) => c.args[0].input)).toEqual([{ SecretId: ARN }]);
  });

  it('answers a secret without tags with none, and a missing secret with SecretNotFoundError', async () => {
    sm.on(DescribeSecretCommand, { SecretId: ARN }).resolves({ ARN, Name: 'gitlab-runner-rotator/builders' });
    sm.on(DescribeSecretCommand, { SecretId: 'gone' }).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: {} }));
    const store = new SecretsManagerStore(client);
    expect((await store.describeManaged(ARN)).tags).toEqual({});
    await expect(store.describeManaged('gone')).rejects.toBeInstanceOf(SecretNotFoundError);
  });
});

describe('a runner recorded in its secret\'s tags', () => {
  it('reads back through DescribeSecret of the fake Secrets Manager as the fleet file describes it', async () => {
    const fake = new FakeSecretsManager();
    try {
      const fleet = parseAwsFleetConfig(
        JSON.stringify({ runners: [{ name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 42, hosts: { instanceIds: ['i-0123456789abcdef0'] }, reload: 'restart' }] }),
        'fleet.aws.json',
      );
      const runner = fleet.runners[0]!;
      const arn = fake.createSecret(runner.secretId, { tags: runnerTags(runner) });
      const described = await new SecretsManagerStore(fake.client).describeManaged(arn);
      expect(runnerFromTags(described.name, described.tags, runner.rotateEveryDays)).toEqual(runner);
    } finally {
      fake.restore();
    }
  });
});

describe('SecretsManagerStore.listManagedSecrets', () => {
  it('keeps only secrets with the exact tag key, although ListSecrets filters tag keys by prefix', async () => {
    const fake = new FakeSecretsManager();
    fake.createSecret('gitlab-runner-rotator/builders', { tags: { 'gitlab-runner-rotator:runner': 'builders' } });
    // Listed by the real ListSecrets too: `gitlab-runner-rotator:runner` is a prefix of this key.
    fake.createSecret('gitlab-runner-rotator/stray', { tags: { 'gitlab-runner-rotator:runner-id': '12' } });
    const listed = await new SecretsManagerStore(fake.client).listManagedSecrets('gitlab-runner-rotator:runner', 'gitlab-runner-rotator/');
    expect(listed.map((s) => s.name)).toEqual(['gitlab-runner-rotator/builders']);
    fake.restore();
  });

  it("leaves out another deployment's secrets: a name outside the fleet's prefix, whatever its tags", async () => {
    const fake = new FakeSecretsManager();
    fake.createSecret('gitlab-runner-rotator/builders', { tags: { 'gitlab-runner-rotator:runner': 'builders' } });
    fake.createSecret('other-fleet/builders', { tags: { 'gitlab-runner-rotator:runner': 'builders' } });
    const listed = await new SecretsManagerStore(fake.client).listManagedSecrets('gitlab-runner-rotator:runner', 'gitlab-runner-rotator/');
    expect(listed.map((s) => s.name)).toEqual(['gitlab-runner-rotator/builders']);
    fake.restore();
  });
});

describe('runnerTags', () => {
  it('refuses, naming the runner and the tag, a value a tag cannot hold: a url with ~, a value over 256 characters', () => {
    const runner = parseAwsFleetConfig(
      JSON.stringify({ runners: [{ name: 'builders', gitlabUrl: 'https://gitlab.example.com/~ci', runnerId: 12, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } }] }),
      'fleet.aws.json',
    ).runners[0]!;
    expect(() => runnerTags(runner)).toThrow('runner builders: tag gitlab-runner-rotator:url: "https://gitlab.example.com/~ci" cannot be a Secrets Manager tag value');
    expect(() => runnerTags({ ...runner, gitlabUrl: 'https://gitlab.example.com', configPath: undefined, hosts: { kind: 'ec2-tag', tagKey: 'k', tagValue: 'v', configPath: `/${'a'.repeat(300)}` } } as never)).toThrow(
      /tag gitlab-runner-rotator:config-path: .* cannot be a Secrets Manager tag value/,
    );
  });
});
