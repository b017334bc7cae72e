import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SnsAlertSink, alertSubject, alertsFromSnsEvent, parseAlertMessage } from '../../../src/adapters/aws/sns-alert-sink.ts';
import { buildAlert } from '../../../src/core/alert-rules.ts';
import { alertText } from '../../../src/core/alert-text.ts';
import type { Alert } from '../../../src/core/alerts.ts';
import { InvalidInputError } from '../../../src/core/errors.ts';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:gitlab-runner-rotator-alerts';
const client = new SNSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const sns = mockClient(client);
afterEach(() => sns.reset());

const alert: Alert = buildAlert('host-missed', { engine: 'aws',
  runner: 'builders',
  secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf',
  summary: '1 of 3 host(s) of runner builders did not take the new token and cannot take jobs',
  hosts: [{ host: 'i-0123456789abcdef0', systemId: 's_0123456789ab', status: 'undeliverable', detail: 'SSM agent offline' }],
  now: new Date('2026-11-23T12:05:12.000Z'),
  logUrl: 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups',
});

describe('SnsAlertSink', () => {
  it('publishes one message: the Alert JSON by default, its text for e-mail, kind and severity as attributes', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    await new SnsAlertSink(client, TOPIC).publish(alert);
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      TopicArn: TOPIC,
      Subject: '[gitlab-runner-rotator] host-missed: builders',
      MessageStructure: 'json',
      Message: JSON.stringify({ default: JSON.stringify(alert), email: alertText(alert) }),
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'host-missed' },
        severity: { DataType: 'String', StringValue: 'critical' },
      },
    });
  });

  it('writes a default message that the notifier reads back as the same alert', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    await new SnsAlertSink(client, TOPIC).publish(alert);
    const message = JSON.parse(sns.commandCalls(PublishCommand)[0]?.args[0].input.Message ?? '{}') as { default: string };
    expect(parseAlertMessage(message.default)).toEqual(alert);
  });

  it('names the runbook URL the deployment configured in the e-mail', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    await new SnsAlertSink(client, TOPIC, { readmeUrl: 'https://example.com/rotator/docs/operations.md' }).publish(alert);
    const message = JSON.parse(sns.commandCalls(PublishCommand)[0]?.args[0].input.Message ?? '{}') as { email: string };
    expect(message.email).toContain('https://example.com/rotator/docs/operations.md#runbook-host-missed');
  });

  it('lets a failed publish through unchanged, so the alert is not recorded as sent', async () => {
    const failure = Object.assign(new Error('Topic does not exist'), { name: 'NotFoundException' });
    sns.on(PublishCommand).rejects(failure);
    await expect(new SnsAlertSink(client, TOPIC).publish(alert)).rejects.toBe(failure);
  });
});

describe('alertSubject', () => {
  it('keeps to the SNS rules with a very long runner name: under 100 characters, one line, printable ASCII', () => {
    const runner = `${'very-long-runner-name-'.repeat(10)}\nwith a newline, a tab\tand ünïcødé ✓`;
    for (const reminder of [false, true]) {
      const subject = alertSubject({ ...alert, runner, reminder });
      expect(subject.length).toBeLessThan(100);
      expect(subject).toMatch(/^[\x20-\x7e]+$/);
      expect(subject).toMatch(reminder ? /^\[gitlab-runner-rotator\] reminder: host-missed: very-long-runner-name-/ : /^\[gitlab-runner-rotator\] host-missed: very-long/);
      expect(subject.endsWith('...')).toBe(true);
    }
  });

  it('replaces what is not ASCII in a short subject and leaves the rest as it is', () => {
    expect(alertSubject({ ...alert, runner: 'bäuer\nbuilders' })).toBe('[gitlab-runner-rotator] host-missed: b?uer builders');
  });
});

describe('parseAlertMessage', () => {
  it.each([
    ['not JSON', 'hello'],
    ['an unknown kind', JSON.stringify({ ...alert, kind: 'disk-full' })],
    ['no severity', JSON.stringify({ ...alert, severity: 'info' })],
    ['no runner', JSON.stringify({ ...alert, runner: undefined })],
    ['hosts that are not hosts', JSON.stringify({ ...alert, hosts: [{ name: 'x' }] })],
    ['an array', '[]'],
  ])('refuses a message with %s', (_what, message) => {
    expect(() => parseAlertMessage(message)).toThrow(InvalidInputError);
  });
});

describe('alertsFromSnsEvent', () => {
  const record = (Message: string, Subject?: string) => ({ EventSource: 'aws:sns', Sns: { Message, Subject } });

  it('reads the alerts of an SNS delivery and sets the other messages apart', () => {
    const delivery = alertsFromSnsEvent({ Records: [record(JSON.stringify(alert)), record('{"AlarmName":"x"}', 'ALARM: "x"')] });
    expect(delivery?.alerts).toEqual([alert]);
    expect(delivery?.others).toEqual([{ subject: 'ALARM: "x"', problem: expect.stringContaining('not an alert of this service') }]);
  });

  it('answers undefined for an event that is not an SNS delivery', () => {
    expect(alertsFromSnsEvent({ source: 'aws.secretsmanager', detail: {} })).toBeUndefined();
    expect(alertsFromSnsEvent({ Records: [{ s3: {} }] })).toBeUndefined();
    expect(alertsFromSnsEvent(null)).toBeUndefined();
  });
});
