import { InvalidInputError } from '../core/errors.ts';
import { parseAwsFleetSettings, type AwsFleetSettings } from './aws-fleet-config.ts';

/**
 * What the Lambdas read at start, in one place, from plain environment variables. No bundle holds the
 * fleet: the fleet-wide settings (the fleet file without its runners, fleetSettingsText) travel in
 * ROTATOR_SETTINGS_JSON, and each runner is read from its secret's tags (runner-tags.ts) when it is needed.
 */
export interface LambdaEnvironment {
  /** The fleet file's settings (prefix, scan cadence, SSM limits, admin token secrets, alerts); no runners. */
  fleet: AwsFleetSettings;
  /** DynamoDB table of rotation state: pending rotations, per-host results, history, alert de-duplication. */
  ledgerTableName: string;
  /** The SSM Command document that runs the host updater. */
  hostDocumentName: string;
  /** SNS topic for alerts (optional until alerts are deployed). */
  alertTopicArn: string | undefined;
  /** The scan's SQS queue: the dispatcher sends batches to it, a worker hands on what it could not scan. */
  scanQueueUrl: string | undefined;
  /**
   * URL of docs/operations.md (the runbook) in the deployment's copy of the repository; alerts link to
   * `<url>#runbook-<kind>`. Unset: `docs/operations.md#runbook-<kind>` as text.
   */
  readmeUrl: string | undefined;
  /** CloudWatch console link to this function's own log group (Lambda sets AWS_LAMBDA_LOG_GROUP_NAME). */
  logUrl: string | undefined;
}

export const LAMBDA_ENVIRONMENT_NAMES = {
  settingsJson: 'ROTATOR_SETTINGS_JSON',
  ledgerTableName: 'LEDGER_TABLE_NAME',
  hostDocumentName: 'HOST_DOCUMENT_NAME',
  alertTopicArn: 'ALERT_TOPIC_ARN',
  scanQueueUrl: 'SCAN_QUEUE_URL',
  slackWebhookSecret: 'SLACK_WEBHOOK_SECRET',
  /** Not set by the stack: a deployment that wants clickable runbook links sets it (docs/operations.md, Setting alerts up). */
  readmeUrl: 'RUNBOOK_URL',
  rotationLogGroup: 'ROTATION_LOG_GROUP',
  region: 'AWS_REGION',
  ownLogGroup: 'AWS_LAMBDA_LOG_GROUP_NAME',
} as const;

/** What functions/notify.ts reads at start: it needs no SSM document, and it cannot work without the topic. */
export interface NotifyEnvironment {
  /** The fleet's settings: the notifier names a runner by its secret name without `secretPrefix`. */
  fleet: AwsFleetSettings;
  /** The ledger table: alert de-duplication items (`ALERT#…`). */
  ledgerTableName: string;
  /** SNS topic the alerts raised from rotation events are published to (and Slack posts come back from). */
  alertTopicArn: string;
  /**
   * Name or ARN of the secret holding the Slack incoming-webhook URL (plain text); unset: alerts are only
   * logged. Default: the fleet file's `alerts.slackWebhookSecretName`.
   */
  slackWebhookSecret: string | undefined;
  /**
   * URL of docs/operations.md (the runbook) in the deployment's copy of the repository; alerts link to
   * `<url>#runbook-<kind>`. Unset: `docs/operations.md#runbook-<kind>` as text.
   */
  readmeUrl: string | undefined;
  /** CloudWatch console link to the rotation hook's log group (ROTATION_LOG_GROUP in AWS_REGION), when set. */
  rotationLogUrl: string | undefined;
}

export function readLambdaEnvironment(env: Record<string, string | undefined> = process.env): LambdaEnvironment {
  const required = requiredIn(env);
  return {
    fleet: settingsIn(required),
    ledgerTableName: required(LAMBDA_ENVIRONMENT_NAMES.ledgerTableName),
    hostDocumentName: required(LAMBDA_ENVIRONMENT_NAMES.hostDocumentName),
    alertTopicArn: env[LAMBDA_ENVIRONMENT_NAMES.alertTopicArn] || undefined,
    scanQueueUrl: env[LAMBDA_ENVIRONMENT_NAMES.scanQueueUrl] || undefined,
    readmeUrl: readmeUrlIn(env),
    logUrl: logUrlIn(env, LAMBDA_ENVIRONMENT_NAMES.ownLogGroup),
  };
}

function readmeUrlIn(env: Record<string, string | undefined>): string | undefined {
  const readmeUrl = env[LAMBDA_ENVIRONMENT_NAMES.readmeUrl] || undefined;
  if (readmeUrl !== undefined && !/^https?:\/\/\S+$/.test(readmeUrl)) {
    throw new InvalidInputError(`environment variable ${LAMBDA_ENVIRONMENT_NAMES.readmeUrl}`, 'is not an http(s) URL of the runbook (docs/operations.md)');
  }
  return readmeUrl;
}

function logUrlIn(env: Record<string, string | undefined>, logGroupVariable: string): string | undefined {
  const logGroup = env[logGroupVariable] || undefined;
  const region = env[LAMBDA_ENVIRONMENT_NAMES.region] || undefined;
  return logGroup && region ? cloudWatchLogGroupUrl(region, logGroup) : undefined;
}

export function readNotifyEnvironment(env: Record<string, string | undefined> = process.env): NotifyEnvironment {
  const required = requiredIn(env);
  const fleet = settingsIn(required);
  return {
    fleet,
    ledgerTableName: required(LAMBDA_ENVIRONMENT_NAMES.ledgerTableName),
    alertTopicArn: required(LAMBDA_ENVIRONMENT_NAMES.alertTopicArn),
    slackWebhookSecret: env[LAMBDA_ENVIRONMENT_NAMES.slackWebhookSecret] || fleet.alerts.slackWebhookSecretName,
    readmeUrl: readmeUrlIn(env),
    rotationLogUrl: logUrlIn(env, LAMBDA_ENVIRONMENT_NAMES.rotationLogGroup),
  };
}

/**
 * The CloudWatch console page of a log group. The console's fragment encodes the name twice over:
 * percent-encoding, then `%` as `$25` (`/aws/lambda/x` → `$252Faws$252Flambda$252Fx`).
 */
export function cloudWatchLogGroupUrl(region: string, logGroupName: string): string {
  const name = encodeURIComponent(logGroupName).replace(/%/g, '$25');
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#logsV2:log-groups/log-group/${name}`;
}

function requiredIn(env: Record<string, string | undefined>): (name: string) => string {
  return (name) => {
    const value = env[name];
    if (value === undefined || value === '') throw new InvalidInputError(`environment variable ${name}`, 'is not set (the stack sets it)');
    return value;
  };
}

/** The fleet settings the stack wrote (fleetSettingsText); an error names the variable. */
function settingsIn(required: (name: string) => string): AwsFleetSettings {
  const name = LAMBDA_ENVIRONMENT_NAMES.settingsJson;
  return parseAwsFleetSettings(required(name), `environment variable ${name}`);
}
