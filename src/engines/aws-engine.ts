import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoDbDocumentClient, secretsManagerClient, snsClient, sqsClient, ssmClient } from '../adapters/aws/sdk-clients.ts';
import { DynamoDbAlertLedger } from '../adapters/aws/dynamodb-alert-ledger.ts';
import { DynamoDbLedger } from '../adapters/aws/dynamodb-ledger.ts';
import { DynamoDbRateBudget } from '../adapters/aws/dynamodb-rate-budget.ts';
import { DynamoDbScanClaims } from '../adapters/aws/dynamodb-scan-claims.ts';
import { SqsScanQueue } from '../adapters/aws/sqs-scan-queue.ts';
import { GitLabAdapter } from '../adapters/gitlab/gitlab.ts';
import { readAdminTokenSecret, SecretsManagerStore, type ManagedSecretSummary } from '../adapters/aws/secrets-manager-store.ts';
import { SnsAlertSink } from '../adapters/aws/sns-alert-sink.ts';
import { SsmFleet } from '../adapters/aws/ssm-fleet.ts';
import { systemClock } from '../adapters/local/system-clock.ts';
import { secretNameFromId, type AwsManagedRunner } from '../config/aws-fleet-config.ts';
import type { LambdaEnvironment } from '../config/lambda-environment.ts';
import { runnerFromTags } from '../config/runner-tags.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { Clock, RotationDeps, RotationEvents } from '../core/ports.ts';
import type { AlertDeps } from '../core/raise-alert.ts';
import type { ScanDeps } from '../core/scan-runner.ts';
import { runnerNameOfSecret } from './runner-name.ts';
import { RUNNER_RESERVE_MS } from './scan-fanout.ts';

export interface AwsClients {
  secretsManager: SecretsManagerClient;
  ssm: SSMClient;
  sns: SNSClient;
  dynamodb: DynamoDBDocumentClient;
  sqs: SQSClient;
}

/** The engine's SDK clients, with the project's one retry policy (sdk-clients.ts). */
export function createAwsClients(): AwsClients {
  return {
    secretsManager: secretsManagerClient(),
    ssm: ssmClient(),
    sns: snsClient(),
    dynamodb: dynamoDbDocumentClient(),
    sqs: sqsClient(),
  };
}

export interface AwsEngine {
  env: LambdaEnvironment;
  store: SecretsManagerStore;
  ledger: DynamoDbLedger;
  clock: Clock;
  /** Which scan took each runner (overlapping scans, SQS's duplicate deliveries): the scan worker claims before it scans. */
  claims: DynamoDbScanClaims;
  /** The scan's queue (SCAN_QUEUE_URL); undefined where none is configured (the rotation hook). */
  scanQueue: SqsScanQueue | undefined;
  /** Where alerts go (SNS) and their de-duplication state; undefined when no topic is deployed. */
  alerts: AlertDeps | undefined;
  /** The runner's name for alerts and logs before its tags are read: the secret name without the prefix. */
  runnerName(secretId: string): string;
  /**
   * The runner a secret records in its tags (DescribeSecret; the rotation hook asks once per invocation).
   * Tags that make no runner are `error` (an InvalidInputError naming the secret and the tag), with the
   * name the runner tag or the secret name gives. A failed DescribeSecret throws.
   */
  runnerOf(secretId: string): Promise<SecretRunner>;
  /** The runner of one secret of the scan's listing (ListSecrets returns the tags): no call. */
  runnerOfListed(secret: ManagedSecretSummary): SecretRunner;
  /** The rotation step's ports for the one runner this invocation rotates (`runnerFor` knows only it). */
  rotationDeps(deadline: Date, events: RotationEvents, runner: AwsManagedRunner): RotationDeps;
  scanDeps(deadline: Date, events: RotationEvents): ScanDeps;
}

/** A managed secret's runner, read from its tags, or why its tags make none; `name` for logs and alerts either way. */
export type SecretRunner = { name: string; runner: AwsManagedRunner } | { name: string; error: InvalidInputError };

/** The runner a secret's tags record (runner-tags.ts), never a throw: a bad tag is one runner's problem. */
function runnerOfSecretTags(secret: Pick<ManagedSecretSummary, 'name' | 'tags' | 'rotateEveryDays'>, secretPrefix: string): SecretRunner {
  const name = runnerNameOfSecret(secret.name, secretPrefix, secret.tags);
  try {
    return { name, runner: runnerFromTags(secret.name, secret.tags, secret.rotateEveryDays) };
  } catch (error) {
    if (error instanceof InvalidInputError) return { name, error };
    throw error;
  }
}

/**
 * The admin token read once per GitLab url for the life of one scan, not once per runner (10,000
 * GetSecretValue calls at 10,000 runners). A failed read is not kept: the next runner tries again.
 */
function oncePerUrl(read: (gitlabUrl: string) => Promise<string | undefined>): (gitlabUrl: string) => Promise<string | undefined> {
  const reads = new Map<string, Promise<string | undefined>>();
  return (gitlabUrl) => {
    let value = reads.get(gitlabUrl);
    if (!value) {
      value = read(gitlabUrl);
      reads.set(gitlabUrl, value);
      value.catch(() => reads.delete(gitlabUrl));
    }
    return value;
  };
}

/**
 * Wires the core to AWS: Secrets Manager holds the versions, DynamoDB the ledger, SSM Run Command reaches
 * the hosts, GitLab over HTTP. The clients are built once per Lambda container; deps per invocation,
 * because the fleet's deadline is the invocation's. No runner is known in advance: each is read from its
 * secret's tags (runner-tags.ts), by the hook once per invocation and by the scanner from its listing.
 */
export interface AwsEngineOptions {
  /**
   * Draw every GitLab request from the fleet's shared rate budget per url (dynamodb-rate-budget.ts): the
   * scan worker does, since several of them scan at once. The rotation hook does not: its few calls must not
   * wait behind a scan, and GitLab's own 429s still pace it.
   */
  sharedGitLabBudget?: boolean;
}

export function createAwsEngine(env: LambdaEnvironment, clients: AwsClients, clock: Clock = systemClock, options: AwsEngineOptions = {}): AwsEngine {
  const store = new SecretsManagerStore(clients.secretsManager);
  const ledger = new DynamoDbLedger(clients.dynamodb, env.ledgerTableName);
  // The invocation's deadline, for the shared budget: it defers a request rather than wait past it.
  let budgetDeadline: Date | undefined;
  const pacingClock = { now: () => clock.now().getTime(), sleep: (ms: number) => clock.sleep(ms) };
  const shared = options.sharedGitLabBudget
    ? new DynamoDbRateBudget({
        client: clients.dynamodb,
        tableName: env.ledgerTableName,
        clock: pacingClock,
        requestsPerMinute: env.fleet.gitlabRequestsPerMinute,
        workers: env.fleet.scanWorkers,
        // A request the budget lets go at the deadline would leave the runner no time for RotateSecret or a re-push.
        deadline: () => (budgetDeadline === undefined ? undefined : budgetDeadline.getTime() - RUNNER_RESERVE_MS),
      })
    : undefined;
  // Paced (gitlab-pacing.ts) by a 429's Retry-After and requests in flight adapted per GitLab url (up to
  // the scan's concurrency), by GitLab's RateLimit-* headers when it sends them, by the fleet's budget
  // when it sets one, and in the scan worker by the budget all workers share.
  const gitlab = new GitLabAdapter({
    sleep: pacingClock.sleep,
    now: pacingClock.now,
    pacing: { fromHeaders: true, requestsPerMinute: env.fleet.gitlabRequestsPerMinute, maxInFlight: env.fleet.scanConcurrency, ...(shared ? { shared } : {}) },
  });
  const fleet = (deadline: Date) =>
    new SsmFleet({ ssm: clients.ssm, documentName: env.hostDocumentName, clock, deadline: () => deadline, ...env.fleet.ssm });

  const adminToken = (gitlabUrl: string) => readAdminTokenSecret(store, env.fleet.adminTokenSecrets, gitlabUrl);
  /** What a rotation step and a scan both get: the clients, and the fleet bound to this invocation's deadline. */
  const invocationDeps = (deadline: Date, events: RotationEvents) => ({ secrets: store, ledger, gitlab, fleet: fleet(deadline), clock, events });

  const alerts: AlertDeps | undefined = env.alertTopicArn
    ? {
        engine: 'aws',
        ledger: new DynamoDbAlertLedger(clients.dynamodb, env.ledgerTableName, { now: () => clock.now() }),
        sink: new SnsAlertSink(clients.sns, env.alertTopicArn, { readmeUrl: env.readmeUrl }),
        clock,
        reminderMs: env.fleet.alerts.reminderHours * 3_600_000,
      }
    : undefined;

  return {
    env,
    store,
    ledger,
    clock,
    claims: new DynamoDbScanClaims(clients.dynamodb, env.ledgerTableName),
    scanQueue: env.scanQueueUrl === undefined ? undefined : new SqsScanQueue(clients.sqs, env.scanQueueUrl),
    alerts,
    runnerName: (secretId) => runnerNameOfSecret(secretId, env.fleet.secretPrefix),
    runnerOf: async (secretId) => runnerOfSecretTags(await store.describeManaged(secretId), env.fleet.secretPrefix),
    runnerOfListed: (secret) => runnerOfSecretTags(secret, env.fleet.secretPrefix),
    rotationDeps: (deadline, events, runner) => ({
      ...invocationDeps(deadline, events),
      adminToken,
      // The event's secret id is an ARN; the runner records its secret by name.
      runnerFor: (secretId) => (secretNameFromId(secretId) === runner.secretId ? runner : undefined),
    }),
    scanDeps: (deadline, events) => {
      budgetDeadline = deadline;
      return scanDepsOf(deadline, events);
    },
  };

  function scanDepsOf(deadline: Date, events: RotationEvents): ScanDeps {
    return {
      ...invocationDeps(deadline, events),
      adminToken: oncePerUrl(adminToken),
      startRotation: async (_runner, secretId) => {
        await store.startRotation(secretId);
      },
    };
  }
}
