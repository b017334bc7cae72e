import { DeleteCommand, GetCommand, PutCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { secretNameFromId } from '../../config/aws-fleet-config.ts';
import { InvalidInputError } from '../../core/errors.ts';
import type { PendingRotation, RotationLedger } from '../../core/ports.ts';
import { mergeHostResults } from '../../core/types.ts';
import type { HostResult, RotationRecord } from '../../core/types.ts';

/**
 * Key layout of the ledger table (partition key `pk`, sort key `sk`, both strings; TTL on `expiresAt`,
 * epoch seconds). Every item of one secret shares its partition:
 *
 * | pk                   | sk                                   | item                                         |
 * |----------------------|--------------------------------------|----------------------------------------------|
 * | `SECRET#<secretId>`  | `PENDING#<versionId>`                | PendingRotation of an open rotation, with TTL |
 * | `SECRET#<secretId>`  | `ROTATION#<promotedAt>#<versionId>`  | RotationRecord, history (sorts by time)       |
 * | `SECRET#<secretId>`  | `LAST`                               | the latest RotationRecord (the scanner reads it) |
 * | `SECRET#<secretId>`  | `ALERT#…`                            | reserved for alert de-duplication             |
 * | `SECRET#<name>`      | `REPLACE`                            | `rotator migrate --aws`: replace on next rotation |
 * | `SECRET#<secretId>`  | `SCAN`                               | which scan holds the runner (dynamodb-scan-claims.ts), with TTL |
 * | `RATE#<gitlab url>`  | `BUDGET`                             | the scan workers' shared GitLab budget (dynamodb-rate-budget.ts), with TTL |
 *
 * Records are stored as plain attributes (maps and lists), readable in the console.
 */
export const LEDGER_PARTITION_PREFIX = 'SECRET#';
export const LEDGER_PENDING_PREFIX = 'PENDING#';
export const LEDGER_ROTATION_PREFIX = 'ROTATION#';
export const LEDGER_LAST_SORT_KEY = 'LAST';
export const LEDGER_ALERT_PREFIX = 'ALERT#';
export const LEDGER_REPLACE_SORT_KEY = 'REPLACE';
/** The table's TTL attribute (epoch seconds). */
export const LEDGER_TTL_ATTRIBUTE = 'expiresAt';

/** A condition of a write did not hold. Matched by name: the SDK's error class may come from another copy of the client. */
export function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

export const ledgerPartitionKey = (secretId: string): string => `${LEDGER_PARTITION_PREFIX}${secretId}`;
export const ledgerPendingSortKey = (versionId: string): string => `${LEDGER_PENDING_PREFIX}${versionId}`;
export const ledgerRotationSortKey = (promotedAt: string, versionId: string): string => `${LEDGER_ROTATION_PREFIX}${promotedAt}#${versionId}`;

export interface DynamoDbLedgerOptions {
  /** How long an open rotation's record is kept after it was stored. Default 30 days. */
  pendingTtlDays?: number;
}

/** Reads of LAST per updateHosts: a concurrent re-push may change it between our read and our write. */
const UPDATE_ATTEMPTS = 3;
const DAY_SECONDS = 86_400;

/**
 * The AWS engine's rotation ledger, in the one DynamoDB table of the stack (layout above). Reads are
 * strongly consistent: each rotation step is a separate invocation and must see what the previous step wrote
 * ("GetItem provides an eventually consistent read by default… set ConsistentRead to true", GetItem in the
 * DynamoDB API reference).
 *
 * - `saveRotation` writes the history item and LAST and deletes PENDING in one TransactWriteItems. Where
 *   LAST already records the same version (finishSecret ran again because the promotion failed after the
 *   first write), the first record is kept: the re-run no longer has the PENDING item, so it only knows
 *   placeholder timings and no host results, and overwriting would drop the hosts that still need a re-push.
 * - `updateHosts` merges re-push results into LAST under a condition: LAST still records that version and
 *   nobody wrote it since we read it (a `revision` counter). A newer rotation wins and the results are
 *   dropped (ConditionalCheckFailedException, then LAST names another version); a concurrent re-push makes
 *   us read again and merge once more. History items keep the hosts as they were at promotion.
 */
export class DynamoDbLedger implements RotationLedger {
  private readonly pendingTtlSeconds: number;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: DynamoDbLedgerOptions = {},
  ) {
    this.pendingTtlSeconds = Math.round((options.pendingTtlDays ?? 30) * DAY_SECONDS);
  }

  async savePending(pending: PendingRotation): Promise<void> {
    const storedAtMs = Date.parse(pending.storedAt);
    if (Number.isNaN(storedAtMs)) {
      throw new InvalidInputError(`pending rotation ${pending.versionId} of ${pending.secretId}`, `storedAt is not a date: ${pending.storedAt}`);
    }
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: ledgerPartitionKey(pending.secretId),
          sk: ledgerPendingSortKey(pending.versionId),
          [LEDGER_TTL_ATTRIBUTE]: Math.floor(storedAtMs / 1000) + this.pendingTtlSeconds,
          ...pendingAttributes(pending),
        },
      }),
    );
  }

  async pending(secretId: string, versionId: string): Promise<PendingRotation | undefined> {
    const item = await this.get(secretId, ledgerPendingSortKey(versionId));
    return item && pendingAttributes(item as unknown as PendingRotation);
  }

  async saveRotation(record: RotationRecord): Promise<void> {
    const pk = ledgerPartitionKey(record.secretId);
    const pendingKey = { pk, sk: ledgerPendingSortKey(record.toVersionId) };
    const last = await this.lastRotation(record.secretId);
    // A replacement answers a `rotator migrate` request; a reset that was under way when it came does not.
    const replaceKey = replaceRequestKey(record.secretId);
    const dropRequest = record.strategy === 'replace';
    if (last?.toVersionId === record.toVersionId) {
      await this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: pendingKey }));
      if (dropRequest) await this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: replaceKey }));
      return;
    }
    const attributes = recordAttributes(record);
    await this.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: this.tableName, Item: { pk, sk: ledgerRotationSortKey(record.promotedAt, record.toVersionId), ...attributes } } },
          { Put: { TableName: this.tableName, Item: { pk, sk: LEDGER_LAST_SORT_KEY, ...attributes } } },
          { Delete: { TableName: this.tableName, Key: pendingKey } },
          ...(dropRequest ? [{ Delete: { TableName: this.tableName, Key: replaceKey } }] : []),
        ],
      }),
    );
  }

  async lastRotation(secretId: string): Promise<RotationRecord | undefined> {
    const item = await this.get(secretId, LEDGER_LAST_SORT_KEY);
    return item && recordAttributes(item as unknown as RotationRecord);
  }

  async updateHosts(secretId: string, toVersionId: string, results: HostResult[]): Promise<void> {
    await this.updateLast(secretId, toVersionId, (record) => ({ ...record, hosts: mergeHostResults(record.hosts, results) }));
  }

  async markRetired(secretId: string, toVersionId: string, retiredAt: string): Promise<void> {
    await this.updateLast(secretId, toVersionId, (record) => ({ ...record, replacedRunnerRetiredAt: retiredAt }));
  }

  /** Rewrites LAST while it still records `toVersionId` and nobody wrote it since we read it (see the class comment). */
  private async updateLast(secretId: string, toVersionId: string, change: (record: RotationRecord) => RotationRecord): Promise<void> {
    for (let attempt = 1; attempt <= UPDATE_ATTEMPTS; attempt += 1) {
      const item = await this.get(secretId, LEDGER_LAST_SORT_KEY);
      if (item?.toVersionId !== toVersionId) return;
      const record = recordAttributes(item as unknown as RotationRecord);
      const revision = typeof item.revision === 'number' ? item.revision : 0;
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { pk: ledgerPartitionKey(secretId), sk: LEDGER_LAST_SORT_KEY, ...change(record), revision: revision + 1 },
            ConditionExpression: '#to = :to AND (attribute_not_exists(#revision) OR #revision = :revision)',
            ExpressionAttributeNames: { '#to': 'toVersionId', '#revision': 'revision' },
            ExpressionAttributeValues: { ':to': toVersionId, ':revision': revision },
          }),
        );
        return;
      } catch (error) {
        if (!isConditionFailed(error)) throw error;
      }
    }
  }

  async requestReplacement(secretId: string, requestedAt: string): Promise<void> {
    await this.doc.send(new PutCommand({ TableName: this.tableName, Item: { ...replaceRequestKey(secretId), requestedAt } }));
  }

  async replacementRequested(secretId: string): Promise<string | undefined> {
    const reply = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: replaceRequestKey(secretId), ConsistentRead: true }));
    return typeof reply.Item?.requestedAt === 'string' ? reply.Item.requestedAt : undefined;
  }

  async withdrawReplacement(secretId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: replaceRequestKey(secretId) }));
  }

  private async get(secretId: string, sk: string): Promise<Record<string, unknown> | undefined> {
    const reply = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: ledgerPartitionKey(secretId), sk }, ConsistentRead: true }),
    );
    return reply.Item;
  }
}

/**
 * A replacement request is keyed by the secret's name, not the id it was given: the CLI knows names from
 * the fleet file, the rotation hook gets ARNs from Secrets Manager, and both must find the same item.
 */
function replaceRequestKey(secretId: string): { pk: string; sk: string } {
  return { pk: ledgerPartitionKey(secretNameFromId(secretId)), sk: LEDGER_REPLACE_SORT_KEY };
}

/** Exactly the PendingRotation fields: keys, TTL and anything else on the item stay behind. */
function pendingAttributes(p: PendingRotation): PendingRotation {
  return {
    secretId: p.secretId,
    versionId: p.versionId,
    fromVersionId: p.fromVersionId ?? null,
    resetAt: p.resetAt,
    storedAt: p.storedAt,
    hosts: (p.hosts ?? []).map(hostAttributes),
    ...replaceAttributes(p),
  };
}

/** The replace strategy's fields, only where set (records of `reset` rotations look as before). */
function replaceAttributes(r: Pick<RotationRecord, 'strategy' | 'replacedRunnerId' | 'replacedRunnerRetiredAt'>): Pick<RotationRecord, 'strategy' | 'replacedRunnerId' | 'replacedRunnerRetiredAt'> {
  return {
    ...(r.strategy === undefined ? {} : { strategy: r.strategy }),
    ...(r.replacedRunnerId === undefined ? {} : { replacedRunnerId: r.replacedRunnerId }),
    ...(r.replacedRunnerRetiredAt === undefined ? {} : { replacedRunnerRetiredAt: r.replacedRunnerRetiredAt }),
  };
}

function recordAttributes(r: RotationRecord): RotationRecord {
  return {
    secretId: r.secretId,
    runnerId: r.runnerId,
    fromVersionId: r.fromVersionId ?? null,
    toVersionId: r.toVersionId,
    resetAt: r.resetAt,
    storedAt: r.storedAt,
    promotedAt: r.promotedAt,
    tokenExpiresAt: r.tokenExpiresAt ?? null,
    hosts: (r.hosts ?? []).map(hostAttributes),
    ...replaceAttributes(r),
  };
}

function hostAttributes(h: HostResult): HostResult {
  return { host: h.host, status: h.status, systemId: h.systemId ?? null, detail: h.detail, finishedAt: h.finishedAt };
}
