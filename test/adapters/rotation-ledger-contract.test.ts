import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbLedger } from '../../src/adapters/aws/dynamodb-ledger.ts';
import { FileRotationLedger } from '../../src/adapters/local/file-rotation-ledger.ts';
import type { PendingRotation, RotationLedger } from '../../src/core/ports.ts';
import type { HostResult, RotationRecord } from '../../src/core/types.ts';
import { FakeDynamoTable } from '../support/fake-dynamodb.ts';

/**
 * What both rotation ledgers promise the core (ports.ts RotationLedger), run against each: the local
 * engine's files and the AWS engine's DynamoDB table (its fake at the SDK boundary).
 */
interface Subject {
  ledger: RotationLedger;
  close(): Promise<void>;
}

const engines: Array<{ name: string; create: () => Promise<Subject> }> = [
  {
    name: 'DynamoDbLedger',
    create: async () => {
      const table = new FakeDynamoTable();
      return { ledger: new DynamoDbLedger(table.client, 'ledger'), close: async () => table.mock.restore() };
    },
  },
  {
    name: 'FileRotationLedger',
    create: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'rotation-ledger-'));
      return { ledger: new FileRotationLedger(dir), close: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

const SECRET = 'runner-a';
const host: HostResult = { host: 'h1', status: 'updated', systemId: 's_1', detail: 'reload=sighup', finishedAt: '2026-11-23T00:00:01.000Z' };
const missed: HostResult = { host: 'h2', status: 'undeliverable', systemId: null, detail: 'offline', finishedAt: '2026-11-23T00:00:01.000Z' };
const pending: PendingRotation = { secretId: SECRET, versionId: 'v2', fromVersionId: 'v1', resetAt: '2026-11-23T00:00:00.000Z', storedAt: '2026-11-23T00:00:00.500Z', hosts: [host, missed] };
const record: RotationRecord = {
  secretId: SECRET,
  runnerId: 3,
  fromVersionId: 'v1',
  toVersionId: 'v2',
  resetAt: pending.resetAt,
  storedAt: pending.storedAt,
  promotedAt: '2026-11-23T00:00:02.000Z',
  tokenExpiresAt: null,
  hosts: [host, missed],
};

describe.each(engines)('$name, as a RotationLedger', ({ create }) => {
  let subject: Subject;
  beforeEach(async () => {
    subject = await create();
  });
  afterEach(async () => {
    await subject.close();
  });

  it('keeps a pending rotation until its record is saved', async () => {
    await subject.ledger.savePending(pending);
    expect(await subject.ledger.pending(SECRET, 'v2')).toEqual(pending);
    await subject.ledger.saveRotation(record);
    expect(await subject.ledger.pending(SECRET, 'v2')).toBeUndefined();
    expect(await subject.ledger.lastRotation(SECRET)).toEqual(record);
  });

  it('keeps the first record when finishSecret records the same version again with what a re-run knows', async () => {
    await subject.ledger.saveRotation(record);
    await subject.ledger.saveRotation({ ...record, promotedAt: '2026-11-23T00:09:00.000Z', resetAt: '2026-11-23T00:09:00.000Z', hosts: [] });
    expect(await subject.ledger.lastRotation(SECRET)).toEqual(record);
  });

  it('merges re-push results into the record of that version only', async () => {
    await subject.ledger.saveRotation(record);
    const repaired = { ...missed, status: 'updated' as const, systemId: 's_2' };
    await subject.ledger.updateHosts(SECRET, 'v2', [repaired]);
    await subject.ledger.updateHosts(SECRET, 'v-other', [{ ...host, status: 'failed' }]);
    expect((await subject.ledger.lastRotation(SECRET))?.hosts).toEqual([host, repaired]);
  });

  it('keeps a replacement request through a reset record and drops it with a replace record', async () => {
    await subject.ledger.requestReplacement(SECRET, '2026-11-23T00:00:00.000Z');
    await subject.ledger.saveRotation(record);
    expect(await subject.ledger.replacementRequested(SECRET)).toBe('2026-11-23T00:00:00.000Z');
    await subject.ledger.saveRotation({ ...record, toVersionId: 'v3', fromVersionId: 'v2', strategy: 'replace', replacedRunnerId: 3, runnerId: 4 });
    expect(await subject.ledger.replacementRequested(SECRET)).toBeUndefined();
  });

  it('withdraws a replacement request', async () => {
    await subject.ledger.requestReplacement(SECRET, '2026-11-23T00:00:00.000Z');
    await subject.ledger.withdrawReplacement(SECRET);
    expect(await subject.ledger.replacementRequested(SECRET)).toBeUndefined();
  });

  it('marks the replaced runner of the last record retired, and no other record', async () => {
    const replaced: RotationRecord = { ...record, strategy: 'replace', replacedRunnerId: 2 };
    await subject.ledger.saveRotation(replaced);
    await subject.ledger.markRetired(SECRET, 'v-other', '2026-11-23T01:00:00.000Z');
    expect((await subject.ledger.lastRotation(SECRET))?.replacedRunnerRetiredAt).toBeUndefined();
    await subject.ledger.markRetired(SECRET, 'v2', '2026-11-23T01:00:00.000Z');
    expect(await subject.ledger.lastRotation(SECRET)).toEqual({ ...replaced, replacedRunnerRetiredAt: '2026-11-23T01:00:00.000Z' });
  });
});
