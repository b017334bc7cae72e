import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ledgerPartitionKey } from './dynamodb-ledger.ts';

/** The ledger table's item that says which scan last took a runner (dynamodb-ledger.ts lists the key layout). */
export const LEDGER_SCAN_SORT_KEY = 'SCAN';

/**
 * Which scan scans a runner, so that overlapping scans and SQS's duplicate deliveries ("at-least-once
 * delivery": a standard queue may deliver a message more than once, Amazon SQS Developer Guide) scan each
 * runner once. Before a worker scans a runner it claims it for its scan: a PutItem on
 * `SECRET#<secretId>` / `SCAN` that succeeds when no scan took the runner since `notBefore`, or when the
 * claim is this scan's own (a batch handed on to a later invocation, a redelivered message). Another scan's
 * recent claim → false: the runner was just scanned, or is being scanned now.
 */
export class DynamoDbScanClaims {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async claim(secretId: string, scanId: string, now: Date, notBefore: Date): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: ledgerPartitionKey(secretId),
            sk: LEDGER_SCAN_SORT_KEY,
            scanId,
            scannedAt: now.toISOString(),
            // Kept a day past the claim (TTL, epoch seconds): the claim only matters within one scan interval (≤ 24 h).
            expiresAt: Math.ceil(now.getTime() / 1000) + 2 * 86_400,
          },
          ConditionExpression: 'attribute_not_exists(#pk) OR #scannedAt < :notBefore OR #scanId = :scanId',
          ExpressionAttributeNames: { '#pk': 'pk', '#scannedAt': 'scannedAt', '#scanId': 'scanId' },
          ExpressionAttributeValues: { ':notBefore': notBefore.toISOString(), ':scanId': scanId },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
