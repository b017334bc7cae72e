import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import pLimit from 'p-limit';
import { MANAGED_SECRET_TAG_KEY, runnerForSecret } from '../src/config/aws-fleet-config.ts';
import { readLambdaEnvironment } from '../src/config/lambda-environment.ts';
import { alertAfterScan } from '../src/core/alerting.ts';
import { scanRunner, type RunnerScanResult } from '../src/core/scan-runner.ts';
import { createAwsClients, createAwsEngine, type AwsEngine } from '../src/engines/aws-engine.ts';
import { addHostMetrics, alertSafely, defaultTelemetry, logRotationEvents, withTelemetry, type Telemetry } from '../src/engines/rotation-log.ts';

const SAFETY_MARGIN_MS = 30_000;

/**
 * The scheduled scan: for every secret tagged as managed, rotate when due (RotateSecret), re-push the
 * current token to hosts that missed the last rotation, and emit DaysToExpiry per runner.
 */
export function createHandler(engine: () => AwsEngine, telemetry: Telemetry) {
  const { logger, metrics } = telemetry;
  return withTelemetry(async (_event: unknown, context: Context): Promise<RunnerScanResult[]> => {
    const aws = engine();
    const deadline = new Date(aws.clock.now().getTime() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS);
    const deps = aws.scanDeps(deadline, logRotationEvents(logger));
    const intervalMs = aws.env.fleet.scanEveryHours * 3_600_000;
    const secrets = await aws.store.listManagedSecrets(MANAGED_SECRET_TAG_KEY);
    const listed = new Set(secrets.map((s) => s.name));
    for (const runner of aws.env.fleet.runners.filter((r) => !listed.has(r.secretId))) {
      logger.warn('runner in the fleet config has no managed secret: deploy the stack', { runner: runner.name, secretName: runner.secretId });
    }
    // Runners at once (fleet file `scanConcurrency`): each is at most one GitLab call, plus one secret value and two ledger reads.
    const limit = pLimit(aws.env.fleet.scanConcurrency);
    const scanned = await Promise.all(
      secrets.map((secret) =>
        limit(async () => {
          const runner = runnerForSecret(aws.env.fleet, secret.arn);
          if (!runner) {
            logger.warn('managed secret is not in the fleet config', { secretName: secret.name });
            return undefined;
          }
          try {
            const result = await scanRunner(deps, runner, secret.arn, intervalMs, { secretId: secret.arn, rotationEnabled: secret.rotationEnabled, versions: secret.versions });
            const days = result.plan?.decision.daysLeft;
            if (days !== undefined && days !== null) {
              metrics.singleMetric().addDimensions({ runner: runner.name }).addMetric('DaysToExpiry', MetricUnit.Count, Math.floor(days * 10) / 10);
            }
            if (result.repushed.length > 0) addHostMetrics(metrics, result.repushed);
            for (const warning of result.warnings) logger.warn(warning, { runner: runner.name });
            if (aws.alerts) await alertSafely(logger, `scan ${runner.name}`, () => alertAfterScan(aws.alerts!, runner, result, aws.env.fleet.alerts.nearExpiryDays, aws.env.logUrl));
            logger.info('runner scanned', { runner: runner.name, due: result.plan?.decision.due, reason: result.plan?.decision.reason, rotationStarted: result.rotationStarted, repushed: result.repushed });
            return result;
          } catch (error) {
            logger.error('scan of runner failed', { runner: runner.name, error: error as Error });
            return undefined;
          }
        }),
      ),
    );
    const results = scanned.filter((r): r is RunnerScanResult => r !== undefined);
    metrics.addMetric('RotationsStarted', MetricUnit.Count, results.filter((r) => r.rotationStarted).length);
    logger.info('scan finished', { runners: secrets.length, rotationsStarted: results.filter((r) => r.rotationStarted).length });
    return results;
  }, telemetry);
}

let engine: AwsEngine | undefined;
export const handler = createHandler(() => (engine ??= createAwsEngine(readLambdaEnvironment(), createAwsClients())), defaultTelemetry());
