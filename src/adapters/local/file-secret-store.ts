import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { InvalidInputError, RotationInProgressError, SecretNotFoundError } from '../../core/errors.ts';
import { isOpenRotation } from '../../core/rotation-guards.ts';
import type { SecretDescription, SecretStore, VersionRef } from '../../core/ports.ts';
import type { RotationStarter } from '../../core/rotate-now.ts';
import type { VersionStage } from '../../core/types.ts';
import { checkSecretId, ensureStateDir, readJsonFile, writeJsonFile } from './state-files.ts';

interface StoredVersion {
  stages: VersionStage[];
  createdAt: string;
  /** Absent for a version opened by beginRotation and not yet filled by createSecret. */
  value?: string;
}

interface StoredSecret {
  secretId: string;
  rotationEnabled: boolean;
  versions: Record<string, StoredVersion>;
}

export interface FileSecretStoreOptions {
  /** Folder of the secret files (created 0700). */
  dir: string;
  now?: () => Date;
  /** A rotation lock older than this, whose owner stopped refreshing it, is taken over. Default 120 s. */
  staleLockMs?: number;
}

/**
 * The local engine's secret store: one 0600 JSON file per secret with Secrets Manager's version stages
 * (AWSCURRENT, AWSPENDING, AWSPREVIOUS), written atomically. It also plays RotateSecret's part
 * (beginRotation) and holds a per-secret lock (proper-lockfile: a lock folder refreshed while held, taken
 * over when stale) so two rotations of one runner never interleave, even from two processes.
 */
export class FileSecretStore implements SecretStore, RotationStarter {
  private readonly dir: string;
  private readonly now: () => Date;
  private readonly staleLockMs: number;

  constructor(options: FileSecretStoreOptions) {
    this.dir = options.dir;
    this.now = options.now ?? (() => new Date());
    this.staleLockMs = options.staleLockMs ?? 120_000;
  }

  async describe(secretId: string): Promise<SecretDescription> {
    const secret = await this.load(secretId);
    return {
      secretId,
      rotationEnabled: secret.rotationEnabled,
      versions: Object.entries(secret.versions).map(([versionId, v]) => ({ versionId, stages: [...v.stages], ...(typeof v.createdAt === 'string' ? { createdAt: v.createdAt } : {}) })),
    };
  }

  /** Whether the secret's file exists; one that is not valid JSON throws (InvalidInputError, saying what to do). */
  async exists(secretId: string): Promise<boolean> {
    return (await this.read(secretId)) !== undefined;
  }

  async getValue(secretId: string, ref: VersionRef): Promise<string | undefined> {
    const secret = await this.load(secretId);
    const version = 'versionId' in ref ? secret.versions[ref.versionId] : Object.values(secret.versions).find((v) => v.stages.includes(ref.stage));
    return version?.value;
  }

  async putPendingValue(secretId: string, versionId: string, value: string): Promise<void> {
    const secret = await this.load(secretId);
    const existing = secret.versions[versionId];
    if (existing?.value !== undefined) {
      if (existing.value === value) return;
      throw new RotationInProgressError(`Version ${versionId} of ${secretId} already holds a different value`, { secretId, step: 'createSecret' });
    }
    moveStage(secret, 'AWSPENDING', versionId);
    const version = secret.versions[versionId] ?? { stages: ['AWSPENDING'], createdAt: this.now().toISOString() };
    secret.versions[versionId] = { ...version, value };
    await this.save(secret);
  }

  async promote(secretId: string, toVersionId: string, fromVersionId: string | null): Promise<void> {
    const secret = await this.load(secretId);
    const target = secret.versions[toVersionId];
    if (target?.value === undefined) throw new SecretNotFoundError(`${secretId} has no value at version ${toVersionId} to promote`, { secretId });
    const current = Object.entries(secret.versions).find(([, v]) => v.stages.includes('AWSCURRENT'))?.[0] ?? null;
    if (current !== fromVersionId) {
      throw new RotationInProgressError(`AWSCURRENT of ${secretId} is on ${current ?? 'no version'}, not ${fromVersionId ?? 'no version'}`, {
        secretId,
        step: 'finishSecret',
      });
    }
    if (current !== null && current !== toVersionId) moveStage(secret, 'AWSPREVIOUS', current);
    moveStage(secret, 'AWSCURRENT', toVersionId);
    target.stages = target.stages.filter((s) => s !== 'AWSPENDING');
    // Like Secrets Manager's deprecated versions, a version with no stage left is dropped.
    for (const [id, v] of Object.entries(secret.versions)) if (v.stages.length === 0) delete secret.versions[id];
    await this.save(secret);
  }

  /** Stores a runner's existing token as the current version: how a runner is adopted. */
  async adoptCurrent(secretId: string, versionId: string, value: string): Promise<void> {
    await ensureStateDir(this.dir);
    const secret = (await this.read(secretId)) ?? { secretId: checkSecretId(secretId), rotationEnabled: true, versions: {} };
    const current = Object.entries(secret.versions).find(([, v]) => v.stages.includes('AWSCURRENT'))?.[0];
    if (current) moveStage(secret, 'AWSPREVIOUS', current);
    for (const v of Object.values(secret.versions)) v.stages = v.stages.filter((s) => s !== 'AWSCURRENT' && s !== 'AWSPENDING');
    secret.versions[versionId] = { stages: ['AWSCURRENT'], createdAt: this.now().toISOString(), value };
    for (const [id, v] of Object.entries(secret.versions)) if (v.stages.length === 0) delete secret.versions[id];
    await this.save(secret);
  }

  async beginRotation(secretId: string, newVersionId: string): Promise<{ versionId: string; resumed: boolean }> {
    const secret = await this.load(secretId);
    const open = Object.entries(secret.versions).find(([, v]) => isOpenRotation(v.stages));
    if (open) return { versionId: open[0], resumed: true };
    secret.versions[newVersionId] = { stages: ['AWSPENDING'], createdAt: this.now().toISOString() };
    await this.save(secret);
    return { versionId: newVersionId, resumed: false };
  }

  async withRotationLock<T>(secretId: string, work: () => Promise<T>): Promise<T> {
    await ensureStateDir(this.dir);
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.path(secretId), {
        realpath: false,
        lockfilePath: join(this.dir, `${checkSecretId(secretId)}.lock`),
        stale: this.staleLockMs,
        update: Math.max(1_000, Math.floor(this.staleLockMs / 4)),
        retries: 0,
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
        throw new RotationInProgressError(`Another rotation of ${secretId} is running (lock ${secretId}.lock in ${this.dir})`, {
          secretId,
          step: 'createSecret',
          fix: 'Wait for it to finish; a lock whose process died is taken over after two minutes.',
          cause: error,
        });
      }
      throw error;
    }
    try {
      return await work();
    } finally {
      await release();
    }
  }

  private path(secretId: string): string {
    return join(this.dir, `${checkSecretId(secretId)}.secret.json`);
  }

  /**
   * The secret's file, or undefined when there is none. No copy of a previous state is kept: a stale copy
   * could hand back a token GitLab has since killed, or lose the only live one. The runner's config.toml
   * holds the token its hosts run with, so adopting again is the way back.
   */
  private async read(secretId: string): Promise<StoredSecret | undefined> {
    const path = this.path(secretId);
    const remedy = `no copy of it is kept; move it aside, then \`rotator adopt ${secretId}\` stores again the token the runner's config.toml holds (or the one --token-file names)`;
    const secret = await readJsonFile<unknown>(path, remedy);
    if (secret === undefined) return undefined;
    const versions = (secret as Partial<StoredSecret> | null)?.versions;
    if (typeof versions !== 'object' || versions === null || Array.isArray(versions)) {
      throw new InvalidInputError(path, `state file does not hold a secret (no "versions"): ${remedy}`);
    }
    return secret as StoredSecret;
  }

  private async load(secretId: string): Promise<StoredSecret> {
    const secret = await this.read(secretId);
    if (!secret) throw new SecretNotFoundError(`No secret ${secretId} in ${this.dir} (adopt the runner first)`, { secretId });
    return secret;
  }

  private async save(secret: StoredSecret): Promise<void> {
    await ensureStateDir(this.dir);
    await writeJsonFile(this.path(secret.secretId), secret);
  }
}

/**
 * The error withRotationLock throws when another rotation of the runner holds its lock: nothing was tried,
 * so it is no failure of this rotation (an overlapping scan leaves the runner to the one holding the lock).
 */
export function isRotationLockedError(error: unknown): boolean {
  return error instanceof RotationInProgressError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ELOCKED';
}

/** A stage sits on one version at a time: take it off every other version and put it on `versionId`. */
function moveStage(secret: StoredSecret, stage: VersionStage, versionId: string): void {
  for (const [id, v] of Object.entries(secret.versions)) {
    if (id !== versionId) v.stages = v.stages.filter((s) => s !== stage);
  }
  const target = secret.versions[versionId];
  if (target && !target.stages.includes(stage)) target.stages.push(stage);
}
