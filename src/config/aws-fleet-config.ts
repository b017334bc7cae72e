import { z } from 'zod';
import type { ManagedRunner } from '../core/types.ts';
import { checkUniqueNames, gitlabUrl, parseJsonWith, policySchema, reloadMode, runnerBasics, runnerId, runnerName } from './config-schema.ts';

const tagKey = z.string().regex(/^[\p{L}\p{N}\s_.:/=+@-]{1,128}$/u, 'an EC2 tag key (1-128 letters, digits, spaces and _.:/=+@-)');
const tagValue = z.string().regex(/^[\p{L}\p{N}\s_.:/=+@-]{0,256}$/u, 'an EC2 tag value (0-256 letters, digits, spaces and _.:/=+@-)');
const instanceId = z.string().regex(/^(i|mi)-[0-9a-f]{8,17}$/, 'an EC2 instance id (i-0123456789abcdef0) or managed node id (mi-…)');
const configPath = z.string().regex(/^\/[A-Za-z0-9._/-]+$/, 'an absolute path of letters, digits and ._/-');
const ssmPercentOrCount = z.string().regex(/^([1-9][0-9]{0,4}|[1-9][0-9]?%|100%)$/, 'a count (1-99999) or a percentage (1%-100%)');

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
  return { secretPrefix: fleet.secretPrefix, scanEveryHours: fleet.scanEveryHours, adminTokenSecrets, ssm: fleet.ssm, runners };
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
