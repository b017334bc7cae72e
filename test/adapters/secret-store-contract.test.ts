import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../src/adapters/local/file-secret-store.ts';
import { SecretsManagerStore } from '../../src/adapters/aws/secrets-manager-store.ts';
import { RotationInProgressError, SecretNotFoundError } from '../../src/core/errors.ts';
import type { SecretStore } from '../../src/core/ports.ts';
import { FakeSecretsManager } from '../support/fake-secrets-manager.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

/** What the scenario needs beyond the SecretStore port: adopting a token and opening a rotation. */
interface Subject {
  store: SecretStore;
  adopt(secretId: string, versionId: string, value: string): Promise<void>;
  /** FileSecretStore.beginRotation in the local engine; RotateSecret (startRotation) in AWS. */
  openRotation(secretId: string): Promise<string>;
  close(): Promise<void>;
}

const SECRET = 'runner-a';

const engines: Array<{ name: string; create: () => Promise<Subject> }> = [
  {
    name: 'FileSecretStore',
    create: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'store-contract-'));
      const store = new FileSecretStore({ dir: join(dir, 'secrets') });
      return {
        store,
        adopt: (secretId, versionId, value) => store.adoptCurrent(secretId, versionId, value),
        openRotation: async (secretId) => (await store.beginRotation(secretId, randomUUID())).versionId,
        close: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'SecretsManagerStore',
    create: async () => {
      const fake = new FakeSecretsManager();
      fake.createSecret(SECRET);
      const store = new SecretsManagerStore(fake.client);
      return {
        store,
        adopt: (secretId, versionId, value) => store.adoptCurrent(secretId, versionId, value),
        openRotation: (secretId) => store.startRotation(secretId),
        close: async () => fake.restore(),
      };
    },
  },
];

/** The staging labels of each version that has one, sorted for comparison. */
async function stagesOf(store: SecretStore, secretId: string): Promise<Record<string, string[]>> {
  const { versions } = await store.describe(secretId);
  return Object.fromEntries(versions.filter((v) => v.stages.length > 0).map((v) => [v.versionId, [...v.stages].sort()]));
}

const token = (n: number) => JSON.stringify({ runnerId: 7, gitlabUrl: 'https://gitlab.example.com', token: `glrt-contract-token-${n}-abcdefgh` });

describe.each(engines)('$name keeps the SecretStore contract', ({ create }) => {
  let subject: Subject;
  beforeEach(async () => {
    subject = await create();
  });
  afterEach(async () => {
    await subject.close();
  });

  it('walks the version stages through two rotations as Secrets Manager does', async () => {
    const { store } = subject;
    const v1 = randomUUID();
    await subject.adopt(SECRET, v1, token(1));
    expect(await store.getValue(SECRET, { stage: 'AWSCURRENT' })).toBe(token(1));
    expect((await store.describe(SECRET)).rotationEnabled).toBe(true);
    expect(await stagesOf(store, SECRET)).toEqual({ [v1]: ['AWSCURRENT'] });

    const v2 = await subject.openRotation(SECRET);
    expect(v2).not.toBe(v1);
    expect(await stagesOf(store, SECRET)).toEqual({ [v1]: ['AWSCURRENT'], [v2]: ['AWSPENDING'] });
    expect(await store.getValue(SECRET, { versionId: v2 })).toBeUndefined();
    expect(await store.getValue(SECRET, { stage: 'AWSPENDING' })).toBeUndefined();

    await store.putPendingValue(SECRET, v2, token(2));
    await store.putPendingValue(SECRET, v2, token(2));
    expect(await store.getValue(SECRET, { versionId: v2 })).toBe(token(2));
    expect(await store.getValue(SECRET, { stage: 'AWSPENDING' })).toBe(token(2));
    expect(await store.getValue(SECRET, { stage: 'AWSCURRENT' })).toBe(token(1));

    await expect(store.putPendingValue(SECRET, v2, token(99))).rejects.toBeInstanceOf(RotationInProgressError);
    expect(await store.getValue(SECRET, { versionId: v2 })).toBe(token(2));

    await store.promote(SECRET, v2, v1);
    expect(await stagesOf(store, SECRET)).toEqual({ [v1]: ['AWSPREVIOUS'], [v2]: ['AWSCURRENT'] });
    expect(await store.getValue(SECRET, { stage: 'AWSCURRENT' })).toBe(token(2));
    expect(await store.getValue(SECRET, { stage: 'AWSPREVIOUS' })).toBe(token(1));

    const v3 = await subject.openRotation(SECRET);
    await store.putPendingValue(SECRET, v3, token(3));
    await store.promote(SECRET, v3, v2);
    expect(await stagesOf(store, SECRET)).toEqual({ [v2]: ['AWSPREVIOUS'], [v3]: ['AWSCURRENT'] });
  });

  it('rejects a different value under a version that already holds one, and keeps the first', async () => {
    const { store } = subject;
    await subject.adopt(SECRET, randomUUID(), token(1));
    const v2 = await subject.openRotation(SECRET);
    await store.putPendingValue(SECRET, v2, token(2));

    const error = await store.putPendingValue(SECRET, v2, token(3)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RotationInProgressError);
    expect((error as Error).message).toContain(v2);
    expectNoTokens(captured(error), [token(2), token(3)]);
    expect(await store.getValue(SECRET, { versionId: v2 })).toBe(token(2));
  });

  it('says which secret is missing', async () => {
    const error = await subject.store.describe('runner-unknown').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SecretNotFoundError);
    expect(error).toMatchObject({ secretId: 'runner-unknown' });
    expect((error as Error).message).toContain('runner-unknown');
  });
});
