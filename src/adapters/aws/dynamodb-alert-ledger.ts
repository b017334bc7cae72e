import { DeleteCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AlertKind } from '../../core/alerts.ts';
import type { AlertLedger, AlertState } from '../../core/ports.ts';
import { alertStateExpiry } from '../local/file-alert-ledger.ts';
import { LEDGER_ALERT_PREFIX, LEDGER_TTL_ATTRIBUTE, ledgerPartitionKey } from './dynamodb-ledger.ts';

export const ledgerAlertSortKey = (alertId: string): string => `${LEDGER_ALERT_PREFIX}${alertId}`;

/**
 * Alert de-duplication state in the ledger table (see dynamodb-ledger.ts for the layout): one item per open
 * condition, `pk = SECRET#<secretId>`, `sk = ALERT#<alertId>`, the AlertState fields as plain attributes and
 * the TTL `expiresAt` ALERT_STATE_TTL_DAYS (30) after `lastSent`. A condition that persists is reminded at least daily, so
 * its item never expires while open; one nobody clears (its secret deleted) goes away by itself.
 *
 * DynamoDB deletes expired items within a few days, not at once ("Using time to live", DynamoDB developer
 * guide): reads treat an item past its `expiresAt` as absent, as the file ledger does. Reads are strongly
 * consistent, like the rotation ledger's: a scan and a rotation may raise alerts for the same secret.
 */
export class DynamoDbAlertLedger implements AlertLedger {
  private readonly now: () => Date;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: { now?: () => Date } = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  async alertState(secretId: string, alertId: string): Promise<AlertState | undefined> {
    const reply = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: ledgerPartitionKey(secretId), sk: ledgerAlertSortKey(alertId) }, ConsistentRead: true }),
    );
    return reply.Item && this.live(reply.Item) ? stateAttributes(reply.Item) : undefined;
  }

  async saveAlertState(secretId: string, alertId: string, state: AlertState): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: ledgerPartitionKey(secretId),
          sk: ledgerAlertSortKey(alertId),
          [LEDGER_TTL_ATTRIBUTE]: Math.floor(alertStateExpiry(state, `alert ${alertId} of ${secretId}`) / 1000),
          ...stateAttributes(state),
        },
      }),
    );
  }

  async clearAlertState(secretId: string, alertId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: ledgerPartitionKey(secretId), sk: ledgerAlertSortKey(alertId) } }));
  }

  async openAlerts(secretId: string): Promise<Array<{ alertId: string; state: AlertState }>> {
    const open: Array<{ alertId: string; state: AlertState }> = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
          ExpressionAttributeValues: { ':pk': ledgerPartitionKey(secretId), ':prefix': LEDGER_ALERT_PREFIX },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        if (this.live(item)) open.push({ alertId: String(item.sk).slice(LEDGER_ALERT_PREFIX.length), state: stateAttributes(item) });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return open;
  }

  private live(item: Record<string, unknown>): boolean {
    const expiresAt = item[LEDGER_TTL_ATTRIBUTE];
    return typeof expiresAt !== 'number' || expiresAt * 1000 > this.now().getTime();
  }
}

/** Exactly the AlertState fields: keys, TTL and anything else on the item stay behind. */
function stateAttributes(s: Record<string, unknown> | AlertState): AlertState {
  const item = s as AlertState;
  return { kind: item.kind as AlertKind, runner: item.runner, fingerprint: item.fingerprint, firstSeen: item.firstSeen, lastSent: item.lastSent };
}
