import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../../src/adapters/local/file-secret-store.ts';
import { InvalidInputError, RotationInProgressError, SecretNotFoundError } from '../../../src/core/errors.ts';

let dir: string;
let store: FileSecretStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'store-test-'));
  store = new FileSecretStore({ dir: join(dir, 'secrets') });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const stagesOf = async (secretId: string) =>
  Object.fromEntries((await store.describe(secretId)).versions.map((v) => [v.versionId, [...v.stages].sort()]));

describe('FileSecretStore', () => {
  it('says which secret is missing', async () => {
    await expect(store.describe('nope')).rejects.toBeInstanceOf(SecretNotFoundError);
    await expect(store.describe('nope')).rejects.toThrow('No secret nope');
  });

  it('rejects a secret id that is not a safe file name', async () => {
    await expect(store.adoptCurrent('../etc/passwd', 'v1', 'x')).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('keeps its files 0600 in a 0700 folder', async () => {
    await store.adoptCurrent('runner-a', 'v1', 'value-1');
    expect((await stat(join(dir, 'secrets'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'secrets', 'runner-a.secret.json'))).mode & 0o777).toBe(0o600);
  });

  it('walks the version stages as Secrets Manager does through a rotation', async () => {
    await store.adoptCurrent('runner-a', 'v1', 'value-1');
    expect(await store.beginRotation('runner-a', 'v2')).toEqual({ versionId: 'v2', resumed: false });
    expect(await stagesOf('runner-a')).toEqual({ v1: ['AWSCURRENT'], v2: ['AWSPENDING'] });
    expect(await store.getValue('runner-a', { versionId: 'v2' })).toBeUndefined();

    await store.putPendingValue('runner-a', 'v2', 'value-2');
    expect(await store.getValue('runner-a', { stage: 'AWSPENDING' })).toBe('value-2');

    await store.promote('runner-a', 'v2', 'v1');
    expect(await stagesOf('runner-a')).toEqual({ v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT'] });
    expect(await store.getValue('runner-a', { stage: 'AWSCURRENT' })).toBe('value-2');
    expect(await store.getValue('runner-a', { stage: 'AWSPREVIOUS' })).toBe('value-1');

    await store.beginRotation('runner-a', 'v3');
    await store.putPendingValue('runner-a', 'v3', 'value-3');
    await store.promote('runner-a', 'v3', 'v2');
    expect(await stagesOf('runner-a')).toEqual({ v2: ['AWSPREVIOUS'], v3: ['AWSCURRENT'] });
  });

  it('treats the same pending value again as a no-op and a different one as an error', async () => {
    await store.adoptCurrent('runner-a', 'v1', 'value-1');
    await store.beginRotation('runner-a', 'v2');
    await store.putPendingValue('runner-a', 'v2', 'value-2');
    await store.putPendingValue('runner-a', 'v2', 'value-2');
    await expect(store.putPendingValue('runner-a', 'v2', 'other')).rejects.toBeInstanceOf(RotationInProgressError);
    expect(await store.getValue('runner-a', { versionId: 'v2' })).toBe('value-2');
  });

  it('resumes the version an unfinished rotation left in AWSPENDING', async () => {
    await store.adoptCurrent('runner-a', 'v1', 'value-1');
    await store.beginRotation('runner-a', 'v2');
    expect(await store.beginRotation('runner-a', 'v3')).toEqual({ versionId: 'v2', resumed: true });
  });

  it('refuses to promote over a current version it was not told about', async () => {
    await store.adoptCurrent('runner-a', 'v1', 'value-1');
    await store.beginRotation('runner-a', 'v2');
    await store.putPendingValue('runner-a', 'v2', 'value-2');
    await expect(store.promote('runner-a', 'v2', 'v0')).rejects.toThrow('AWSCURRENT of runner-a is on v1, not v0');
    expect(await store.getValue('runner-a', { stage: 'AWSCURRENT' })).toBe('value-1');
  });

  it('lets one rotation of a runner hold the lock and turns a second away', async () => {
    await store.adoptCurrent('runner-a', 'v1', 'value-1');
    const other = new FileSecretStore({ dir: join(dir, 'secrets') });
    let release!: () => void;
    let started!: () => void;
    const holding = new Promise<void>((resolve) => (started = resolve));
    const held = store.withRotationLock('runner-a', () => {
      started();
      return new Promise<void>((resolve) => (release = resolve));
    });
    await holding;
    await expect(other.withRotationLock('runner-a', async () => 'second')).rejects.toBeInstanceOf(RotationInProgressError);
    expect(await other.withRotationLock('runner-b', async () => 'other runner')).toBe('other runner');
    release();
    await held;
    expect(await other.withRotationLock('runner-a', async () => 'after')).toBe('after');
  });

  it('leaves no temp files behind', async () => {
    await store.adoptCurrent('runner-a', 'v1', 'value-1');
    await store.beginRotation('runner-a', 'v2');
    await store.putPendingValue('runner-a', 'v2', 'value-2');
    expect((await readdir(join(dir, 'secrets'))).sort()).toEqual(['runner-a.secret.json']);
  });
});
