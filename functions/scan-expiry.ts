import type { Context } from 'aws-lambda';
import { MANAGED_SECRET_TAG_KEY } from '../src/config/aws-fleet-config.ts';
import { readLambdaEnvironment } from '../src/config/lambda-environment.ts';
import { createAwsClients, createAwsEngine, type AwsEngine } from '../src/engines/aws-engine.ts';
import { defaultTelemetry, withTelemetry, type Telemetry } from '../src/engines/rotation-log.ts';
import { scanBatchBodies } from '../src/engines/scan-fanout.ts';

export interface ScanDispatched {
  scanId: string;
  runners: number;
  messages: number;
}

/**
 * The scheduled scan's first half: list every secret of the fleet's prefix tagged as managed (ListSecrets,
 * 100 a page, tags included) whose rotation is on, and queue them for the scan workers (functions/scan-runners.ts) in batches of the fleet's
 * `scanBatchSize`, ten messages a SendMessageBatch. It calls neither GitLab nor the hosts, so 10,000
 * runners take a hundred ListSecrets pages and a hundred SendMessageBatch calls, well inside its timeout.
 */
export function createHandler(engine: () => AwsEngine, telemetry: Telemetry) {
  const { logger } = telemetry;
  return withTelemetry(async (_event: unknown, context: Context): Promise<ScanDispatched> => {
    const aws = engine();
    if (!aws.scanQueue) throw new Error('SCAN_QUEUE_URL is not set: the stack gives the scanner its queue');
    const listed = await aws.store.listManagedSecrets(MANAGED_SECRET_TAG_KEY, aws.env.fleet.secretPrefix);
    // Rotation off: no schedule of this stack rotates it (turned off by hand, or its runner left the fleet
    // and the secret was kept): not the scan's to rotate or push. Named, so that it is not forgotten.
    const secrets = listed.filter((s) => s.rotationEnabled);
    const notRotated = listed.filter((s) => !s.rotationEnabled).map((s) => s.name);
    if (notRotated.length > 0) logger.warn('managed secrets with rotation off are not scanned', { secrets: notRotated });
    const scanId = context.awsRequestId;
    const bodies = scanBatchBodies(scanId, secrets.map((s) => s.arn), aws.env.fleet.scanBatchSize);
    await aws.scanQueue.sendAll(bodies);
    logger.info('scan dispatched', { scanId, runners: secrets.length, messages: bodies.length, notRotated: notRotated.length });
    return { scanId, runners: secrets.length, messages: bodies.length };
  }, telemetry);
}

let engine: AwsEngine | undefined;
export const handler = createHandler(() => (engine ??= createAwsEngine(readLambdaEnvironment(), createAwsClients())), defaultTelemetry());
