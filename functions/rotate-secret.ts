import type { Context } from 'aws-lambda';
import { readLambdaEnvironment } from '../src/config/lambda-environment.ts';
import { alertAfterRotationStep } from '../src/core/alerting.ts';
import { parseRotationEvent } from '../src/core/rotation-event.ts';
import { runRotationStep, type StepOutcome } from '../src/core/rotation-steps.ts';
import { createAwsClients, createAwsEngine, type AwsEngine } from '../src/engines/aws-engine.ts';
import { addHostMetrics, alertSafely, defaultTelemetry, logFinishedRotation, logRotationEvents, withTelemetry, type Telemetry } from '../src/engines/rotation-log.ts';

/** Time kept back from the Lambda's deadline to store, record and log before it is killed. */
const SAFETY_MARGIN_MS = 20_000;

/**
 * The Secrets Manager rotation hook: {Step, SecretId, ClientRequestToken} → the core's step. The template's
 * guards, the reset, the store, the push and the promotion all live in src/core/rotation-steps.ts. The
 * runner is the secret's tags (DescribeSecret, once per invocation): tags that make no runner fail the step.
 */
export function createHandler(engine: () => AwsEngine, telemetry: Telemetry) {
  const { logger, metrics } = telemetry;
  return withTelemetry(async (event: unknown, context: Context): Promise<StepOutcome> => {
    const request = parseRotationEvent(event);
    logger.appendKeys({ secretId: request.secretId, step: request.step, versionId: request.versionId });
    const aws = engine();
    const deadline = new Date(aws.clock.now().getTime() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS);
    // The secret name without the prefix until the tags are read; then the runner tag.
    let runnerName = aws.runnerName(request.secretId);
    const alert = (result: { outcome: StepOutcome } | { error: unknown }) =>
      aws.alerts && alertSafely(logger, request.step, () => alertAfterRotationStep(aws.alerts!, runnerName, request.secretId, result, { logUrl: aws.env.logUrl }));
    try {
      const found = await aws.runnerOf(request.secretId);
      runnerName = found.name;
      logger.appendKeys({ runner: runnerName });
      if ('error' in found) throw found.error;
      const outcome = await runRotationStep(aws.rotationDeps(deadline, logRotationEvents(logger), found.runner), { ...request, deadline });
      if (outcome.record) logFinishedRotation(logger, metrics, outcome.record);
      else if (outcome.hosts && request.step === 'setSecret') addHostMetrics(metrics, outcome.hosts);
      await alert({ outcome });
      return outcome;
    } catch (error) {
      logger.error('rotation step failed', { error: error as Error, fix: (error as { fix?: string }).fix });
      await alert({ error });
      throw error;
    }
  }, telemetry);
}

let engine: AwsEngine | undefined;

/** Clients are built once per container, at the first invocation. */
export const handler = createHandler(() => (engine ??= createAwsEngine(readLambdaEnvironment(), createAwsClients())), defaultTelemetry());
