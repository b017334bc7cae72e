import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import pLimit from 'p-limit';
import * as z from 'zod/mini';
import { parseJsonWith } from '../config/config-schema.ts';
import { alertAfterScan } from '../core/alerting.ts';
import { RateBudgetDeferredError } from '../core/errors.ts';
import { scanRunner, type RunnerScanResult } from '../core/scan-runner.ts';
import type { AwsEngine } from './aws-engine.ts';
import { summarizeScan, type FleetScanSummary } from './fleet-metrics.ts';
import { addHostMetrics, addRunnerDaysToExpiry, addScanMetrics, alertSafely, logRotationEvents } from './rotation-log.ts';

/**
 * The scan fans out over SQS (functions/scan-expiry.ts lists, functions/scan-runners.ts scans): each
 * message names one scan and up to `scanBatchSize` secrets, by ARN. Only ARNs travel: a worker reads each
 * secret's tags and versions itself (DescribeSecret: 40,000 requests a second since March 2025, AWS What's
 * New 2025-03-04 "AWS Secrets Manager increases API requests per second limits"), so a message
 * that waited in the queue never makes a worker act on an old listing.
 */
export interface ScanBatchMessage {
  /** The scan this batch belongs to (the dispatcher's request id): claims are per scan. */
  scanId: string;
  secretIds: string[];
}

const scanBatchSchema = z.strictObject({
  scanId: z.string().check(z.minLength(1), z.maxLength(200)),
  secretIds: z.array(z.string().check(z.minLength(1), z.maxLength(2048))).check(z.minLength(1), z.maxLength(100)),
});

/** A message body from the scan queue; InvalidInputError naming the field when it is not one the dispatcher writes. */
export function parseScanBatch(body: string, where: string): ScanBatchMessage {
  return parseJsonWith(scanBatchSchema, body, where);
}

/** The message bodies of one scan: the secrets in batches of `batchSize`, in listing order. */
export function scanBatchBodies(scanId: string, secretIds: string[], batchSize: number): string[] {
  const bodies: string[] = [];
  for (let start = 0; start < secretIds.length; start += batchSize) {
    bodies.push(JSON.stringify({ scanId, secretIds: secretIds.slice(start, start + batchSize) } satisfies ScanBatchMessage));
  }
  return bodies;
}

/** What one worker invocation did with one batch. */
export interface BatchScanOutcome {
  summary: FleetScanSummary;
  /** Held by another claim: another scan less than half a scan interval ago, or another copy of this message (a duplicate delivery). Left alone. */
  skipped: string[];
  /** Not scanned in this invocation (its deadline, or GitLab's shared budget before it): handed on, with the earliest useful time. */
  deferred: { secretIds: string[]; notBeforeMs: number };
}

/**
 * A runner is started only while this much of the invocation is left (15 s): reading it, one GitLab call and a
 * RotateSecret fit easily; a re-push that outlives the deadline is reported as missed and repaired later.
 */
export const RUNNER_RESERVE_MS = 15_000;

/**
 * Scans one batch: per secret, claim it for this scan (DynamoDbScanClaims), read its runner from its tags
 * and its versions (one DescribeSecret), scanRunner, alert, log its line. One runner's failure never stops
 * the others; a runner that could not start before the deadline, or whose GitLab call found no room in the
 * shared budget before it (RateBudgetDeferredError, nothing sent), is deferred, not failed: its claim is
 * marked handed on, and once the budget has deferred one runner the rest of the batch is handed on at once
 * (they would only read their secrets to be deferred in turn).
 */
export async function scanBatch(aws: AwsEngine, batch: ScanBatchMessage, deadline: Date, telemetry: { logger: Logger; metrics: Metrics }): Promise<BatchScanOutcome> {
  const { logger, metrics } = telemetry;
  const deps = aws.scanDeps(deadline, logRotationEvents(logger));
  const { scanEveryHours, scanConcurrency, alerts } = aws.env.fleet;
  const intervalMs = scanEveryHours * 3_600_000;
  const limit = pLimit(scanConcurrency);
  const skipped: string[] = [];
  const deferred: string[] = [];
  let notBeforeMs = 0;
  let failures = 0;
  let budgetDeferred = false;
  const results: RunnerScanResult[] = [];

  await Promise.all(
    batch.secretIds.map((secretId) =>
      limit(async () => {
        const now = aws.clock.now();
        if (budgetDeferred || now.getTime() > deadline.getTime() - RUNNER_RESERVE_MS) {
          deferred.push(secretId);
          return;
        }
        let name = aws.runnerName(secretId);
        try {
          // The lease ends with the invocation: a claim of a worker that died is this scan's to take again.
          if (!(await aws.claims.claim(secretId, batch.scanId, now, new Date(now.getTime() - intervalMs / 2), deadline))) {
            skipped.push(secretId);
            return;
          }
          // Inside the try: whatever reading one secret's tags throws is that runner's failure, never the batch's.
          const secret = await aws.store.describeManaged(secretId);
          const found = aws.runnerOfListed(secret);
          name = found.name;
          if ('error' in found) throw found.error;
          const runner = found.runner;
          const result = await scanRunner(deps, runner, secret.arn, intervalMs, { secretId: secret.arn, rotationEnabled: secret.rotationEnabled, versions: secret.versions });
          if (result.repushed.length > 0) addHostMetrics(metrics, result.repushed);
          for (const warning of result.warnings) logger.warn(warning, { runner: runner.name });
          if (aws.alerts) await alertSafely(logger, `scan ${runner.name}`, () => alertAfterScan(aws.alerts!, runner, result, alerts.nearExpiryDays, aws.env.logUrl));
          const decision = result.plan?.decision;
          const daysLeft = typeof decision?.daysLeft === 'number' ? Math.floor(decision.daysLeft * 100) / 100 : decision?.daysLeft;
          logger.info('runner scanned', { runner: runner.name, daysLeft, due: decision?.due, reason: decision?.reason, rotationStarted: result.rotationStarted, repushed: result.repushed });
          if (aws.env.fleet.metrics.perRunnerDaysToExpiry && typeof daysLeft === 'number') addRunnerDaysToExpiry(metrics, runner.name, daysLeft);
          results.push(result);
        } catch (error) {
          if (error instanceof RateBudgetDeferredError) {
            budgetDeferred = true;
            deferred.push(secretId);
            notBeforeMs = Math.max(notBeforeMs, error.nextSlotAtMs);
            await aws.claims.defer(secretId, batch.scanId);
            return;
          }
          failures += 1;
          logger.error('scan of runner failed', { runner: name, secretId, error: error as Error });
        }
      }),
    ),
  );
  const summary = summarizeScan(results, failures, alerts.nearExpiryDays);
  if (summary.runnersScanned > 0) addScanMetrics(metrics, summary);
  return { summary, skipped, deferred: { secretIds: deferred, notBeforeMs } };
}
