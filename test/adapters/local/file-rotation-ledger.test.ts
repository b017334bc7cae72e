import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileRotationLedger } from '../../../src/adapters/local/file-rotation-ledger.ts';
import type { RotationRecord } from '../../../src/core/types.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ledger-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const host = { host: 'h1', status: 'updated' as const, systemId: 's_1', detail: 'reload=sighup', finishedAt: '2026-11-23T00:00:01.000Z' };

describe('FileRotationLedger', () => {
  it('keeps pending progress until the rotation is recorded', async () => {
    const ledger = new FileRotationLedger(dir);
    const pending = { secretId: 'runner-a', versionId: 'v2', fromVersionId: 'v1', resetAt: '2026-11-23T00:00:00.000Z', storedAt: '2026-11-23T00:00:00.100Z', hosts: [host] };
    await ledger.savePending(pending);
    expect(await new FileRotationLedger(dir).pending('runner-a', 'v2')).toEqual(pending);

    const record: RotationRecord = { secretId: 'runner-a', runnerId: 3, fromVersionId: 'v1', toVersionId: 'v2', resetAt: pending.resetAt, storedAt: pending.storedAt, promotedAt: '2026-11-23T00:00:02.000Z', tokenExpiresAt: null, hosts: [host] };
    await ledger.saveRotation(record);
    expect(await ledger.pending('runner-a', 'v2')).toBeUndefined();
    expect(await ledger.lastRotation('runner-a')).toEqual(record);
    expect(await ledger.lastRotation('runner-b')).toBeUndefined();
  });
});

describe('FileRotationLedger re-push records', () => {
  it('replaces the re-pushed hosts in the rotation record and keeps the others', async () => {
    const ledger = new FileRotationLedger(dir);
    const missed = { ...host, host: 'h2', status: 'undeliverable' as const, systemId: null };
    const record: RotationRecord = { secretId: 'runner-a', runnerId: 3, fromVersionId: 'v1', toVersionId: 'v2', resetAt: 'a', storedAt: 'b', promotedAt: 'c', tokenExpiresAt: null, hosts: [host, missed] };
    await ledger.saveRotation(record);
    const repaired = { ...missed, status: 'updated' as const, systemId: 's_2' };
    await ledger.updateHosts('runner-a', 'v2', [repaired]);
    expect((await ledger.lastRotation('runner-a'))?.hosts).toEqual([host, repaired]);
  });
});
