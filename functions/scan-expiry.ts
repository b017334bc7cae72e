import type { Context } from 'aws-lambda';
import pLimit from 'p-limit';
import { MANAGED_SECRET_TAG_KEY } from '../src/config/aws-fleet-config.ts';
import { readLambdaEnvironment } from '../src/config/lambda-environment.ts';
import { alertAfterScan } from '../src/core/alerting.ts';
import { scanRunner, type RunnerScanResult } from '../src/core/scan-runner.ts';
import { createAwsClients, createAwsEngine, type AwsEngine } from '../src/engines/aws-engine.ts';
import { summarizeScan } from '../src/engines/fleet-metrics.ts';
import { addHostMetrics, addScanMetrics, alertSafely, defaultTelemetry, logRotationEvents, withTelemetry, type Telemetry } from '../src/engines/rotation-log.ts';

const SAFETY_MARGIN_MS = 30_000;

/**
 * The scheduled scan: for every secret tagged as managed, read its runner from its tags (ListSecrets returns
 * them), rotate when due (RotateSecret), re-push the current token to hosts that missed the last rotation,
 * and emit the fleet's metrics once (fleet-metrics.ts: no per-runner dimension). A runner's days to expiry
 * are in its "runner scanned" log line. One runner's bad tags or failed scan never stops the others.
 */
export function createHandler(engine: () => AwsEngine, telemetry: Telemetry) {
  const { logger, metrics } = telemetry;
  return withTelemetry(async (_event: unknown, context: Context): Promise<RunnerScanResult[]> => {
    const aws = engine();
    const deadline = new Date(aws.clock.now().getTime() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS);
    const deps = aws.scanDeps(deadline, logRotationEvents(logger));
    const { scanEveryHours, scanConcurrency, alerts } = aws.env.fleet;
    const secrets = await aws.store.listManagedSecrets(MANAGED_SECRET_TAG_KEY);
    // Runners at once (fleet file `scanConcurrency`): each is at most one GitLab call, plus one secret value and two ledger reads.
    const limit = pLimit(scanConcurrency);
    const scanned = await Promise.all(
      secrets.map((secret) =>
        limit(async () => {
          let name = secret.name;
          try {
            // Inside the try: whatever reading one secret's tags throws is that runner's failure, never the scan's.
            const found = aws.runnerOfListed(secret);
            name = found.name;
            if ('error' in found) throw found.error;
            const runner = found.runner;
            const result = await scanRunner(deps, runner, secret.arn, scanEveryHours * 3_600_000, { secretId: secret.arn, rotationEnabled: secret.rotationEnabled, versions: secret.versions });
            if (result.repushed.length > 0) addHostMetrics(metrics, result.repushed);
            for (const warning of result.warnings) logger.warn(warning, { runner: runner.name });
            if (aws.alerts) await alertSafely(logger, `scan ${runner.name}`, () => alertAfterScan(aws.alerts!, runner, result, alerts.nearExpiryDays, aws.env.logUrl));
            const decision = result.plan?.decision;
            const daysLeft = typeof decision?.daysLeft === 'number' ? Math.floor(decision.daysLeft * 100) / 100 : decision?.daysLeft;
            logger.info('runner scanned', { runner: runner.name, daysLeft, due: decision?.due, reason: decision?.reason, rotationStarted: result.rotationStarted, repushed: result.repushed });
            return result;
          } catch (error) {
            logger.error('scan of runner failed', { runner: name, secretName: secret.name, error: error as Error });
            return undefined;
          }
        }),
      ),
    );
    const results = scanned.filter((r): r is RunnerScanResult => r !== undefined);
    const summary = summarizeScan(results, scanned.length - results.length, alerts.nearExpiryDays);
    addScanMetrics(metrics, summary);
    logger.info('scan finished', { runners: secrets.length, ...summary });
    return results;
  }, telemetry);
}

let engine: AwsEngine | undefined;
export const handler = createHandler(() => (engine ??= createAwsEngine(readLambdaEnvironment(), createAwsClients())), defaultTelemetry());
