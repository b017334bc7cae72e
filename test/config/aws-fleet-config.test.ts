import { describe, expect, it } from 'vitest';
import { parseAwsFleetConfig, secretNameFromId } from '../../src/config/aws-fleet-config.ts';
import { InvalidInputError } from '../../src/core/errors.ts';

const fleet = {
  adminTokenSecrets: { 'https://gitlab.example.com/': 'gitlab-runner-rotator/admin/gitlab.example.com' },
  defaults: { reload: 'sighup', rotateEveryDays: 20 },
  runners: [
    { name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } },
    { name: 'deployers', gitlabUrl: 'https://gitlab.example.com', runnerId: 13, hosts: { instanceIds: ['i-0123456789abcdef0'] }, configPath: '/srv/runner/config.toml', reload: 'restart' },
  ],
};

describe('parseAwsFleetConfig', () => {
  it('names each secret after its runner and applies the defaults', () => {
    const config = parseAwsFleetConfig(JSON.stringify(fleet), 'fleet.aws.json');
    expect(config).toMatchObject({ secretPrefix: 'gitlab-runner-rotator/', scanEveryHours: 6, ssm: { maxConcurrency: '50', maxErrors: '100%', executionTimeoutSeconds: 120 } });
    expect(config.adminTokenSecrets).toEqual({ 'https://gitlab.example.com': 'gitlab-runner-rotator/admin/gitlab.example.com' });
    expect(config.runners[0]).toMatchObject({
      secretId: 'gitlab-runner-rotator/builders',
      reload: 'sighup',
      rotateEveryDays: 20,
      hosts: { kind: 'ec2-tag', tagKey: 'gitlab-runner', tagValue: 'builders', configPath: '/etc/gitlab-runner/config.toml' },
    });
    expect(config.runners[1]).toMatchObject({ reload: 'restart', hosts: { kind: 'ec2-instances', instanceIds: ['i-0123456789abcdef0'], configPath: '/srv/runner/config.toml' } });
  });

  it('takes strategy replace for a runner whose GitLab has an admin token secret, and refuses it for one without', () => {
    const replacing = { ...fleet, runners: [{ ...fleet.runners[0], strategy: 'replace' }, fleet.runners[1]] };
    expect(parseAwsFleetConfig(JSON.stringify(replacing), 'fleet.aws.json').runners.map((r) => r.strategy)).toEqual(['replace', 'reset']);

    const without = { ...replacing, adminTokenSecrets: {} };
    expect(() => parseAwsFleetConfig(JSON.stringify(without), 'fleet.aws.json')).toThrow(/fleet\.aws\.json: runners\[0\]\.strategy.*adminTokenSecrets for https:\/\/gitlab\.example\.com/);
  });

  it('finds the secret name in the ARN a rotation event carries', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/deployers-AbC123';
    expect(secretNameFromId(arn)).toBe('gitlab-runner-rotator/deployers');
    expect(secretNameFromId('gitlab-runner-rotator/builders')).toBe('gitlab-runner-rotator/builders');
  });

  const withRunner = (patch: Record<string, unknown>) => JSON.stringify({ runners: [{ ...fleet.runners[0], ...patch }] });
  it.each([
    ['an instance id of the wrong shape', withRunner({ hosts: { instanceIds: ['host-1'] } }), 'runners[0].hosts'],
    ['both a tag and instance ids', withRunner({ hosts: { tag: { key: 'a', value: 'b' }, instanceIds: ['i-0123456789abcdef0'] } }), 'runners[0].hosts'],
    ['a relative config path', withRunner({ configPath: 'config.toml' }), 'runners[0].configPath'],
    ['a config path with a shell metacharacter', withRunner({ configPath: '/etc/x;rm -rf' }), 'runners[0].configPath'],
    ['a scan interval of 0 hours', JSON.stringify({ ...fleet, scanEveryHours: 0 }), 'scanEveryHours'],
    ['an SSM concurrency that is not a count or a percentage', JSON.stringify({ ...fleet, ssm: { maxConcurrency: 'lots' } }), 'ssm.maxConcurrency'],
  ])('rejects %s and says where', (_name, text, where) => {
    expect(() => parseAwsFleetConfig(text, 'fleet.aws.json')).toThrow(InvalidInputError);
    expect(() => parseAwsFleetConfig(text, 'fleet.aws.json')).toThrow(where);
  });

  it('gives every fleet an alerts section: no destinations and the default thresholds when the file has none', () => {
    const config = parseAwsFleetConfig(JSON.stringify(fleet), 'fleet.aws.json');
    expect(config.alerts).toEqual({ emails: [], nearExpiryDays: 3, reminderHours: 24 });
  });

  it('reads e-mail addresses, the webhook secret name, the Chatbot channel and the thresholds of the alerts section', () => {
    const alerts = {
      emails: ['ops@example.com', 'runner-admins+alerts@example.org'],
      slackWebhookSecretName: 'gitlab-runner-rotator/slack-webhook',
      chatbot: { slackWorkspaceId: 'T0123ABCD', slackChannelId: 'C0456EFGH' },
      nearExpiryDays: 5,
      reminderHours: 12,
    };
    expect(parseAwsFleetConfig(JSON.stringify({ ...fleet, alerts }), 'fleet.aws.json').alerts).toEqual(alerts);
    expect(parseAwsFleetConfig(JSON.stringify({ ...fleet, alerts: { emails: ['ops@example.com'] } }), 'fleet.aws.json').alerts).toEqual({
      emails: ['ops@example.com'],
      nearExpiryDays: 3,
      reminderHours: 24,
    });
  });

  const withAlerts = (alerts: Record<string, unknown>) => JSON.stringify({ ...fleet, alerts });
  it.each([
    ['an e-mail address without a domain', withAlerts({ emails: ['ops@example.com', 'ops'] }), 'fleet.aws.json: alerts.emails[1]: an e-mail address'],
    ['an e-mail address listed twice', withAlerts({ emails: ['ops@example.com', 'OPS@example.com'] }), 'fleet.aws.json: alerts.emails[1]: "OPS@example.com" is listed twice'],
    ['a webhook secret given as an ARN', withAlerts({ slackWebhookSecretName: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:slack-AbCdEf' }), 'alerts.slackWebhookSecretName: a secret name'],
    ['a Chatbot channel without its workspace', withAlerts({ chatbot: { slackChannelId: 'C0456EFGH' } }), 'alerts.chatbot.slackWorkspaceId'],
    ['a Slack workspace id in lower case', withAlerts({ chatbot: { slackWorkspaceId: 't0123abcd', slackChannelId: 'C0456EFGH' } }), 'alerts.chatbot.slackWorkspaceId: a Slack workspace id'],
    ['a Slack channel name instead of its id', withAlerts({ chatbot: { slackWorkspaceId: 'T0123ABCD', slackChannelId: '#ci-alerts' } }), 'alerts.chatbot.slackChannelId: a Slack channel id'],
    ['a near-expiry threshold of 0 days', withAlerts({ nearExpiryDays: 0 }), 'alerts.nearExpiryDays'],
    ['a reminder interval of 1.5 hours', withAlerts({ reminderHours: 1.5 }), 'alerts.reminderHours'],
    ['an unknown alerts field', withAlerts({ pagerduty: 'key' }), 'alerts'],
  ])('rejects %s in the alerts section and names the field', (_name, text, message) => {
    expect(() => parseAwsFleetConfig(text, 'fleet.aws.json')).toThrow(InvalidInputError);
    expect(() => parseAwsFleetConfig(text, 'fleet.aws.json')).toThrow(message);
  });

  it('reports every problem of the file at once, the settings\' cross-field checks beside the schema\'s', () => {
    const text = JSON.stringify({
      ...fleet,
      scanEveryHours: 0,
      alerts: { emails: ['ops@example.com', 'OPS@example.com'] },
      runners: [{ ...fleet.runners[0], runnerId: undefined }, { ...fleet.runners[1], hosts: { instanceIds: ['host-1'] } }, { ...fleet.runners[1], name: 'builders', runnerId: 14 }],
    });
    let caught: unknown;
    try {
      parseAwsFleetConfig(text, 'fleet.aws.json');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    const lines = (caught as Error).message.split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^fleet\.aws\.json: scanEveryHours: /),
      'fleet.aws.json: runners[0].runnerId: missing',
      'fleet.aws.json: runners[1].hosts.instanceIds[0]: an EC2 instance id (i-0123456789abcdef0) or managed node id (mi-…)',
      'fleet.aws.json: runners[2].name: "builders" is used twice',
      'fleet.aws.json: alerts.emails[1]: "OPS@example.com" is listed twice',
    ]);
  });

  it('says "missing" for runners without hosts', () => {
    expect(() => parseAwsFleetConfig(JSON.stringify({ runners: [{ ...fleet.runners[0], hosts: undefined }] }), 'fleet.aws.json')).toThrow('fleet.aws.json: runners[0].hosts: missing');
  });
});
