import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createHandler as createNotifyHandler } from '../../../functions/notify.ts';
import { createHandler as createRotationHandler } from '../../../functions/rotate-secret.ts';
import { createHandler as createScanWorker } from '../../../functions/scan-runners.ts';
import { buildDoctorDocument } from '../../../src/adapters/aws/doctor-document.ts';
import { GitLabAdapter } from '../../../src/adapters/gitlab/gitlab.ts';
import { adoptAws, createAwsCli, migrateThroughStack, rotateAws } from '../../../src/cli/aws-commands.ts';
import { runAwsDoctor } from '../../../src/cli/doctor-command.ts';
import { recordingOutput } from '../../../src/cli/output.ts';
import { collectAwsStatus } from '../../../src/cli/status-aws-command.ts';
import { createNotifyDeps } from '../../../src/engines/notify-engine.ts';
import { followDaemons } from '../test-clock.ts';
import { RunnerDaemons } from '../../../src/simulator/runner-daemons.ts';
import { isManagedTable } from '../../../src/simulator/simulated-fleet.ts';
import { RUNNER, SLACK_WEBHOOK_SECRET, startAwsHarness, type AwsHarness, type AwsHarnessOptions } from '../aws-harness.ts';
import { startWebhookServer } from '../webhook-server.ts';
import type { Deployment } from './deployment.ts';
import type { IamRequest } from './iam-requests.ts';

export interface RecordedScenarios {
  deployment: Deployment;
  /** Every IAM request of every call the scenarios made, by every principal. */
  requests: IamRequest[];
  /** The scenarios each harness ran, for messages. */
  ran: string[];
}

/**
 * Runs what each role of the stack does in AWS, over the AWS harness (GitLab simulator, fake Secrets Manager,
 * SSM with real host scripts, DynamoDB, SNS), and returns the IAM requests of every call:
 * - the scan: the dispatcher queues the runners, a worker rotates a due one through RotateSecret, re-pushes
 *   to a host that missed it, alerts, claims the runner and shares the GitLab budget (an admin token read);
 * - the rotation hook: the four steps with every host, an undeliverable host alerted, a recovery by id with
 *   the admin token, a replacement (migrate: create, add, retire);
 * - the notifier: a RotationFailed event raised as an alert, and the alert posted to Slack (webhook secret);
 * - the hosts: each reads its secret versions with its instance role;
 * - the operator: adopt --aws, rotate --aws, status --aws, migrate --aws (and --cancel), doctor --aws.
 */
export async function recordScenarios(): Promise<RecordedScenarios> {
  const harnesses: AwsHarness[] = [];
  const start = async (options: AwsHarnessOptions) => {
    const h = await startAwsHarness({ adminToken: true, ...options });
    harnesses.push(h);
    // One deployment for all: the requests are judged together against it.
    if (h.deployment !== harnesses[0]?.deployment) throw new Error('scenarios: every harness must deploy the same stack');
    return h;
  };
  try {
    const first = await start({ expiresInDays: 3 });
    const ran = [...(await rotateAndRepair(first)), ...(await operate(first)), ...(await notify(first))];
    ran.push(...(await migrate(await start({ legacyToken: true }))));
    ran.push(...(await scanAlerts(await start({ expiresInDays: 2 }))));
    const requests = (await Promise.all(harnesses.map((h) => h.iamRequests()))).flat();
    return { deployment: first.deployment, requests, ran };
  } finally {
    for (const h of harnesses) await h.close();
  }
}

/** A due runner whose rotation is stuck: the scanner raises rotation-stuck and near-expiry itself. */
async function scanAlerts(h: AwsHarness): Promise<string[]> {
  await h.store.startRotation(h.secretArn);
  await h.scan();
  if (h.published.length === 0) throw new Error('scenarios: the scanner raised no alert for a stuck rotation');
  // A worker with 40 s to go (less its 30 s margin, under the 15 s a runner needs) hands its batch on to a later invocation (SendMessage).
  const worker = createScanWorker(() => h.workerEngine, h.telemetry);
  const body = JSON.stringify({ scanId: 'hand-on', secretIds: [h.secretArn] });
  const record = { messageId: 'hand-on', receiptHandle: 'r', body, attributes: {}, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: h.deployment.scanQueue.arn, awsRegion: 'eu-west-1' };
  await worker({ Records: [record as never] }, { ...h.context, getRemainingTimeInMillis: () => 40_000 });
  if (h.queue.messages.length === 0) throw new Error('scenarios: the worker handed nothing on');
  return ['scan alerts on a stuck rotation', 'a scan worker hands a batch on'];
}

function wireRotationHook(h: AwsHarness): void {
  const rotate = createRotationHandler(() => h.engine, h.telemetry);
  h.secretsManager.rotationHook = (event) => rotate(event, h.context);
}

async function rotateAndRepair(h: AwsHarness): Promise<string[]> {
  wireRotationHook(h);
  const offline = h.instances[2]?.instanceId ?? '';
  h.ssm.offline.add(offline);
  await h.scan();
  await Promise.all(h.secretsManager.rotations.splice(0));
  h.ssm.offline.delete(offline);
  // The next scheduled scan (a scan within half the interval leaves the runner to the last one).
  await h.clock.sleep(6 * 3_600_000);
  await h.scan();
  // GitLab rejects the stored token: the hook resets by id with the admin token from its secret.
  h.simulator.expireToken(h.fleet.runners[0]?.id ?? 0);
  await rotateAws(createAwsCli(h.fleetText, 'fleet.aws.json', h.clientsAs('Operator').secretsManager), RUNNER, recordingOutput());
  await Promise.all(h.secretsManager.rotations.splice(0));
  return ['scan rotates a due runner', 'scan re-pushes to a host that missed', 'rotate --aws with a token GitLab rejects'];
}

async function operate(h: AwsHarness): Promise<string[]> {
  const cli = createAwsCli(h.fleetText, 'fleet.aws.json', h.clientsAs('Operator').secretsManager);
  const current = JSON.parse((await h.store.getValue(h.secretArn, { stage: 'AWSCURRENT' })) ?? '{}') as { token?: string };
  const workDir = dirname(dirname(h.fleet.hosts[0]?.configPath ?? ''));
  const tokenFile = join(workDir, 'adopt.token');
  await writeFile(tokenFile, `${current.token}\n`, { mode: 0o600 });
  await adoptAws(cli, RUNNER, tokenFile, true, recordingOutput(), new Date());
  await Promise.all(h.secretsManager.rotations.splice(0));
  // status --aws: DescribeSecret and GetSecretValue (AWSCURRENT's expiry) of every runner, as the operator.
  const status = await collectAwsStatus(cli.fleet, cli.secretsManager, new Date());
  if (status.some((row) => row.problem !== null)) throw new Error(`scenarios: status --aws could not read ${status.filter((r) => r.problem).map((r) => `${r.runner} (${r.problem})`).join(', ')}`);

  const fleetFile = join(workDir, 'fleet.aws.json');
  await writeFile(fleetFile, h.fleetText);
  h.ssm.addDocument(h.deployment.doctorDocumentName, buildDoctorDocument());
  await runAwsDoctor(
    { aws: RUNNER, fleet: fleetFile, probe: false, waitSeconds: '60', expiringDays: '7', timeoutSeconds: '5', json: true },
    recordingOutput(),
    { ssm: () => h.clientsAs('Operator').ssm, clock: h.clock, pollIntervalMs: 20 },
  );
  return ['adopt --aws (and its rotation)', 'status --aws', 'doctor --aws'];
}

async function notify(h: AwsHarness): Promise<string[]> {
  const server = await startWebhookServer();
  try {
    h.secretsManager.createSecret(SLACK_WEBHOOK_SECRET);
    await h.store.adoptCurrent(SLACK_WEBHOOK_SECRET, '00000000-0000-4000-8000-00000000510c', server.url);
    const env = { fleet: h.engine.env.fleet, ledgerTableName: h.deployment.ledgerTableName, alertTopicArn: h.deployment.alertTopicArn, slackWebhookSecret: SLACK_WEBHOOK_SECRET, readmeUrl: undefined, rotationLogUrl: undefined };
    const handler = createNotifyHandler(createNotifyDeps(env, h.clientsAs('Notify'), h.clock), h.telemetry);
    const from = h.published.length;
    const time = '2026-12-04T12:00:00Z';
    await handler(
      {
        version: '0',
        id: 'c3d8a4b2-0000-4000-8000-000000000001',
        'detail-type': 'AWS Service Event via CloudTrail',
        source: 'aws.secretsmanager',
        account: h.deployment.site.account,
        time,
        region: h.deployment.site.region,
        resources: [],
        detail: { eventSource: 'secretsmanager.amazonaws.com', eventName: 'RotationFailed', eventTime: time, additionalEventData: { SecretId: h.secretArn } },
      },
      { ...h.context, functionName: 'notify' },
    );
    const raised = h.published.slice(from);
    if (raised.length === 0) throw new Error('scenarios: the notifier raised no alert for RotationFailed');
    const topic = h.deployment.alertTopicArn;
    await handler(
      { Records: raised.map((alert) => ({ EventSource: 'aws:sns', EventVersion: '1.0', EventSubscriptionArn: `${topic}:1`, Sns: { Type: 'Notification', MessageId: '1', TopicArn: topic, Subject: 'alert', Message: JSON.stringify(alert), Timestamp: time, MessageAttributes: {} } })) },
      { ...h.context, functionName: 'notify' },
    );
    if (server.received.length === 0) throw new Error('scenarios: the notifier posted nothing to Slack');
  } finally {
    await server.close();
  }
  return ['notify: RotationFailed raised, then posted to Slack'];
}

async function migrate(h: AwsHarness): Promise<string[]> {
  wireRotationHook(h);
  const cli = createAwsCli(h.fleetText, 'fleet.aws.json', h.clientsAs('Operator').secretsManager);
  const options = { dryRun: false, force: false, ledgerTable: h.deployment.ledgerTableName };
  const clients = { dynamodb: h.clientsAs('Operator').dynamodb, gitlab: new GitLabAdapter() };
  // Asked and withdrawn first (--cancel), then carried out by the rotation hook.
  const hook = h.secretsManager.rotationHook;
  h.secretsManager.rotationHook = undefined;
  h.secretsManager.failNext('RotateSecret', 1);
  await migrateThroughStack(cli, RUNNER, options, recordingOutput(), new Date(), clients).catch(() => undefined);
  await migrateThroughStack(cli, RUNNER, { ...options, cancel: true }, recordingOutput(), new Date(), clients);
  h.secretsManager.rotationHook = hook;
  // The hosts' gitlab-runners: the replacement waits for each host to contact GitLab as the new runner.
  const daemons = followDaemons(h.clock, new RunnerDaemons(h.simulator.url, h.fleet.hosts, { intervalMs: 20, counts: isManagedTable }).start());
  let code: number;
  try {
    code = await migrateThroughStack(cli, RUNNER, options, recordingOutput(), new Date(), clients);
    await Promise.all(h.secretsManager.rotations.splice(0));
  } finally {
    await daemons.stopAll();
  }
  if (code !== 0) throw new Error(`scenarios: migrate --aws exited ${code}`);
  return ['migrate --aws, --cancel, and the replacement the hook carries out'];
}
