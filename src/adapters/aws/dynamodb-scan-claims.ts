import { PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed, ledgerPartitionKey } from './dynamodb-ledger.ts';

/** The ledger table's item that says which scan last took a runner (dynamodb-ledger.ts lists the key layout). */
export const LEDGER_SCAN_SORT_KEY = 'SCAN';

/**
 * Which scan scans a runner, so that overlapping scans and SQS's duplicate deliveries ("at-least-once
 * delivery: on rare occasions, one of the servers that stores a copy of a message might be unavailable when
 * you receive or delete a message… you might get that message copy again", Amazon SQS Developer Guide,
 * Standard queues) scan each runner once. Before a worker scans a runner it claims it: a PutItem on
 * `SECRET#<secretId>` / `SCAN` that succeeds when
 * - no scan took the runner since `notBefore` (half a scan interval ago), or
 * - the claim is this scan's own and was handed on (`deferred`: the runner goes to a later invocation), or
 *   its lease ran out (the worker that held it died: a Lambda timeout, a crash).
 * A claim of this scan still held by a live worker is refused like another scan's: a second copy of one
 * message (a duplicate delivery, a dispatcher retried with the same request id) finds the runner taken and
 * leaves it alone, rather than starting a second RotateSecret that would be refused and read as stuck.
 */
export class DynamoDbScanClaims {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Claims the runner for `scanId` until `leaseUntil` (the invocation's end); false when another claim holds it. */
  async claim(secretId: string, scanId: string, now: Date, notBefore: Date, leaseUntil: Date): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: ledgerPartitionKey(secretId),
            sk: LEDGER_SCAN_SORT_KEY,
            scanId,
            state: 'scanning',
            scannedAt: now.toISOString(),
            leaseUntil: leaseUntil.toISOString(),
            // Kept two days past the claim (TTL, epoch seconds): a claim only matters within one scan interval (≤ 24 h).
            expiresAt: Math.ceil(now.getTime() / 1000) + 2 * 86_400,
          },
          ConditionExpression: 'attribute_not_exists(#pk) OR #scannedAt < :notBefore OR (#scanId = :scanId AND (#state = :deferred OR #leaseUntil < :now))',
          ExpressionAttributeNames: { '#pk': 'pk', '#scannedAt': 'scannedAt', '#scanId': 'scanId', '#state': 'state', '#leaseUntil': 'leaseUntil' },
          ExpressionAttributeValues: { ':notBefore': notBefore.toISOString(), ':scanId': scanId, ':deferred': 'deferred', ':now': now.toISOString() },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  /** The runner is handed on to a later invocation of the same scan: that one may claim it again. */
  async defer(secretId: string, scanId: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: ledgerPartitionKey(secretId), sk: LEDGER_SCAN_SORT_KEY },
          UpdateExpression: 'SET #state = :deferred',
          ConditionExpression: '#scanId = :scanId',
          ExpressionAttributeNames: { '#state': 'state', '#scanId': 'scanId' },
          ExpressionAttributeValues: { ':deferred': 'deferred', ':scanId': scanId },
        }),
      );
    } catch (error) {
      // Another scan claimed it since (ours is older than half an interval): it is that scan's now.
      if (!isConditionFailed(error)) throw error;
    }
  }
}
