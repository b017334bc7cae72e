import { describe, expect, it } from 'vitest';
import { fleetSettingsText, parseAwsFleetConfig } from '../../src/config/aws-fleet-config.ts';
import { cloudWatchLogGroupUrl, LAMBDA_ENVIRONMENT_NAMES, readLambdaEnvironment, readNotifyEnvironment } from '../../src/config/lambda-environment.ts';
import { InvalidInputError } from '../../src/core/errors.ts';

const fleetFile = (alerts?: object) =>
  JSON.stringify({
    secretPrefix: 'ci/',
    runners: [{ name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 1, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } }],
    ...(alerts ? { alerts } : {}),
  });
/** What the stack puts in ROTATOR_SETTINGS_JSON: the fleet file without its runners. */
const settings = (alerts?: object) => fleetSettingsText(parseAwsFleetConfig(fleetFile(alerts), 'fleet.aws.json'));
const base = { ROTATOR_SETTINGS_JSON: settings(), LEDGER_TABLE_NAME: 'ledger', ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:alerts' };

describe('readLambdaEnvironment', () => {
  it('reads the fleet settings from ROTATOR_SETTINGS_JSON, a plain variable without any runner', () => {
    const env = readLambdaEnvironment({ ...base, HOST_DOCUMENT_NAME: 'update-runner-token' });
    expect(LAMBDA_ENVIRONMENT_NAMES.settingsJson).toBe('ROTATOR_SETTINGS_JSON');
    expect(env.fleet.secretPrefix).toBe('ci/');
    expect(env.fleet).not.toHaveProperty('runners');
    expect(env).toMatchObject({ ledgerTableName: 'ledger', hostDocumentName: 'update-runner-token', alertTopicArn: base.ALERT_TOPIC_ARN });
  });

  it('no longer reads a fleet compiled in as ROTATOR_FLEET_JSON: without the settings it names the variable it wants', () => {
    const env = { LEDGER_TABLE_NAME: 'ledger', HOST_DOCUMENT_NAME: 'doc', ROTATOR_FLEET_JSON: fleetFile() };
    expect(() => readLambdaEnvironment(env)).toThrow(InvalidInputError);
    expect(() => readLambdaEnvironment(env)).toThrow('environment variable ROTATOR_SETTINGS_JSON');
  });

  it.each([
    ['settings that are not JSON', '{', 'ROTATOR_SETTINGS_JSON'],
    ['settings with runners (a whole fleet file)', fleetFile(), 'ROTATOR_SETTINGS_JSON'],
    ['settings with a bad scan interval', JSON.stringify({ scanEveryHours: 48 }), 'ROTATOR_SETTINGS_JSON: scanEveryHours'],
  ])('refuses %s, naming the variable', (_what, text, where) => {
    const env = { ...base, HOST_DOCUMENT_NAME: 'doc', ROTATOR_SETTINGS_JSON: text };
    expect(() => readLambdaEnvironment(env)).toThrow(InvalidInputError);
    expect(() => readLambdaEnvironment(env)).toThrow(where);
  });
});

describe('readNotifyEnvironment', () => {
  it('reads the table, the topic and the optional webhook secret, runbook URL and log group', () => {
    const env = readNotifyEnvironment({
      ...base,
      SLACK_WEBHOOK_SECRET: 'gitlab-runner-rotator/slack-webhook',
      RUNBOOK_URL: 'https://gitlab.example.com/ops/rotator/-/blob/main/docs/operations.md',
      ROTATION_LOG_GROUP: '/aws/lambda/rotate-secret',
      AWS_REGION: 'eu-west-1',
    });
    expect(env).toMatchObject({
      ledgerTableName: 'ledger',
      alertTopicArn: base.ALERT_TOPIC_ARN,
      slackWebhookSecret: 'gitlab-runner-rotator/slack-webhook',
      readmeUrl: 'https://gitlab.example.com/ops/rotator/-/blob/main/docs/operations.md',
      rotationLogUrl: 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252Frotate-secret',
    });
    expect(env.fleet.secretPrefix).toBe('ci/');
  });

  it('leaves the optional ones unset, and takes the webhook secret from the fleet settings when the variable is unset', () => {
    expect(readNotifyEnvironment(base)).toMatchObject({ slackWebhookSecret: undefined, readmeUrl: undefined, rotationLogUrl: undefined });
    expect(readNotifyEnvironment({ ...base, ROTATOR_SETTINGS_JSON: settings({ slackWebhookSecretName: 'ops/slack' }) }).slackWebhookSecret).toBe('ops/slack');
  });

  it.each([
    ['no topic', { ...base, ALERT_TOPIC_ARN: '' }, 'ALERT_TOPIC_ARN'],
    ['no table', { ...base, LEDGER_TABLE_NAME: undefined }, 'LEDGER_TABLE_NAME'],
    ['no fleet settings', { ...base, ROTATOR_SETTINGS_JSON: undefined }, 'ROTATOR_SETTINGS_JSON'],
    ['a runbook that is no URL', { ...base, RUNBOOK_URL: 'docs/operations.md' }, 'RUNBOOK_URL'],
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
