import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAMBDA_ENVIRONMENT_NAMES } from '../../src/config/lambda-environment.ts';
import { rotatorBundling } from './function-bundling.ts';

/** The repository root: the esbuild project root and where the lock file lives (bundling options: function-bundling.ts). */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What every rotator Lambda sets besides its own variables: Powertools' names and source-mapped stack traces. */
export const COMMON_FUNCTION_ENVIRONMENT: Readonly<Record<string, string>> = {
  POWERTOOLS_SERVICE_NAME: 'gitlab-runner-rotator',
  POWERTOOLS_METRICS_NAMESPACE: 'GitLabRunnerRotator',
  POWERTOOLS_LOG_LEVEL: 'INFO',
  // The bundle is minified: map stack traces back to the TypeScript sources.
  NODE_OPTIONS: '--enable-source-maps',
};

export interface RotatorFunctionOptions {
  /** Entry file, relative to the repository root. */
  entry: string;
  description: string;
  /** The function's own variables; COMMON_FUNCTION_ENVIRONMENT is added. */
  environment: Record<string, string>;
  /** From rotatorBundling(): every function is bundled alike. */
  bundling: nodejs.BundlingOptions;
}

/**
 * One of the project's Lambdas, as all of them are built: `<id>` with its own role `<id>Role`, which starts with
 * nothing but writing to its own log group `<id>Logs` (no AWSLambdaBasicExecutionRole, whose logs:CreateLogGroup
 * is on `*`), kept 3 months; Node 22 on arm64, 256 MB, 10 minutes, active tracing, bundled locally by esbuild.
 * The caller adds the rest of the role's permissions.
 */
export function rotatorFunction(scope: Construct, id: string, options: RotatorFunctionOptions): nodejs.NodejsFunction {
  const role = new iam.Role(scope, `${id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `Role of ${options.description}` });
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: logs.RetentionDays.THREE_MONTHS });
  logGroup.grantWrite(role);
  return new nodejs.NodejsFunction(scope, id, {
    description: options.description,
    entry: join(REPO_ROOT, options.entry),
    handler: 'handler',
    projectRoot: REPO_ROOT,
    depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 256,
    timeout: Duration.minutes(10),
    tracing: lambda.Tracing.ACTIVE,
    role,
    logGroup,
    environment: { ...options.environment, ...COMMON_FUNCTION_ENVIRONMENT },
    bundling: options.bundling,
  });
}

export interface RotationFunctionsProps {
  /** fleetSettingsText of the fleet file: the Lambdas' ROTATOR_SETTINGS_JSON. */
  settingsText: string;
  ledgerTableName: string;
  hostDocumentName: string;
  /** Entry files, relative to the repository root. Defaults: functions/rotate-secret.ts, functions/scan-expiry.ts, functions/scan-runners.ts. */
  entries?: { rotateSecret: string; scanExpiry: string; scanRunners: string };
}

/**
 * The Lambdas of rotation and scan: `rotateSecret` (the Secrets Manager rotation hook), `scanExpiry` (the
 * scheduled scan: lists the managed secrets and queues them) and `scanRunners` (the scan worker), each built
 * by rotatorFunction; the stack adds their permissions.
 */
export class RotationFunctions extends Construct {
  readonly rotateSecret: nodejs.NodejsFunction;
  readonly scanExpiry: nodejs.NodejsFunction;
  readonly scanRunners: nodejs.NodejsFunction;
  /** The options every function is bundled with (NotifyFunction reuses them). */
  readonly bundling: nodejs.BundlingOptions;

  constructor(scope: Construct, id: string, props: RotationFunctionsProps) {
    super(scope, id);
    const entries = props.entries ?? { rotateSecret: 'functions/rotate-secret.ts', scanExpiry: 'functions/scan-expiry.ts', scanRunners: 'functions/scan-runners.ts' };
    this.bundling = rotatorBundling();
    const environment = {
      [LAMBDA_ENVIRONMENT_NAMES.settingsJson]: props.settingsText,
      [LAMBDA_ENVIRONMENT_NAMES.ledgerTableName]: props.ledgerTableName,
      [LAMBDA_ENVIRONMENT_NAMES.hostDocumentName]: props.hostDocumentName,
    };
    this.rotateSecret = rotatorFunction(this, 'RotateSecret', {
      entry: entries.rotateSecret,
      description: 'GitLab runner token rotation hook (Secrets Manager rotation steps)',
      environment,
      bundling: this.bundling,
    });
    this.scanExpiry = rotatorFunction(this, 'ScanExpiry', {
      entry: entries.scanExpiry,
      description: 'GitLab runner token expiry scan: lists the managed secrets and queues them for the scan workers',
      environment,
      bundling: this.bundling,
    });
    this.scanRunners = rotatorFunction(this, 'ScanRunners', {
      entry: entries.scanRunners,
      description: 'GitLab runner token scan worker (rotates what is due, re-pushes to hosts that missed)',
      environment,
      bundling: this.bundling,
    });
  }
}
