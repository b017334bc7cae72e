import { z } from 'zod';
import { InvalidInputError } from '../core/errors.ts';
import type { ManagedRunner } from '../core/types.ts';
import { checkUniqueNames, gitlabUrl, parseJsonWith, policySchema, reloadMode, runnerBasics, runnerId, runnerName } from './config-schema.ts';

const tagKey = z.string().regex(/^[\p{L}\p{N}\s_.:/=+@-]{1,128}$/u, 'an EC2 tag key (1-128 letters, digits, spaces and _.:/=+@-)');
const tagValue = z.string().regex(/^[\p{L}\p{N}\s_.:/=+@-]{0,256}$/u, 'an EC2 tag value (0-256 letters, digits, spaces and _.:/=+@-)');
const instanceId = z.string().regex(/^(i|mi)-[0-9a-f]{8,17}$/, 'an EC2 instance id (i-0123456789abcdef0) or managed node id (mi-…)');
const configPath = z.string().regex(/^\/[A-Za-z0-9._/-]+$/, 'an absolute path of letters, digits and ._/-');
const ssmPercentOrCount = z.string().regex(/^([1-9][0-9]{0,4}|[1-9][0-9]?%|100%)$/, 'a count (1-99999) or a percentage (1%-100%)');

/** A Secrets Manager secret name (not an ARN): the characters Secrets Manager allows in a name. */
const secretName = z.string().regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/, 'a secret name (1-512 letters, digits and /_+=.@-), not an ARN');

/**
 * Where alerts go. The SNS topic always exists (CloudWatch alarms publish to it); each field adds a way out
 * of it. Slack ids are the ones AWS Chatbot takes (workspace `T…`, channel `C…`).
 */
const alertsSchema = z
  .object({
    emails: z.array(z.email('an e-mail address (name@example.com)')).max(100).default([]),
    slackWebhookSecretName: secretName.optional(),
    chatbot: z
      .object({
        slackWorkspaceId: z.string().regex(/^[0-9A-Z]{1,255}$/, 'a Slack workspace id (upper-case letters and digits, e.g. T0123ABCD)'),
        slackChannelId: z.string().regex(/^[A-Za-z0-9]{1,255}$/, 'a Slack channel id (letters and digits, e.g. C0123ABCD)'),
      })
      .strict()
      .optional(),
    nearExpiryDays: z.number().int().min(1).max(365).default(3),
    reminderHours: z.number().int().min(1).max(168).default(24),
  })
  .strict();

const hostsSchema = z.union([
  z.object({ tag: z.object({ key: tagKey, value: tagValue }).strict() }).strict(),
  z.object({ instanceIds: z.array(instanceId).min(1, 'list at least one instance').max(1000) }).strict(),
]);

const awsFleetSchema = z
  .object({
    secretPrefix: z.string().regex(/^[A-Za-z0-9/_+=.@-]{0,200}$/, 'letters, digits and /_+=.@- only').default('gitlab-runner-rotator/'),
    scanEveryHours: z.number().int().min(1).max(24).default(6),
    adminTokenSecrets: z.record(gitlabUrl, z.string().min(1)).default({}),
    ssm: z
      .object({
        maxConcurrency: ssmPercentOrCount.default('50'),
        maxErrors: ssmPercentOrCount.default('100%'),
        executionTimeoutSeconds: z.number().int().min(30).max(3600).default(120),
      })
      .strict()
      .default({ maxConcurrency: '50', maxErrors: '100%', executionTimeoutSeconds: 120 }),
    defaults: z
      .object({
        reload: reloadMode.optional(),
        policy: policySchema.optional(),
        configPath: configPath.optional(),
        rotateEveryDays: z.number().int().min(1).max(1000).optional(),
      })
      .strict()
      .optional(),
    runners: z
      .array(
        z
          .object({
            name: runnerName,
            gitlabUrl,
            runnerId,
            hosts: hostsSchema,
            configPath: configPath.optional(),
            reload: reloadMode.optional(),
            policy: policySchema.optional(),
            rotateEveryDays: z.number().int().min(1).max(1000).optional(),
          })
          .strict(),
      )
      .min(1, 'list at least one runner'),
    alerts: alertsSchema.optional(),
  })
  .strict();

export type AwsFleetInput = z.input<typeof awsFleetSchema>;

export interface AwsManagedRunner extends ManagedRunner {
  /** Secrets Manager's own schedule: a backstop behind the scanner's expiry checks. */
  rotateEveryDays: number;
}

export interface AwsFleetConfig {
  secretPrefix: string;
  scanEveryHours: number;
  /** Per GitLab url (no trailing slash): the name or ARN of the secret holding an admin access token. */
  adminTokenSecrets: Record<string, string>;
  ssm: { maxConcurrency: string; maxErrors: string; executionTimeoutSeconds: number };
  runners: AwsManagedRunner[];
  alerts: AwsAlertsConfig;
}

/** The fleet file's `alerts` section, with its defaults (present, and empty of destinations, when the file has none). */
export interface AwsAlertsConfig {
  /** E-mail addresses subscribed to the alert topic (each confirms its subscription once). */
  emails: string[];
  /** Name of the secret holding the Slack incoming-webhook URL (created and filled by the operator, never by the stack). */
  slackWebhookSecretName?: string;
  /** AWS Chatbot relays the topic to this Slack channel (the workspace is authorized once in the Chatbot console). */
  chatbot?: { slackWorkspaceId: string; slackChannelId: string };
  /** Alert when a managed runner's token expires within this many days. Default 3. */
  nearExpiryDays: number;
  /** Repeat an alert whose state persists after this many hours. Default 24. */
  reminderHours: number;
}

/** The tag every managed secret carries, with the runner's name as its value: how the scanner finds them. */
export const MANAGED_SECRET_TAG_KEY = 'gitlab-runner-rotator:runner';

const DEFAULT_CONFIG_PATH = '/etc/gitlab-runner/config.toml';

/**
 * The AWS engine's fleet file (JSON): read by the CDK app at synth time and, the same text, by the
 * Lambdas at start. Each runner's secret is named `<secretPrefix><name>`.
 */
export function parseAwsFleetConfig(text: string, path: string): AwsFleetConfig {
  const fleet = parseJsonWith(awsFleetSchema, text, path);
  checkUniqueNames(fleet.runners, path);
  const runners = fleet.runners.map((runner, index): AwsManagedRunner => {
    const hostConfigPath = runner.configPath ?? fleet.defaults?.configPath ?? DEFAULT_CONFIG_PATH;
    return {
      ...runnerBasics(runner, fleet.defaults, `${path}: runners[${index}]`),
      secretId: `${fleet.secretPrefix}${runner.name}`,
      hosts:
        'tag' in runner.hosts
          ? { kind: 'ec2-tag', tagKey: runner.hosts.tag.key, tagValue: runner.hosts.tag.value, configPath: hostConfigPath }
          : { kind: 'ec2-instances', instanceIds: runner.hosts.instanceIds, configPath: hostConfigPath },
      rotateEveryDays: runner.rotateEveryDays ?? fleet.defaults?.rotateEveryDays ?? 30,
    };
  });
  const adminTokenSecrets = Object.fromEntries(Object.entries(fleet.adminTokenSecrets).map(([url, secret]) => [url.replace(/\/+$/, ''), secret]));
  const alerts = fleet.alerts ?? alertsSchema.parse({});
  checkUniqueEmails(alerts.emails, path);
  return {
    secretPrefix: fleet.secretPrefix,
    scanEveryHours: fleet.scanEveryHours,
    adminTokenSecrets,
    ssm: fleet.ssm,
    runners,
    alerts: {
      emails: alerts.emails,
      ...(alerts.slackWebhookSecretName === undefined ? {} : { slackWebhookSecretName: alerts.slackWebhookSecretName }),
      ...(alerts.chatbot === undefined ? {} : { chatbot: alerts.chatbot }),
      nearExpiryDays: alerts.nearExpiryDays,
      reminderHours: alerts.reminderHours,
    },
  };
}

/** Each address once: a second subscription of the same address would only double every e-mail. */
function checkUniqueEmails(emails: string[], path: string): void {
  const seen = new Set<string>();
  emails.forEach((email, index) => {
    const key = email.toLowerCase();
    if (seen.has(key)) throw new InvalidInputError(`${path}: alerts.emails[${index}]`, `"${email}" is listed twice`);
    seen.add(key);
  });
}

/**
 * The secret name behind a secret id: Secrets Manager hands rotation hooks the ARN, whose last part is the
 * name plus a dash and six random characters.
 */
export function secretNameFromId(secretId: string): string {
  const match = /^arn:[^:]+:secretsmanager:[^:]*:\d*:secret:(.+)-[A-Za-z0-9]{6}$/.exec(secretId);
  return match?.[1] ?? secretId;
}

/** The managed runner a secret (name or ARN) belongs to. */
export function runnerForSecret(config: AwsFleetConfig, secretId: string): AwsManagedRunner | undefined {
  const name = secretNameFromId(secretId);
  return config.runners.find((r) => r.secretId === name);
}
