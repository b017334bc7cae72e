import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { readLambdaEnvironment } from '../src/config/lambda-environment.ts';
import { createAwsClients, createAwsEngine, type AwsEngine } from '../src/engines/aws-engine.ts';
import { defaultTelemetry, withTelemetry, type Telemetry } from '../src/engines/rotation-log.ts';
import { parseScanBatch, scanBatch, type ScanBatchMessage } from '../src/engines/scan-fanout.ts';

const SAFETY_MARGIN_MS = 30_000;

/**
 * The scan's worker (SQS event source, one message per invocation, at most `scanWorkers` at once): scans
 * one batch of runners (scan-fanout.ts scanBatch) and hands on, in a new message of the same scan, the
 * runners it could not reach before its deadline or GitLab's shared budget (delayed until the budget has
 * room, at most 15 minutes). A message that is not one the dispatcher writes is logged and dropped; one
 * whose scan threw is reported failed (ReportBatchItemFailures), so SQS delivers it again and, after
 * five receives (lib/constructs/scan-queue.ts), moves it to the dead-letter queue, whose alarm alerts.
 */
export function createHandler(engine: () => AwsEngine, telemetry: Telemetry) {
  const { logger } = telemetry;
  return withTelemetry(async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const aws = engine();
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      const deadline = new Date(aws.clock.now().getTime() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS);
      let batch;
      try {
        batch = parseScanBatch(record.body, `scan message ${record.messageId}`);
      } catch (error) {
        // Only a body that is not ours is dropped: anything else below fails the message, so SQS delivers it again.
        logger.error('scan message dropped: not one the scan dispatcher writes', { messageId: record.messageId, error: error as Error });
        continue;
      }
      try {
        const outcome = await scanBatch(aws, batch, deadline, telemetry);
        const { secretIds, notBeforeMs } = outcome.deferred;
        if (secretIds.length > 0) {
          if (!aws.scanQueue) throw new Error('SCAN_QUEUE_URL is not set: the stack gives the scan worker its queue');
          const delaySeconds = Math.max(0, notBeforeMs - aws.clock.now().getTime()) / 1000;
          await aws.scanQueue.send(JSON.stringify({ scanId: batch.scanId, secretIds } satisfies ScanBatchMessage), delaySeconds);
        }
        logger.info('scan batch finished', { scanId: batch.scanId, ...outcome.summary, skipped: outcome.skipped.length, deferred: secretIds.length });
      } catch (error) {
        logger.error('scan batch failed: SQS delivers it again', { messageId: record.messageId, error: error as Error });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  }, telemetry);
}

let engine: AwsEngine | undefined;
export const handler = createHandler(
  () => (engine ??= createAwsEngine(readLambdaEnvironment(), createAwsClients(), undefined, { sharedGitLabBudget: true })),
  defaultTelemetry(),
);
