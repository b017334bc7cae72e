import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { PublishCommand, SNSClient, type PublishCommandInput } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { vi } from 'vitest';
import { parseAlertMessage } from '../../src/adapters/aws/sns-alert-sink.ts';
import type { Alert } from '../../src/core/alerts.ts';
import { DynamoDbLedger } from '../../src/adapters/aws/dynamodb-ledger.ts';
import { SecretsManagerStore } from '../../src/adapters/aws/secrets-manager-store.ts';
import { buildHostConvergeDocument } from '../../src/adapters/aws/host-update-document.ts';
import { parseAwsFleetConfig, type AwsManagedRunner } from '../../src/config/aws-fleet-config.ts';
import type { LambdaEnvironment } from '../../src/config/lambda-environment.ts';
import { runnerTags } from '../../src/config/runner-tags.ts';
import { serializeSecretValue } from '../../src/core/secret-value.ts';
import { createAwsEngine, type AwsClients, type AwsEngine } from '../../src/engines/aws-engine.ts';
import type { Telemetry } from '../../src/engines/rotation-log.ts';
import { createHandler as createDispatchHandler, type ScanDispatched } from '../../functions/scan-expiry.ts';
import { createHandler as createWorkerHandler } from '../../functions/scan-runners.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { RunnerDaemons } from '../../src/simulator/runner-daemons.ts';
import { createSimulatedFleet, isManagedTable, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { FakeDynamoTable } from './fake-dynamodb.ts';
import { FakeSecretsManager } from './fake-secrets-manager.ts';
import { FakeSqsQueue } from './fake-sqs.ts';
import { FakeSsm, type FakeInstance } from './fake-ssm.ts';
import { withLegacyToken } from './rotation-harness.ts';
import { deploymentOf, type Deployment, type PrincipalName } from './iam/deployment.ts';
import { describeRefusals, IamEvaluator } from './iam/iam-evaluator.ts';
import { iamRequestsOf, type IamRequest } from './iam/iam-requests.ts';
import { CallRecorder } from './iam/recorded-calls.ts';
import { followDaemons, TestClock } from './test-clock.ts';
import { captured, expectNoTokens } from './token-leaks.ts';

const DAY_MS = 86_400_000;
export const RUNNER = 'builders';
/** The fleet file's `alerts.slackWebhookSecretName`: the notifier's one secret (created only where a test needs it). */
export const SLACK_WEBHOOK_SECRET = 'gitlab-runner-rotator/slack-webhook';

export interface AwsHarness {
  simulator: GitLabSimulator;
  fleet: SimulatedFleet;
  instances: FakeInstance[];
  secretsManager: FakeSecretsManager;
  ssm: FakeSsm;
  table: FakeDynamoTable;
  /** The rotation hook's engine (functions/rotate-secret.ts): its AWS calls are the RotateSecret role's. */
  engine: AwsEngine;
  /** The scan dispatcher's engine (functions/scan-expiry.ts), over the same fakes: its calls are the ScanExpiry role's. */
  scanEngine: AwsEngine;
  /** The scan worker's engine (functions/scan-runners.ts, shared GitLab budget): its calls are the ScanRunners role's. */
  workerEngine: AwsEngine;
  /** The scan's SQS queue (the deployed one's URL). */
  queue: FakeSqsQueue;
  /**
   * One whole scan as AWS runs it: the dispatcher Lambda queues the runners, then the queue's event source
   * hands each message to a worker invocation until none is left (a delayed hand-on is waited for on the
   * harness clock). Resolves with the dispatch and every worker reply.
   */
  scan(): Promise<{ dispatched: ScanDispatched; replies: SQSBatchResponse[] }>;
  /** The stack deployed for this harness's fleet file: the names the engines use, and the roles' policies. */
  deployment: Deployment;
  /**
   * The AWS fleet file the stack is synthesized from (what the CLI's --fleet names). The engines run with its
   * settings only: the runner is its secret's tags (`runner`, tagged as the stack tags it).
   */
  fleetText: string;
  /** The fleet file's runner, as its secret's tags record it (runnerTags). */
  runner: AwsManagedRunner;
  /** The ledger table read directly, for assertions (its calls are nobody's). */
  ledger: DynamoDbLedger;
  /** Every AWS call made through clientsAs(), with its principal. */
  recorder: CallRecorder;
  /** SDK clients over the fakes whose calls are charged to `principal` (a function's role, the operator). */
  clientsAs(principal: PrincipalName): AwsClients;
  /**
   * State Manager applies every association of the deployed stack (as on creation, on schedule, or when an
   * instance joins): the convergence document runs on each target with the association's parameters.
   * Resolves once every host is done, with each host's output.
   */
  applyAssociations(): Promise<Array<{ instanceId: string; status: string; output: string }>>;
  /** The IAM requests of every AWS call made so far, the hosts' secret reads included (after the hosts settle). */
  iamRequests(): Promise<IamRequest[]>;
  /** The AWS calls made so far (hosts' secret reads included) that the deployed policies refuse. */
  iamRefusals(): Promise<string[]>;
  /** The SNS client the engine publishes alerts with (mocked: see `published`). */
  sns: SNSClient;
  /** The engine's clock: it moves only as the code sleeps, and never while a host's command runs. */
  clock: TestClock;
  store: SecretsManagerStore;
  secretArn: string;
  telemetry: Telemetry;
  /** Every alert published to the SNS topic, in order. */
  published: Alert[];
  /** Every line the handlers wrote to stdout and stderr (Powertools logs and EMF metrics). */
  logLines: string[];
  /** With `replace`: the hosts' gitlab-runners. */
  daemons: RunnerDaemons | undefined;
  context: Context;
  /** Tokens seen: the fleet's first ones and every version the fake Secrets Manager holds. */
  knownTokens(): string[];
  close(): Promise<void>;
}

/**
 * The AWS engine over real parts where they can be real: GitLab is the simulator over HTTP, hosts are
 * config.toml files updated by the real document in sh/bash. AWS itself is faked at the SDK boundary
 * (aws-sdk-client-mock): Secrets Manager, SSM Run Command and DynamoDB.
 */
export interface AwsHarnessOptions {
  hosts?: number;
  adminToken?: boolean;
  expiresInDays?: number;
  /** Run the simulator on the engine's clock, so that waiting out a rate-limit window passes at once. */
  simulatorOnHarnessClock?: boolean;
  /** The managed runner holds a legacy token (no glrt- prefix). */
  legacyToken?: boolean;
  /**
   * Rotate by replacement: strategy `replace` for the runner, the admin token configured, and a gitlab-runner
   * polling on every host (`daemons`).
   */
  replace?: boolean;
  /** The fleet file's `metrics.perRunnerDaysToExpiry` (default off, as in a fleet file that says nothing). */
  perRunnerDaysToExpiry?: boolean;
}

/**
 * A test's teardown: close the harness (which fails on any call the deployed policies refuse), then check
 * that no token it knows reached a line the handlers wrote. Nothing to do without a harness.
 */
export async function closeCheckingLogs(h: AwsHarness | undefined): Promise<void> {
  if (!h) return;
  const lines = h.logLines.join('');
  await h.close();
  expectNoTokens(captured(lines), h.knownTokens());
}

export async function startAwsHarness(options: AwsHarnessOptions = {}): Promise<AwsHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'aws-engine-'));
  // Time moves for a sleep only once the hosts' SSM commands started so far have finished (ssm, below).
  const clock = new TestClock({ settle: () => ssm.settle() });
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400, ...(options.simulatorOnHarnessClock ? { now: () => clock.now() } : {}) });
  await simulator.start();
  const now = Date.now();
  const expiresInDays = options.expiresInDays ?? 3;
  const fleet = await withLegacyToken(simulator, options.legacyToken ? RUNNER : undefined, () =>
    createSimulatedFleet(simulator, dir, [
      { name: RUNNER, hosts: options.hosts ?? 3, tokenObtainedAt: new Date(now - (30 - expiresInDays) * DAY_MS), tokenExpiresAt: new Date(now + expiresInDays * DAY_MS) },
    ]),
  );
  const instances: FakeInstance[] = fleet.hosts.map((h) => ({ instanceId: `i-0${randomBytes(8).toString('hex')}`, tags: { 'gitlab-runner': RUNNER }, root: dirname(h.configPath) }));
  const runnerId = fleet.runners[0]?.id ?? 0;

  const withAdminToken = options.adminToken === true || options.replace === true;
  const secretsManager = new FakeSecretsManager();
  const adminSecretName = 'gitlab-runner-rotator/admin';
  const fleetJson = JSON.stringify({
    ...(withAdminToken ? { adminTokenSecrets: { [simulator.url]: adminSecretName } } : {}),
    runners: [
      {
        name: RUNNER,
        gitlabUrl: simulator.url,
        runnerId,
        hosts: { tag: { key: 'gitlab-runner', value: RUNNER } },
        configPath: '/config.toml',
        reload: 'none',
        ...(options.replace ? { strategy: 'replace' } : {}),
      },
    ],
    alerts: { slackWebhookSecretName: SLACK_WEBHOOK_SECRET },
    ...(options.perRunnerDaysToExpiry === undefined ? {} : { metrics: { perRunnerDaysToExpiry: options.perRunnerDaysToExpiry } }),
  });
  // The stack this fleet file deploys (the GitLab url named alike: the policies never depend on it).
  const deployment = deploymentOf(fleetJson.replaceAll(simulator.url, 'https://gitlab.example.com'));
  const { runners, ...settings } = parseAwsFleetConfig(fleetJson, 'fleet.aws.json');
  const runner = runners[0];
  if (!runner) throw new Error('aws-harness: the fleet file has no runner');
  // What the Lambdas get: the settings in ROTATOR_SETTINGS_JSON, never the runners.
  const env: LambdaEnvironment = {
    fleet: settings,
    ledgerTableName: deployment.ledgerTableName,
    hostDocumentName: deployment.hostDocumentName,
    alertTopicArn: deployment.alertTopicArn,
    scanQueueUrl: deployment.scanQueue.url,
    readmeUrl: undefined,
    logUrl: 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/rotate-secret',
  };
  // The secret as the stack creates it: the runner's record in its tags.
  const secretArn = secretsManager.createSecret(runner.secretId, { tags: runnerTags(runner) });
  if (secretArn !== deployment.secretArn(`gitlab-runner-rotator/${RUNNER}`)) throw new Error(`aws-harness: the fake's secret ${secretArn} is not the stack's`);
  const store = new SecretsManagerStore(secretsManager.client);
  const firstToken = fleet.tokens[1] ?? '';
  await store.adoptCurrent(secretArn, randomUUID(), serializeSecretValue({ runnerId, gitlabUrl: simulator.url, token: firstToken, tokenExpiresAt: new Date(now + expiresInDays * DAY_MS).toISOString(), tokenObtainedAt: new Date(now - (30 - expiresInDays) * DAY_MS).toISOString() }));
  const adminToken = withAdminToken ? simulator.addAccessToken({ scopes: ['manage_runner'], admin: true }) : undefined;
  if (adminToken) {
    secretsManager.createSecret(adminSecretName);
    await store.adoptCurrent(adminSecretName, randomUUID(), adminToken);
  }

  const ssm = new FakeSsm(instances, dir, secretsManager);
  const table = new FakeDynamoTable();
  const sns = new SNSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const snsMock = mockClient(sns);
  const published: Alert[] = [];
  snsMock.on(PublishCommand).callsFake((input: PublishCommandInput) => {
    published.push(parseAlertMessage(String((JSON.parse(input.Message ?? '{}') as { default?: string }).default)));
    return { $metadata: {}, MessageId: randomUUID() };
  });
  const queue = new FakeSqsQueue(() => clock.now().getTime(), { url: deployment.scanQueue.url });
  const recorder = new CallRecorder();
  const clientsAs = (principal: PrincipalName): AwsClients => ({
    secretsManager: recorder.as(principal, 'secretsmanager', secretsManager.client),
    ssm: recorder.as(principal, 'ssm', ssm.client),
    sns: recorder.as(principal, 'sns', sns),
    dynamodb: recorder.as(principal, 'dynamodb', table.client),
    sqs: recorder.as(principal, 'sqs', queue.client),
  });
  const engine = createAwsEngine(env, clientsAs('RotateSecret'), clock);
  const scanEngine = createAwsEngine(env, clientsAs('ScanExpiry'), clock);
  const workerEngine = createAwsEngine(env, clientsAs('ScanRunners'), clock, { sharedGitLabBudget: true });
  const iamRequests = async (): Promise<IamRequest[]> => {
    await ssm.settle();
    const hostReads = (await ssm.hostSecretReads()).map((read) => ({
      principal: `Host:${ssm.instances.find((i) => i.instanceId === read.instanceId)?.tags['gitlab-runner'] ?? '?'}` as PrincipalName,
      service: 'secretsmanager' as const,
      command: 'GetSecretValueCommand',
      input: read.versionId ? { SecretId: read.secretId, VersionId: read.versionId } : { SecretId: read.secretId, VersionStage: read.versionStage },
    }));
    // The tags a request is judged with are the secret's own, as AWS reads them: a secret a test adds has its own.
    return [...recorder.calls, ...hostReads].flatMap((call) => iamRequestsOf(call, deployment, instances, (arn) => secretsManager.tagsOf(arn) ?? deployment.secretTags.get(arn)));
  };
  ssm.addDocument(deployment.convergeDocumentName, buildHostConvergeDocument());
  const applyAssociations = async () => {
    const commands = [];
    for (const association of deployment.associations) commands.push(await ssm.applyAssociation(association));
    await ssm.settle();
    return commands.flatMap(({ Command }) => {
      const command = ssm.commands.find((c) => c.commandId === Command.CommandId);
      return [...(command?.invocations.values() ?? [])].map((i) => ({ instanceId: i.InstanceId ?? '', status: i.Status ?? '', output: i.CommandPlugins?.[0]?.Output ?? '' }));
    });
  };
  const iamRefusals = async (): Promise<string[]> => describeRefusals(await new IamEvaluator(deployment).judge(await iamRequests()));
  const daemons = options.replace ? followDaemons(clock, new RunnerDaemons(simulator.url, fleet.hosts, { intervalMs: 20, counts: isManagedTable }).start()) : undefined;

  const logLines: string[] = [];
  const capture = (chunk: unknown) => {
    logLines.push(String(chunk));
    return true;
  };
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  const telemetry: Telemetry = {
    logger: new Logger({ serviceName: 'gitlab-runner-rotator', logLevel: 'DEBUG' }),
    metrics: new Metrics({ namespace: 'GitLabRunnerRotator', serviceName: 'gitlab-runner-rotator' }),
    tracer: new Tracer({ enabled: false }),
  };
  const context = {
    functionName: 'rotate-secret',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:rotate-secret',
    memoryLimitInMB: '256',
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    getRemainingTimeInMillis: () => 300_000,
  } as unknown as Context;

  const dispatch = createDispatchHandler(() => scanEngine, telemetry);
  const work = createWorkerHandler(() => workerEngine, telemetry);
  const scan = async () => {
    const dispatched = await dispatch({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, { ...context, functionName: 'scan-expiry', awsRequestId: randomUUID() });
    const replies: SQSBatchResponse[] = [];
    // Bounded: a scan that keeps handing on runners forever fails the test instead of hanging it.
    for (let invocations = 0; invocations < 1_000; invocations += 1) {
      const delivered = await queue.deliver(async (event) => {
        const reply = await work(event, { ...context, functionName: 'scan-runners', awsRequestId: randomUUID() });
        replies.push(reply);
        return reply;
      });
      if (delivered) continue;
      const next = queue.nextVisibleAtMs();
      if (next === undefined) return { dispatched, replies };
      await clock.sleep(Math.max(1, next - clock.now().getTime()));
    }
    throw new Error('aws-harness: the scan did not drain its queue in 1,000 worker invocations');
  };

  clock.startAfterSetup();
  return {
    simulator,
    fleet,
    instances,
    secretsManager,
    ssm,
    table,
    engine,
    scanEngine,
    workerEngine,
    queue,
    scan,
    fleetText: fleetJson,
    runner,
    ledger: new DynamoDbLedger(table.client, deployment.ledgerTableName),
    deployment,
    recorder,
    clientsAs,
    applyAssociations,
    iamRequests,
    iamRefusals,
    sns,
    clock,
    store,
    secretArn,
    telemetry,
    published,
    logLines,
    daemons,
    context,
    knownTokens: () => {
      const stored = Object.keys(secretsManager.stages(`gitlab-runner-rotator/${RUNNER}`)).map((v) => secretsManager.valueOf(secretArn, v));
      return [...fleet.tokens, ...stored.flatMap((raw) => (raw ? [(JSON.parse(raw) as { token: string }).token] : [])), ...(adminToken ? [adminToken] : [])];
    },
    close: async () => {
      // Judged before the fakes go: a call the deployed policies refuse fails the test that made it.
      const judged = await iamRefusals().then(
        (refused) => ({ refused }),
        (error: unknown) => ({ refused: [], error }),
      );
      await daemons?.stopAll();
      stdout.mockRestore();
      stderr.mockRestore();
      await ssm.settle();
      secretsManager.restore();
      ssm.mock.restore();
      table.mock.restore();
      queue.mock.restore();
      snsMock.restore();
      await simulator.stop();
      await rm(dir, { recursive: true, force: true });
      if ('error' in judged) throw judged.error;
      if (judged.refused.length > 0) throw new Error(`AWS would refuse ${judged.refused.length} call(s) under the synthesized policies:\n${judged.refused.join('\n')}`);
    },
  };
}
