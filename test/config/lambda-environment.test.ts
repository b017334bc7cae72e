import { describe, expect, it } from 'vitest';
import { cloudWatchLogGroupUrl, readNotifyEnvironment } from '../../src/config/lambda-environment.ts';
import { InvalidInputError } from '../../src/core/errors.ts';

const fleet = (alerts?: object) =>
  JSON.stringify({ runners: [{ name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 1, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } }], ...(alerts ? { alerts } : {}) });
const base = { ROTATOR_FLEET_JSON: fleet(), LEDGER_TABLE_NAME: 'ledger', ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:alerts' };

describe('readNotifyEnvironment', () => {
  it('reads the table, the topic and the optional webhook secret, README and log group', () => {
    const env = readNotifyEnvironment({
      ...base,
      SLACK_WEBHOOK_SECRET: 'gitlab-runner-rotator/slack-webhook',
      RUNBOOK_README_URL: 'https://gitlab.example.com/ops/rotator/-/blob/main/README.md',
      ROTATION_LOG_GROUP: '/aws/lambda/rotate-secret',
      AWS_REGION: 'eu-west-1',
    });
    expect(env).toMatchObject({
      ledgerTableName: 'ledger',
      alertTopicArn: base.ALERT_TOPIC_ARN,
      slackWebhookSecret: 'gitlab-runner-rotator/slack-webhook',
      readmeUrl: 'https://gitlab.example.com/ops/rotator/-/blob/main/README.md',
      rotationLogUrl: 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Frotate-secret',
    });
    expect(env.fleet.runners.map((r) => r.name)).toEqual(['builders']);
  });

  it('leaves the optional ones unset, and takes the webhook secret from the fleet file when the variable is unset', () => {
    expect(readNotifyEnvironment(base)).toMatchObject({ slackWebhookSecret: undefined, readmeUrl: undefined, rotationLogUrl: undefined });
    expect(readNotifyEnvironment({ ...base, ROTATOR_FLEET_JSON: fleet({ slackWebhookSecretName: 'ops/slack' }) }).slackWebhookSecret).toBe('ops/slack');
  });

  it.each([
    ['no topic', { ...base, ALERT_TOPIC_ARN: '' }, 'ALERT_TOPIC_ARN'],
    ['no table', { ...base, LEDGER_TABLE_NAME: undefined }, 'LEDGER_TABLE_NAME'],
    ['a README that is no URL', { ...base, RUNBOOK_README_URL: 'README.md' }, 'RUNBOOK_README_URL'],
  ])('refuses %s', (_what, env, name) => {
    expect(() => readNotifyEnvironment(env)).toThrow(InvalidInputError);
    expect(() => readNotifyEnvironment(env)).toThrow(name);
  });
});

describe('cloudWatchLogGroupUrl', () => {
  it('encodes the log group name the way the console does', () => {
    expect(cloudWatchLogGroupUrl('us-east-1', '/aws/lambda/my fn')).toBe('https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fmy$2520fn');
  });
});
