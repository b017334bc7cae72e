import { join } from 'node:path';
import type { PendingRotation, RotationLedger } from '../../core/ports.ts';
import { mergeHostResults } from '../../core/types.ts';
import type { HostResult, RotationRecord } from '../../core/types.ts';
import { checkSecretId, ensureStateDir, readJsonFile, writeJsonFile } from './state-files.ts';

interface LedgerFile {
  pending: Record<string, PendingRotation>;
  rotations: RotationRecord[];
  /** `rotator migrate`: when a replacement of the runner was requested (dropped by the next recorded rotation). */
  replacementRequestedAt?: string;
}

/** How many finished rotations each runner's ledger keeps. */
const HISTORY = 50;

/**
 * The local engine's copy of the records the AWS engine keeps in DynamoDB: per-version progress (reset
 * time, per-host results) and the rotation history, one 0600 JSON file per secret beside the secret store.
 * Writers hold the secret's rotation lock, so a read-modify-write here never races another.
 */
export class FileRotationLedger implements RotationLedger {
  constructor(private readonly dir: string) {}

  async savePending(pending: PendingRotation): Promise<void> {
    const ledger = await this.load(pending.secretId);
    ledger.pending[pending.versionId] = pending;
    await this.save(pending.secretId, ledger);
  }

  async pending(secretId: string, versionId: string): Promise<PendingRotation | undefined> {
    return (await this.load(secretId)).pending[versionId];
  }

  async saveRotation(record: RotationRecord): Promise<void> {
    const ledger = await this.load(record.secretId);
    delete ledger.pending[record.toVersionId];
    if (record.strategy === 'replace') delete ledger.replacementRequestedAt;
    // As DynamoDbLedger: a finishSecret run again knows only placeholder timings and no host results, so
    // the first record of a version stays.
    if (!ledger.rotations.some((r) => r.toVersionId === record.toVersionId)) ledger.rotations = [...ledger.rotations, record].slice(-HISTORY);
    await this.save(record.secretId, ledger);
  }

  async lastRotation(secretId: string): Promise<RotationRecord | undefined> {
    return (await this.load(secretId)).rotations.at(-1);
  }

  async updateHosts(secretId: string, toVersionId: string, results: HostResult[]): Promise<void> {
    const ledger = await this.load(secretId);
    const record = ledger.rotations.find((r) => r.toVersionId === toVersionId);
    if (!record) return;
    record.hosts = mergeHostResults(record.hosts, results);
    await this.save(secretId, ledger);
  }

  async markRetired(secretId: string, toVersionId: string, retiredAt: string): Promise<void> {
    const ledger = await this.load(secretId);
    const record = ledger.rotations.find((r) => r.toVersionId === toVersionId);
    if (!record) return;
    record.replacedRunnerRetiredAt = retiredAt;
    await this.save(secretId, ledger);
  }

  async requestReplacement(secretId: string, requestedAt: string): Promise<void> {
    const ledger = await this.load(secretId);
    ledger.replacementRequestedAt = requestedAt;
    await this.save(secretId, ledger);
  }

  async replacementRequested(secretId: string): Promise<string | undefined> {
    return (await this.load(secretId)).replacementRequestedAt;
  }

  async withdrawReplacement(secretId: string): Promise<void> {
    const ledger = await this.load(secretId);
    if (ledger.replacementRequestedAt === undefined) return;
    delete ledger.replacementRequestedAt;
    await this.save(secretId, ledger);
  }

  private path(secretId: string): string {
    return join(this.dir, `${checkSecretId(secretId)}.ledger.json`);
  }

  private async load(secretId: string): Promise<LedgerFile> {
    return (await readJsonFile<LedgerFile>(this.path(secretId))) ?? { pending: {}, rotations: [] };
  }

  private async save(secretId: string, ledger: LedgerFile): Promise<void> {
    await ensureStateDir(this.dir);
    await writeJsonFile(this.path(secretId), ledger);
  }
}
