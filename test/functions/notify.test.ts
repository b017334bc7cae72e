import { readFile } from 'node:fs/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient, type PublishCommandInput } from '@aws-sdk/client-sns';
import type { Context } from 'aws-lambda';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { createHandler, type NotifyDeps } from '../../functions/notify.ts';
import { SlackWebhook, SlackWebhookError } from '../../src/adapters/alerts/slack-webhook.ts';
import { fleetSettingsText, parseAwsFleetConfig, parseAwsFleetSettings } from '../../src/config/aws-fleet-config.ts';
import { buildAlert } from '../../src/core/alert-rules.ts';
import type { Alert } from '../../src/core/alerts.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { createNotifyDeps } from '../../src/engines/notify-engine.ts';
import type { Telemetry } from '../../src/engines/rotation-log.ts';
import { FakeDynamoTable } from '../support/fake-dynamodb.ts';
import { deploymentOf } from '../support/iam/deployment.ts';
import { describeRefusals, IamEvaluator } from '../support/iam/iam-evaluator.ts';
import { iamRequestsOf } from '../support/iam/iam-requests.ts';
import { CallRecorder } from '../support/iam/recorded-calls.ts';
import { TestClock } from '../support/test-clock.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';
import { startWebhookServer, type WebhookServer } from '../support/webhook-server.ts';

const RUNNER = 'docker-builders';
const SECRET_ARN = `arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/${RUNNER}-Q1w2E3`;
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:gitlab-runner-rotator-alerts';
const LOGS = 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Frotate-secret';
const FLEET_TEXT = JSON.stringify({ runners: [{ name: RUNNER, gitlabUrl: 'https://gitlab.example.com', runnerId: 42, hosts: { tag: { key: 'gitlab-runner', value: RUNNER } } }] });
/** What the notifier is configured with: the fleet file's settings (ROTATOR_SETTINGS_JSON), no runner. */
const fleet = parseAwsFleetSettings(fleetSettingsText(parseAwsFleetConfig(FLEET_TEXT, 'fleet.aws.json')), 'ROTATOR_SETTINGS_JSON');
const context = {
  functionName: 'notify',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:notify',
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const hostMissed: Alert = buildAlert('host-missed', { engine: 'aws',
  runner: RUNNER,
  secretId: SECRET_ARN,
  summary: `2 of 3 host(s) of runner ${RUNNER} did not take the new token and cannot take jobs`,
  hosts: [
    { host: 'i-0123456789abcdef0', systemId: 's_0123456789ab', status: 'undeliverable', detail: 'SSM agent offline' },
    { host: 'i-0fedcba9876543210', systemId: 's_fedcba987654', status: 'timed-out', detail: 'Delivery timed out' },
  ],
  now: new Date('2026-11-23T12:05:12.000Z'),
  logUrl: LOGS,
});

/** The SNS event Lambda gets for a message published to the topic (the `default` text of the JSON structure). */
function snsEvent(message: string) {
  return {
    Records: [
      {
        EventSource: 'aws:sns',
        EventVersion: '1.0',
        EventSubscriptionArn: `${TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55`,
        Sns: { Type: 'Notification', MessageId: '95df01b4-ee98-5cb9-9903-4c221d41eb5e', TopicArn: TOPIC, Subject: '[gitlab-runner-rotator] host-missed', Message: message, Timestamp: '2026-11-23T12:05:13.000Z', MessageAttributes: {} },
      },
    ],
  };
}

async function rotationEvent(file: string, secretId = SECRET_ARN): Promise<Record<string, unknown>> {
  const event = JSON.parse(await readFile(new URL(`../../events/${file}`, import.meta.url), 'utf8')) as { detail: { additionalEventData: { SecretId: string } } };
  event.detail.additionalEventData.SecretId = secretId;
  return event;
}

let server: WebhookServer;
let logLines: string[];
let spies: MockInstance[];
let telemetry: Telemetry;

beforeEach(async () => {
  server = await startWebhookServer();
  logLines = [];
  const capture = (chunk: unknown) => {
    logLines.push(String(chunk));
    return true;
  };
  spies = [vi.spyOn(process.stdout, 'write').mockImplementation(capture), vi.spyOn(process.stderr, 'write').mockImplementation(capture)];
  telemetry = {
    logger: new Logger({ serviceName: 'gitlab-runner-rotator', logLevel: 'DEBUG' }),
    metrics: new Metrics({ namespace: 'GitLabRunnerRotator', serviceName: 'gitlab-runner-rotator' }),
    tracer: new Tracer({ enabled: false }),
  };
});

afterEach(async () => {
  for (const spy of spies) spy.mockRestore();
  await server.close();
  // Nothing the notifier wrote or posted carries a token, nor the webhook URL's secret path.
  const everything = captured(logLines.join(''), ...server.received.map((r) => r.body));
  expectNoTokens(everything, []);
  expect(captured(logLines.join('')).includes(server.secretPath), 'the webhook path appears in a log line').toBe(false);
});

const logRecords = () =>
  logLines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.startsWith('{') && !l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function deps(fields: Partial<NotifyDeps> = {}): NotifyDeps & { raised: Alert[] } {
  const raised: Alert[] = [];
  return { slack: new SlackWebhook({ webhookUrl: server.url }), raise: async (alert) => void raised.push(alert), fleet, logGroupUrl: LOGS, raised, ...fields };
}

describe('the notifier', () => {
  it('posts an alert from the topic to the webhook: one post with the runner, the hosts and the next step', async () => {
    const d = deps();
    const outcome = await createHandler(d, telemetry)(snsEvent(JSON.stringify(hostMissed)), context);
    expect(outcome).toEqual({ posted: 1 });
    expect(server.received).toHaveLength(1);
    const body = server.received[0]?.body ?? '';
    for (const text of [RUNNER, 'i-0123456789abcdef0', 's_0123456789ab', 'undeliverable', 'i-0fedcba9876543210', 'timed-out', hostMissed.nextStep, 'docs/operations.md#runbook-host-missed']) {
      expect(body).toContain(JSON.stringify(text).slice(1, -1));
    }
    expect(d.raised).toEqual([]);
    expect(logRecords().find((r) => r.message === 'alert posted to Slack')).toMatchObject({ level: 'INFO', kind: 'host-missed', runner: RUNNER });
  });

  it('turns RotationFailed of a managed secret into one rotation-failed alert for raise, with the runner resolved', async () => {
    const d = deps();
    const outcome = await createHandler(d, telemetry)(await rotationEvent('rotation-failed.json'), context);
    expect(outcome).toEqual({ raised: 'rotation-failed' });
    expect(d.raised).toHaveLength(1);
    expect(d.raised[0]).toMatchObject({
      kind: 'rotation-failed',
      runner: RUNNER,
      secretId: SECRET_ARN,
      severity: 'critical',
      since: '2026-11-23T12:05:12.000Z',
      runbook: 'runbook-rotation-failed',
      logUrl: LOGS,
      reminder: false,
      hosts: [],
    });
    expect(d.raised[0]?.nextStep).toMatch(/rotate-secret log/);
    expect(d.raised[0]?.summary).toContain('RotationFailed');
    expect(server.received).toEqual([]);
  });

  it('names the runner of a failed rotation from its secret name alone, for a runner no fleet it was given lists', async () => {
    const d = deps();
    const secretId = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/night-builders-a1B2c3';
    expect(FLEET_TEXT).not.toContain('night-builders');
    await createHandler(d, telemetry)(await rotationEvent('rotation-failed.json', secretId), context);
    expect(d.raised.map((a) => [a.kind, a.runner, a.secretId])).toEqual([['rotation-failed', 'night-builders', secretId]]);
    expect(logRecords().find((r) => r.message === 'rotation failure event: alert raised (or held back as a repeat)')).toMatchObject({ runner: 'night-builders' });
  });

  it('raises RotationAbandoned as a state of its own', async () => {
    const d = deps();
    await createHandler(d, telemetry)(await rotationEvent('rotation-abandoned.json'), context);
    expect(d.raised.map((a) => [a.kind, a.stateKey])).toEqual([['rotation-failed', 'RotationAbandoned']]);
  });

  it.each([
    ['RotationSucceeded', 'rotation-succeeded.json', SECRET_ARN],
    ['a secret this service does not manage', 'rotation-failed.json', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-password-AbCdEf'],
  ])('does nothing for %s', async (_what, file, secretId) => {
    const d = deps();
    const outcome = await createHandler(d, telemetry)(await rotationEvent(file, secretId), context);
    expect(outcome).toMatchObject({ ignored: expect.any(String) });
    expect(d.raised).toEqual([]);
    expect(server.received).toEqual([]);
  });

  it('only logs the alert when no webhook is configured', async () => {
    const outcome = await createHandler(deps({ slack: undefined }), telemetry)(snsEvent(JSON.stringify(hostMissed)), context);
    expect(outcome).toEqual({ logged: 1 });
    expect(server.received).toEqual([]);
    expect(logRecords().find((r) => r.message === 'alert (no Slack webhook configured)')).toMatchObject({ alert: { runner: RUNNER, kind: 'host-missed' } });
  });

  it('throws when Slack refuses the post, so Lambda retries the delivery, and logs it without the URL', async () => {
    server.replies.push({ status: 500, body: 'internal_error' });
    await expect(createHandler(deps(), telemetry)(snsEvent(JSON.stringify(hostMissed)), context)).rejects.toBeInstanceOf(SlackWebhookError);
    expect(logRecords().find((r) => r.message === 'Slack post failed')).toMatchObject({ level: 'ERROR', runner: RUNNER, error: { name: 'SlackWebhookError' } });
  });

  it('refuses an event it does not know', async () => {
    await expect(createHandler(deps(), telemetry)({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, context)).rejects.toBeInstanceOf(InvalidInputError);
    expect(server.received).toEqual([]);
  });

  it('passes over a message on the topic that is not an alert (a CloudWatch alarm), without failing', async () => {
    const alarm = JSON.stringify({ AlarmName: 'rotate-secret-errors', NewStateValue: 'ALARM', NewStateReason: 'Threshold Crossed: 1 datapoint [2.0] was greater than the threshold (0.0).' });
    const outcome = await createHandler(deps(), telemetry)({ Records: [{ ...snsEvent(alarm).Records[0], Sns: { ...snsEvent(alarm).Records[0]?.Sns, Subject: 'ALARM: "rotate-secret-errors"' } }] }, context);
    expect(outcome).toEqual({ posted: 0 });
    expect(server.received).toEqual([]);
    expect(logRecords().find((r) => r.message === 'SNS message is not an alert of this service: not posted')).toMatchObject({ level: 'WARN', subject: 'ALARM: "rotate-secret-errors"' });
  });
});

describe('the notifier with its alert topic and ledger', () => {
  let table: FakeDynamoTable;
  let topic: AwsClientStub<SNSClient>;
  let recorder: CallRecorder;
  const client = new SNSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  /** The stack this fleet deploys: the notifier runs with its table and topic, and its role must allow each call. */
  const deployment = deploymentOf(FLEET_TEXT);
  beforeEach(() => {
    table = new FakeDynamoTable();
    topic = mockClient(client);
    recorder = new CallRecorder();
  });
  afterEach(async () => {
    topic.restore();
    table.mock.restore();
    const requests = recorder.calls.flatMap((call) => iamRequestsOf(call, deployment, []));
    expect(requests.length).toBeGreaterThan(0);
    expect(describeRefusals(await new IamEvaluator(deployment).judge(requests))).toEqual([]);
  });

  it('alerts Slack once for a rotation that keeps failing, through the topic, and reminds a day later', async () => {
    const published: PublishCommandInput[] = [];
    topic.on(PublishCommand).callsFake((input: PublishCommandInput) => {
      published.push(input);
      return { MessageId: String(published.length) };
    });
    const clock = new TestClock();
    // The notifier's own wiring (createNotifyDeps) over clients whose calls are the Notify role's.
    const env = { fleet, ledgerTableName: deployment.ledgerTableName, alertTopicArn: deployment.alertTopicArn, slackWebhookSecret: undefined, readmeUrl: undefined, rotationLogUrl: undefined };
    const clients = { sns: recorder.as('Notify', 'sns', client), dynamodb: recorder.as('Notify', 'dynamodb', table.client), secretsManager: new SecretsManagerClient({ region: 'eu-west-1' }) };
    const handler = createHandler(deps({ raise: createNotifyDeps(env, clients, clock).raise }), telemetry);
    /** What the topic's Lambda subscription delivers: the `default` text of each message, back to the notifier. */
    const deliver = async (from: number) => {
      for (const input of published.slice(from)) await handler(snsEvent((JSON.parse(input.Message ?? '{}') as { default: string }).default), context);
    };

    // Secrets Manager retries the failed step over the rotation window: each retry that fails is another event.
    for (let retry = 0; retry < 4; retry += 1) {
      await handler(await rotationEvent('rotation-failed.json'), context);
      await clock.sleep(2 * 3_600_000);
    }
    expect(published).toHaveLength(1);
    expect(published[0]?.Subject).toBe(`[gitlab-runner-rotator] rotation-failed: ${RUNNER}`);
    await deliver(0);
    expect(server.received).toHaveLength(1);
    expect(server.received[0]?.body).toContain('runbook-rotation-failed');

    await clock.sleep(24 * 3_600_000);
    await handler(await rotationEvent('rotation-failed.json'), context);
    expect(published).toHaveLength(2);
    await deliver(1);
    expect(server.received).toHaveLength(2);
    expect(server.received[1]?.body).toContain('reminder: still unresolved since');
  });

  it('names a runner from its secret name through its own wiring, and never asks Secrets Manager about the secret', async () => {
    const published: PublishCommandInput[] = [];
    topic.on(PublishCommand).callsFake((input: PublishCommandInput) => {
      published.push(input);
      return { MessageId: String(published.length) };
    });
    // The notifier's role may read the webhook secret only: any call about a runner's secret would be refused.
    const secrets = new SecretsManagerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const secretsMock = mockClient(secrets);
    const env = { fleet, ledgerTableName: deployment.ledgerTableName, alertTopicArn: deployment.alertTopicArn, slackWebhookSecret: undefined, readmeUrl: undefined, rotationLogUrl: undefined };
    const clients = { sns: recorder.as('Notify', 'sns', client), dynamodb: recorder.as('Notify', 'dynamodb', table.client), secretsManager: recorder.as('Notify', 'secretsmanager', secrets) };
    const handler = createHandler(createNotifyDeps(env, clients, new TestClock()), telemetry);
    const secretId = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/added-later-Zz9Yy8';

    expect(await handler(await rotationEvent('rotation-failed.json', secretId), context)).toEqual({ raised: 'rotation-failed' });

    expect(published.map((p) => p.Subject)).toEqual(['[gitlab-runner-rotator] rotation-failed: added-later']);
    expect(secretsMock.calls()).toHaveLength(0);
    expect(recorder.calls.filter((c) => c.service === 'secretsmanager')).toEqual([]);
    secretsMock.restore();
  });
});
