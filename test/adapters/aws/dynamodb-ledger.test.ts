import { ConditionalCheckFailedException, DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand, type PutCommandInput } from '@aws-sdk/lib-dynamodb';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbLedger, LEDGER_LAST_SORT_KEY, ledgerPartitionKey, ledgerPendingSortKey, ledgerRotationSortKey } from '../../../src/adapters/aws/dynamodb-ledger.ts';
import type { PendingRotation } from '../../../src/core/ports.ts';
import type { HostResult, RotationRecord } from '../../../src/core/types.ts';

const TABLE = 'rotator-ledger';
const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:runner-a-AbCdEf';
const V1 = '11111111-1111-4111-8111-111111111111';
const V2 = '22222222-2222-4222-8222-222222222222';
const V3 = '33333333-3333-4333-8333-333333333333';
const $metadata = {};

const host = (name: string, status: HostResult['status'], finishedAt = '2026-03-01T10:01:00.000Z'): HostResult => ({
  host: name,
  status,
  systemId: status === 'updated' ? `s_${name}` : null,
  detail: status,
  finishedAt,
});

const pending: PendingRotation = {
  secretId: SECRET,
  versionId: V2,
  fromVersionId: V1,
  resetAt: '2026-03-01T10:00:00.000Z',
  storedAt: '2026-03-01T10:00:01.000Z',
  hosts: [host('ci-1', 'updated'), host('ci-2', 'timed-out')],
};

const record: RotationRecord = {
  secretId: SECRET,
  runnerId: 42,
  fromVersionId: V1,
  toVersionId: V2,
  resetAt: pending.resetAt,
  storedAt: pending.storedAt,
  promotedAt: '2026-03-01T10:02:00.000Z',
  tokenExpiresAt: '2026-05-30T10:00:00.000Z',
  hosts: pending.hosts,
};

/** 2026-03-01T10:00:01Z in epoch seconds. */
const STORED_AT_SECONDS = Date.parse(pending.storedAt) / 1000;
const DAY = 86_400;
const PK = ledgerPartitionKey(SECRET);

let ddb: AwsClientStub<DynamoDBDocumentClient>;
let ledger: DynamoDbLedger;

beforeEach(() => {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }));
  ddb = mockClient(doc);
  ledger = new DynamoDbLedger(doc, TABLE);
});
afterEach(() => {
  ddb.restore();
});

describe('DynamoDbLedger key layout', () => {
  it('keys every item of a secret under SECRET#<secretId> and sorts history by promotion time', () => {
    expect(PK).toBe(`SECRET#${SECRET}`);
    expect(ledgerPendingSortKey(V2)).toBe(`PENDING#${V2}`);
    expect(ledgerRotationSortKey(record.promotedAt, V2)).toBe(`ROTATION#2026-03-01T10:02:00.000Z#${V2}`);
    expect(LEDGER_LAST_SORT_KEY).toBe('LAST');
  });
});

describe('DynamoDbLedger pending rotations', () => {
  it('saves an open rotation as plain attributes under PENDING#<versionId>, expiring 30 days after it was stored', async () => {
    ddb.on(PutCommand).resolves({});
    await ledger.savePending(pending);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: TABLE,
      Item: { pk: PK, sk: `PENDING#${V2}`, expiresAt: STORED_AT_SECONDS + 30 * DAY, ...pending },
    });
  });

  it('uses the configured number of days for the expiry', async () => {
    const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }));
    const own = mockClient(doc);
    try {
      own.on(PutCommand).resolves({});
      await new DynamoDbLedger(doc, TABLE, { pendingTtlDays: 2 }).savePending(pending);
      expect(own.commandCalls(PutCommand)[0]?.args[0].input.Item?.expiresAt).toBe(STORED_AT_SECONDS + 2 * DAY);
    } finally {
      own.restore();
    }
  });

  it('reads back what it saved with a consistent read, without the keys and the TTL', async () => {
    ddb.on(PutCommand).resolves({});
    await ledger.savePending(pending);
    const saved = ddb.commandCalls(PutCommand)[0]?.args[0].input.Item;
    ddb.on(GetCommand).resolves({ Item: saved });

    expect(await ledger.pending(SECRET, V2)).toEqual(pending);
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toEqual({ TableName: TABLE, Key: { pk: PK, sk: `PENDING#${V2}` }, ConsistentRead: true });
  });

  it('answers undefined for a version it has no record of', async () => {
    ddb.on(GetCommand).resolves({});
    expect(await ledger.pending(SECRET, V3)).toBeUndefined();
  });
});

describe('DynamoDbLedger finished rotations', () => {
  it('records a rotation in one transaction: the history item, LAST, and the pending record deleted', async () => {
    ddb.on(GetCommand).resolves({});
    ddb.on(TransactWriteCommand).resolves({});
    await ledger.saveRotation(record);

    const calls = ddb.commandCalls(TransactWriteCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      TransactItems: [
        { Put: { TableName: TABLE, Item: { pk: PK, sk: `ROTATION#${record.promotedAt}#${V2}`, ...record } } },
        { Put: { TableName: TABLE, Item: { pk: PK, sk: 'LAST', ...record } } },
        { Delete: { TableName: TABLE, Key: { pk: PK, sk: `PENDING#${V2}` } } },
      ],
    });
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toEqual({ TableName: TABLE, Key: { pk: PK, sk: 'LAST' }, ConsistentRead: true });
  });

  it('drops the replacement request, keyed by the secret name, with the record of a replacement', async () => {
    ddb.on(GetCommand).resolves({});
    ddb.on(TransactWriteCommand).resolves({});
    await ledger.saveRotation({ ...record, strategy: 'replace', replacedRunnerId: 11 });

    const items = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items.at(-1)).toEqual({ Delete: { TableName: TABLE, Key: { pk: 'SECRET#runner-a', sk: 'REPLACE' } } });
    expect(items[1]).toMatchObject({ Put: { Item: { sk: 'LAST', strategy: 'replace', replacedRunnerId: 11 } } });
  });

  it('withdraws a replacement request', async () => {
    ddb.on(DeleteCommand).resolves({});
    await ledger.withdrawReplacement(SECRET);
    expect(ddb.commandCalls(DeleteCommand)[0]?.args[0].input).toEqual({ TableName: TABLE, Key: { pk: 'SECRET#runner-a', sk: 'REPLACE' } });
  });

  it('keys a replacement request by the secret name, so the CLI (names) and the rotation hook (ARNs) find the same item', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(GetCommand, { TableName: TABLE, Key: { pk: 'SECRET#runner-a', sk: 'REPLACE' }, ConsistentRead: true }).resolves({ Item: { pk: 'SECRET#runner-a', sk: 'REPLACE', requestedAt: '2026-11-23T10:00:00.000Z' } });

    await ledger.requestReplacement('runner-a', '2026-11-23T10:00:00.000Z');

    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input).toEqual({ TableName: TABLE, Item: { pk: 'SECRET#runner-a', sk: 'REPLACE', requestedAt: '2026-11-23T10:00:00.000Z' } });
    expect(await ledger.replacementRequested(SECRET)).toBe('2026-11-23T10:00:00.000Z');
  });

  it('keeps the first record when finishSecret records the same version again, and only drops the pending record', async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: PK, sk: 'LAST', ...record } });
    ddb.on(DeleteCommand).resolves({});
    await ledger.saveRotation({ ...record, promotedAt: '2026-03-01T11:00:00.000Z', resetAt: '2026-03-01T11:00:00.000Z', hosts: [] });

    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
    expect(ddb.commandCalls(DeleteCommand)[0]?.args[0].input).toEqual({ TableName: TABLE, Key: { pk: PK, sk: `PENDING#${V2}` } });
  });

  it('answers the LAST item as the latest rotation, without keys or bookkeeping attributes', async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: PK, sk: 'LAST', revision: 3, ...record } });
    expect(await ledger.lastRotation(SECRET)).toEqual(record);
  });

  it('answers undefined for a secret that was never rotated', async () => {
    ddb.on(GetCommand).resolves({});
    expect(await ledger.lastRotation(SECRET)).toBeUndefined();
  });
});

describe('DynamoDbLedger.updateHosts', () => {
  const repushed = host('ci-2', 'updated', '2026-03-02T08:00:00.000Z');

  it('merges re-push results into LAST, on condition that LAST still records that version and nobody wrote it since', async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: PK, sk: 'LAST', ...record } });
    ddb.on(PutCommand).resolves({});
    await ledger.updateHosts(SECRET, V2, [repushed]);

    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: TABLE,
      Item: { pk: PK, sk: 'LAST', ...record, hosts: [record.hosts[0], repushed], revision: 1 },
      ConditionExpression: '#to = :to AND (attribute_not_exists(#revision) OR #revision = :revision)',
      ExpressionAttributeNames: { '#to': 'toVersionId', '#revision': 'revision' },
      ExpressionAttributeValues: { ':to': V2, ':revision': 0 },
    });
  });

  it('writes nothing when LAST records another rotation', async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: PK, sk: 'LAST', ...record, toVersionId: V3 } });
    await ledger.updateHosts(SECRET, V2, [repushed]);
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('lets a rotation that replaced LAST meanwhile win: ConditionalCheckFailed is not an error', async () => {
    ddb
      .on(GetCommand)
      .resolvesOnce({ Item: { pk: PK, sk: 'LAST', ...record } })
      .resolves({ Item: { pk: PK, sk: 'LAST', ...record, toVersionId: V3 } });
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata }));

    await expect(ledger.updateHosts(SECRET, V2, [repushed])).resolves.toBeUndefined();
    expect(ddb.commandCalls(PutCommand)).toHaveLength(1);
  });

  it('reads again and merges once more when a concurrent re-push wrote LAST first', async () => {
    const other = host('ci-3', 'updated', '2026-03-02T08:00:05.000Z');
    ddb
      .on(GetCommand)
      .resolvesOnce({ Item: { pk: PK, sk: 'LAST', ...record } })
      .resolves({ Item: { pk: PK, sk: 'LAST', ...record, hosts: [...record.hosts, other], revision: 1 } });
    ddb
      .on(PutCommand)
      .rejectsOnce(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata }))
      .resolves({});

    await ledger.updateHosts(SECRET, V2, [repushed]);

    const puts = ddb.commandCalls(PutCommand).map((c) => c.args[0].input as PutCommandInput);
    expect(puts).toHaveLength(2);
    expect(puts[1]?.Item).toMatchObject({ hosts: [record.hosts[0], repushed, other], revision: 2 });
    expect(puts[1]?.ExpressionAttributeValues).toEqual({ ':to': V2, ':revision': 1 });
  });

  it('rethrows any other DynamoDB error', async () => {
    const throttled = new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata });
    ddb.on(GetCommand).resolves({ Item: { pk: PK, sk: 'LAST', ...record } });
    ddb.on(PutCommand).rejects(throttled);
    await expect(ledger.updateHosts(SECRET, V2, [repushed])).rejects.toBe(throttled);
  });
});
