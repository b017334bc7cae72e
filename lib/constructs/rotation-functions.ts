import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAMBDA_ENVIRONMENT_NAMES } from '../../src/config/lambda-environment.ts';

/** The repository root: the esbuild project root and where the lock file lives. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Lets CommonJS modules bundled into the ESM output `require()` Node built-ins. Without it the bundles fail
 * at import with `Dynamic require of "util" is not supported` (esbuild's `__require` shim has no `require`
 * to call in ESM; tried on functions/rotate-secret.ts).
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as topLevelCreateRequire } from 'node:module'; const require = topLevelCreateRequire(import.meta.url);";

/**
 * How both Lambdas are bundled, by the esbuild in node_modules (never Docker): aws-cdk-lib finds esbuild with
 * require.resolve and, for an npm lock file, runs `npx --no-install esbuild` in `projectRoot`, i.e.
 * node_modules/.bin/esbuild; `forceDockerBundling: false` keeps it from falling back to Docker.
 * - ESM (`index.mjs`), like the rest of the project ("type": "module"): ESM-only dependencies
 *   (p-limit, @gitbeaker/rest, @middy/core) and top-level await work as they do in the tests. `mainFields`
 *   prefers each package's ESM build; the banner gives the CommonJS ones that remain a real `require`.
 * - Everything is bundled, @aws-sdk/* included (`externalModules: []`): the Node 22 runtime ships an SDK v3,
 *   but of whatever version Lambda last installed; bundling deploys the SDK version the tests ran against.
 *   Node built-ins stay external (esbuild `--platform=node`).
 * - The fleet file's text is compiled in through `define` of `process.env.ROTATOR_FLEET_JSON`
 *   (src/config/lambda-environment.ts): 100 runners do not fit in 4 KB of environment variables.
 */
export function rotatorBundling(fleetText: string): nodejs.BundlingOptions {
  return {
    forceDockerBundling: false,
    format: nodejs.OutputFormat.ESM,
    target: 'node20',
    mainFields: ['module', 'main'],
    banner: ESM_REQUIRE_BANNER,
    minify: true,
    sourceMap: true,
    sourcesContent: false,
    externalModules: [],
    define: { [`process.env.${LAMBDA_ENVIRONMENT_NAMES.fleetJson}`]: JSON.stringify(fleetText) },
  };
}

export interface RotationFunctionsProps {
  /** The fleet file's text, compiled into both bundles. */
  fleetText: string;
  ledgerTableName: string;
  hostDocumentName: string;
  /** Entry files, relative to the repository root. Defaults: functions/rotate-secret.ts, functions/scan-expiry.ts. */
  entries?: { rotateSecret: string; scanExpiry: string };
}

/**
 * The two Lambdas: `rotateSecret` (the Secrets Manager rotation hook) and `scanExpiry` (the scheduled
 * scanner). Each has its own role that starts with nothing but writing to its own log group (no
 * AWSLambdaBasicExecutionRole, whose logs:CreateLogGroup is on `*`); the stack adds the rest.
 */
export class RotationFunctions extends Construct {
  readonly rotateSecret: nodejs.NodejsFunction;
  readonly scanExpiry: nodejs.NodejsFunction;
  /** The options both functions were bundled with (tests check the `define`). */
  readonly bundling: nodejs.BundlingOptions;

  constructor(scope: Construct, id: string, props: RotationFunctionsProps) {
    super(scope, id);
    const entries = props.entries ?? { rotateSecret: 'functions/rotate-secret.ts', scanExpiry: 'functions/scan-expiry.ts' };
    this.bundling = rotatorBundling(props.fleetText);
    const environment = {
      [LAMBDA_ENVIRONMENT_NAMES.ledgerTableName]: props.ledgerTableName,
      [LAMBDA_ENVIRONMENT_NAMES.hostDocumentName]: props.hostDocumentName,
      POWERTOOLS_SERVICE_NAME: 'gitlab-runner-rotator',
      POWERTOOLS_METRICS_NAMESPACE: 'GitLabRunnerRotator',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      // The bundle is minified: map stack traces back to the TypeScript sources.
      NODE_OPTIONS: '--enable-source-maps',
    };
    const create = (name: string, entry: string, description: string): nodejs.NodejsFunction => {
      const role = new iam.Role(this, `${name}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `Role of ${description}` });
      const logGroup = new logs.LogGroup(this, `${name}Logs`, { retention: logs.RetentionDays.THREE_MONTHS });
      logGroup.grantWrite(role);
      return new nodejs.NodejsFunction(this, name, {
        description,
        entry: join(REPO_ROOT, entry),
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
        environment,
        bundling: this.bundling,
      });
    };
    this.rotateSecret = create('RotateSecret', entries.rotateSecret, 'GitLab runner token rotation hook (Secrets Manager rotation steps)');
    this.scanExpiry = create('ScanExpiry', entries.scanExpiry, 'GitLab runner token expiry scanner (rotates what is due, re-pushes to hosts that missed)');
  }
}
