import { InvalidInputError } from '../core/errors.ts';
import { parseAwsFleetConfig, type AwsFleetConfig } from './aws-fleet-config.ts';

/**
 * What the Lambdas read at start, in one place. The fleet file's text is compiled into each bundle by
 * esbuild (`define` of `process.env.ROTATOR_FLEET_JSON` in the CDK stack): a fleet of 100 runners does not
 * fit in Lambda's 4 KB of environment variables. The rest are plain environment variables.
 */
export interface LambdaEnvironment {
  fleet: AwsFleetConfig;
  /** DynamoDB table of rotation state: pending rotations, per-host results, history, alert de-duplication. */
  ledgerTableName: string;
  /** The SSM Command document that runs the host updater. */
  hostDocumentName: string;
  /** SNS topic for alerts (optional until alerts are deployed). */
  alertTopicArn: string | undefined;
}

export const LAMBDA_ENVIRONMENT_NAMES = {
  fleetJson: 'ROTATOR_FLEET_JSON',
  ledgerTableName: 'LEDGER_TABLE_NAME',
  hostDocumentName: 'HOST_DOCUMENT_NAME',
  alertTopicArn: 'ALERT_TOPIC_ARN',
} as const;

export function readLambdaEnvironment(env: Record<string, string | undefined> = processEnvironment()): LambdaEnvironment {
  const required = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') throw new InvalidInputError(`environment variable ${name}`, 'is not set (the stack sets it)');
    return value;
  };
  return {
    fleet: parseAwsFleetConfig(required(LAMBDA_ENVIRONMENT_NAMES.fleetJson), LAMBDA_ENVIRONMENT_NAMES.fleetJson),
    ledgerTableName: required(LAMBDA_ENVIRONMENT_NAMES.ledgerTableName),
    hostDocumentName: required(LAMBDA_ENVIRONMENT_NAMES.hostDocumentName),
    alertTopicArn: env[LAMBDA_ENVIRONMENT_NAMES.alertTopicArn] || undefined,
  };
}

/** process.env, with the fleet text esbuild compiled in (the literal expression is what `define` replaces). */
function processEnvironment(): Record<string, string | undefined> {
  return { ...process.env, ROTATOR_FLEET_JSON: process.env.ROTATOR_FLEET_JSON };
}
