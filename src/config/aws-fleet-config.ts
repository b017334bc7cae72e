import * as z from 'zod/mini';
import { InvalidInputError, type InputProblem } from '../core/errors.ts';
import type { ManagedRunner } from '../core/types.ts';
import { checkJsonWith, duplicateRunnerProblems, gitlabUrl, isRecord, parseJsonWith, replaceWithoutTokenProblems, runnerBasics, runnerDefaultsShape, runnerEntries, runnerShape } from './config-schema.ts';

/**
 * Runners the scanner reads at once (each: GitLab's managers, one secret value, two ledger reads). At
 * 50 ms a GitLab call, 32 scan 10,000 runners in well under a minute (`npm run bench`); each is an open
 * socket to GitLab and a request GitLab serves at the same time, so a small self-managed GitLab may want
 * fewer. GitLab's rate limit is kept by pacing, not by this number; it is also the most requests the
 * pacing lets be in flight to one GitLab url (halved on a 429, grown back on successes).
 */
export const DEFAULT_SCAN_CONCURRENCY = 32;
/** Scan workers at once (the SQS event source's maximum concurrency; Lambda allows 2-1000). */
export const DEFAULT_SCAN_WORKERS = 4;
/** Runners per scan message: one worker invocation scans one message's runners. */
export const DEFAULT_SCAN_BATCH_SIZE = 25;

const tagKey = z.string().check(z.regex(/^[\p{L}\p{N}\s_.:/=+@-]{1,128}$/u, 'an EC2 tag key (1-128 letters, digits, spaces and _.:/=+@-)'));
const tagValue = z.string().check(z.regex(/^[\p{L}\p{N}\s_.:/=+@-]{0,256}$/u, 'an EC2 tag value (0-256 letters, digits, spaces and _.:/=+@-)'));
const instanceId = z.string().check(z.regex(/^(i|mi)-[0-9a-f]{8,17}$/, 'an EC2 instance id (i-0123456789abcdef0) or managed node id (mi-…)'));
const configPath = z.string().check(z.regex(/^\/[A-Za-z0-9._/-]+$/, 'an absolute path of letters, digits and ._/-'));
const ssmPercentOrCount = z.string().check(z.regex(/^([1-9][0-9]{0,4}|[1-9][0-9]?%|100%)$/, 'a count (1-99999) or a percentage (1%-100%)'));

/** The ABAC value shared by a runner's secret and its hosts' role (tag gitlab-runner-rotator:host-group). */
const hostGroup = z.string().check(z.regex(/^[A-Za-z0-9_.:/=+@-]{1,128}$/, 'a tag value (1-128 letters, digits and _.:/=+@-)'));

/** A Secrets Manager secret name (not an ARN): the characters Secrets Manager allows in a name. */
const secretName = z.string().check(z.regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/, 'a secret name (1-512 letters, digits and /_+=.@-), not an ARN'));

/**
 * Where alerts go. The SNS topic always exists (CloudWatch alarms publish to it); each field adds a way out
 * of it. Slack ids are the ones AWS Chatbot takes (workspace `T…`, channel `C…`).
 */
/** An integer from `min` to `max`. */
const intIn = (min: number, max: number) => z.int().check(z.gte(min), z.lte(max));

const alertsSchema = z.strictObject({
  emails: z._default(z.array(z.email('an e-mail address (name@example.com)')).check(z.maxLength(100)), []),
  slackWebhookSecretName: z.optional(secretName),
  chatbot: z.optional(
    z.strictObject({
      slackWorkspaceId: z.string().check(z.regex(/^[0-9A-Z]{1,255}$/, 'a Slack workspace id (upper-case letters and digits, e.g. T0123ABCD)')),
      slackChannelId: z.string().check(z.regex(/^[A-Za-z0-9]{1,255}$/, 'a Slack channel id (letters and digits, e.g. C0123ABCD)')),
    }),
  ),
  nearExpiryDays: z._default(intIn(1, 365), 3),
  reminderHours: z._default(intIn(1, 168), 24),
});

const hostsSchema = z.union(
  [
    z.strictObject({ tag: z.strictObject({ key: tagKey, value: tagValue }) }),
    // 400: what the secret's tags can record (runner-tags.ts MAX_INSTANCE_IDS); more hosts are a tag's job.
    z.strictObject({ instanceIds: z.array(instanceId).check(z.minLength(1, 'list at least one instance'), z.maxLength(400, 'list at most 400 instance ids; choose the hosts by a tag instead')) }),
  ],
  // zod's own union message is a bare "Invalid input": say what either shape is.
  { error: 'expected {"tag": {"key": …, "value": …}} or {"instanceIds": [1-400 ids such as "i-0123456789abcdef0"]}' },
);

/** The stack name and secret prefix of a fleet file that names neither: one fleet per account and region. */
export const DEFAULT_STACK_NAME = 'GitLabRunnerRotator';
export const DEFAULT_SECRET_PREFIX = 'gitlab-runner-rotator/';

/**
 * A CloudFormation stack name (a letter, then letters, digits and hyphens: CloudFormation API reference,
 * CreateStack StackName), short enough that the names derived from it fit (`<stack>-RunnerDoctor`, an SSM
 * document name of at most 128; `<stack>-converge-<runner>`, an association name), and not starting with
 * aws, amazon or amzn, which SSM reserves as document name prefixes (SSM API reference, CreateDocument Name).
 */
const stackName = z.string().check(
  z.regex(/^(?!aws|amazon|amzn)[a-z][a-z0-9-]{0,63}$/i, 'a CloudFormation stack name: a letter, then at most 63 letters, digits and -, not starting with aws, amazon or amzn'),
);

/** The fleet-wide settings: everything of the fleet file but its runners (and their defaults). */
const settingsShape = {
  stackName: z.optional(stackName),
  secretPrefix: z.optional(z.string().check(z.regex(/^[A-Za-z0-9/_+=.@-]{0,200}$/, 'letters, digits and /_+=.@- only'))),
  metrics: z._default(z.strictObject({ perRunnerDaysToExpiry: z._default(z.boolean(), false) }), { perRunnerDaysToExpiry: false }),
  scanEveryHours: z._default(intIn(1, 24), 6),
  convergeEveryHours: z._default(intIn(0, 24), 1),
  scanConcurrency: z._default(intIn(1, 256), DEFAULT_SCAN_CONCURRENCY),
  scanWorkers: z._default(intIn(2, 100), DEFAULT_SCAN_WORKERS),
  scanBatchSize: z._default(intIn(1, 100), DEFAULT_SCAN_BATCH_SIZE),
  gitlabRequestsPerMinute: z.optional(z.int().check(z.gte(1))),
  adminTokenSecrets: z._default(z.record(gitlabUrl, z.string().check(z.minLength(1))), {}),
  ssm: z._default(
    z.strictObject({
      maxConcurrency: z._default(ssmPercentOrCount, '50'),
      maxErrors: z._default(ssmPercentOrCount, '100%'),
      executionTimeoutSeconds: z._default(intIn(30, 3600), 120),
    }),
    { maxConcurrency: '50', maxErrors: '100%', executionTimeoutSeconds: 120 },
  ),
  alerts: z.optional(alertsSchema),
};

const awsFleetSchema = z.strictObject({
  ...settingsShape,
  defaults: z.optional(
    z.strictObject({
      ...runnerDefaultsShape,
      configPath: z.optional(configPath),
      rotateEveryDays: z.optional(intIn(1, 1000)),
    }),
  ),
  runners: z
    .array(
      z.strictObject({
        ...runnerShape,
        hosts: hostsSchema,
        configPath: z.optional(configPath),
        rotateEveryDays: z.optional(intIn(1, 1000)),
        hostGroup: z.optional(hostGroup),
      }),
    )
    .check(z.minLength(1, 'list at least one runner')),
});

export type AwsFleetInput = z.input<typeof awsFleetSchema>;

export interface AwsManagedRunner extends ManagedRunner {
  /** Secrets Manager's own schedule: a backstop behind the scanner's expiry checks. */
  rotateEveryDays: number;
  /**
   * Which host roles may read the secret (attribute-based: the secret and the role carry the tag
   * `gitlab-runner-rotator:host-group` with this value; the stack's one HostReadPolicy compares them).
   * Default: the runner's name. Runners whose hosts share one instance role (several runners in one
   * config.toml) name one group.
   */
  hostGroup: string;
}

/** The fleet file without its runners: what every Lambda is configured with (see fleetSettingsText). */
export type AwsFleetSettings = Omit<AwsFleetConfig, 'runners'>;

export interface AwsFleetConfig {
  /**
   * The CloudFormation stack (default GitLabRunnerRotator); the names the stack fixes derive from it (the
   * doctor document, the dashboard, the Chatbot channel, the associations), so two fleets with two stack
   * names deploy side by side in one account and region.
   */
  stackName: string;
  /**
   * Each runner's secret is `<secretPrefix><name>` (default `gitlab-runner-rotator/`), and every grant of the
   * stack covers this prefix only. A fleet that names its own stackName must name its secretPrefix too, and two
   * fleets of one account must use prefixes neither of which starts the other.
   */
  secretPrefix: string;
  /**
   * `perRunnerDaysToExpiry`: the scan worker also emits `DaysToExpiry` with a `Runner` dimension for every
   * runner whose token has an expiry. Off by default: each runner is then a custom metric of its own
   * ($0.30 a month each, $3,000 a month at 10,000 runners); the fleet-wide MinDaysToExpiry and the
   * near-expiry alert cover the same need at a flat cost.
   */
  metrics: { perRunnerDaysToExpiry: boolean };
  scanEveryHours: number;
  /**
   * How often State Manager re-applies each runner's AWSCURRENT token to its hosts (RunnerConvergence):
   * 1-24 hours, default 1; 0 creates no association (hosts then get a token only from rotations and the
   * scanner's re-push). A host already current answers `already-current` at the cost of three
   * GetSecretValue calls; a new instance in a runner's targets is served when it joins, whatever the cadence.
   */
  convergeEveryHours: number;
  /** Runners scanned at once by one scan worker. Default 32. */
  scanConcurrency: number;
  /**
   * Scan workers running at once (2-100, default 4): the scan's SQS event source's maximum concurrency.
   * They share one GitLab rate budget per url (dynamodb-rate-budget.ts), so more workers finish sooner only
   * until GitLab's limit (or `gitlabRequestsPerMinute`) is the bound.
   */
  scanWorkers: number;
  /** Runners per scan message (1-100, default 25): one worker invocation scans one message. */
  scanBatchSize: number;
  /**
   * A budget of GitLab requests a minute per GitLab url, shared by all scan workers (dynamodb-rate-budget.ts)
   * and kept by each process's pacing as well. Unset: the
   * adapter learns the limit from GitLab's answers only: it waits out each 429's Retry-After and halves its
   * requests in flight (self-managed GitLab sends RateLimit-* with the 429 only), and follows RateLimit-*
   * on every reply where the instance sends them. Set it (below GitLab's limit) to avoid even those 429s.
   */
  gitlabRequestsPerMinute: number | undefined;
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
  const { data: fleet, raw, problems } = checkJsonWith(awsFleetSchema, text, path);
  const entries = runnerEntries(raw);
  const tokenUrls = adminTokenUrls(raw);
  problems.push(
    ...duplicateRunnerProblems(entries, path),
    ...replaceWithoutTokenProblems(entries, (url) => tokenUrls.includes(url), path, 'name its secret in adminTokenSecrets'),
    ...settingsProblems(raw, path),
  );
  InvalidInputError.throwIfAny(problems);
  if (fleet === undefined) throw new InvalidInputError(path, 'invalid');
  const settings = settingsFrom(fleet, path);
  const runners = fleet.runners.map((runner, index): AwsManagedRunner => {
    const hostConfigPath = runner.configPath ?? fleet.defaults?.configPath ?? DEFAULT_CONFIG_PATH;
    return {
      ...runnerBasics(runner, fleet.defaults, `${path}: runners[${index}]`),
      secretId: `${settings.secretPrefix}${runner.name}`,
      hosts:
        'tag' in runner.hosts
          ? { kind: 'ec2-tag', tagKey: runner.hosts.tag.key, tagValue: runner.hosts.tag.value, configPath: hostConfigPath }
          : { kind: 'ec2-instances', instanceIds: runner.hosts.instanceIds, configPath: hostConfigPath },
      rotateEveryDays: runner.rotateEveryDays ?? fleet.defaults?.rotateEveryDays ?? 30,
      hostGroup: runner.hostGroup ?? runner.name,
    };
  });
  return { ...settings, runners };
}

const awsSettingsSchema = z.strictObject(settingsShape);

/**
 * The fleet-wide settings as the Lambdas receive them: the fleet file without runners, as JSON, in an
 * environment variable (ROTATOR_SETTINGS_JSON). Lambda allows 4 KB of variables in all: the stack refuses
 * settings over FLEET_SETTINGS_MAX_BYTES. The runners are the secrets' tags (runner-tags.ts).
 */
export function fleetSettingsText(settings: AwsFleetSettings): string {
  const { stackName, secretPrefix, metrics, scanEveryHours, scanConcurrency, scanWorkers, scanBatchSize, gitlabRequestsPerMinute, adminTokenSecrets, ssm, alerts } = settings;
  // Only what a function reads: the e-mail subscriptions, the Chatbot channel and the convergence cadence are
  // the stack's alone, and up to 100 addresses would not fit the environment (Lambda's 4 KB).
  const { slackWebhookSecretName, nearExpiryDays, reminderHours } = alerts;
  const functionAlerts = { ...(slackWebhookSecretName === undefined ? {} : { slackWebhookSecretName }), nearExpiryDays, reminderHours };
  return JSON.stringify({ stackName, secretPrefix, metrics, scanEveryHours, scanConcurrency, scanWorkers, scanBatchSize, ...(gitlabRequestsPerMinute === undefined ? {} : { gitlabRequestsPerMinute }), adminTokenSecrets, ssm, alerts: functionAlerts });
}

/** Leaves the other variables (table, document, topic names, Powertools, NODE_OPTIONS) about 1.5 KB of Lambda's 4 KB. */
export const FLEET_SETTINGS_MAX_BYTES = 2_500;

/** Reads what fleetSettingsText wrote (or the settings part of a fleet file). */
export function parseAwsFleetSettings(text: string, path: string): AwsFleetSettings {
  const settings = parseJsonWith(awsSettingsSchema, text, path);
  InvalidInputError.throwIfAny(settingsProblems(JSON.parse(text), path));
  return settingsFrom(settings, path);
}

/** The admin token urls of a fleet file's JSON as the runners' urls are compared with them (no trailing slash). */
function adminTokenUrls(raw: unknown): string[] {
  const secrets = isRecord(raw) && isRecord(raw.adminTokenSecrets) ? raw.adminTokenSecrets : {};
  return Object.keys(secrets).map((url) => url.replace(/\/+$/, ''));
}

/**
 * The settings' cross-field checks. An admin token url once, with or without its trailing slash. Each
 * e-mail address once: a second subscription of the same address would only double every e-mail.
 */
function settingsProblems(raw: unknown, path: string): InputProblem[] {
  const problems: InputProblem[] = [];
  const seenUrls = new Set<string>();
  for (const key of adminTokenUrls(raw)) {
    if (seenUrls.has(key)) problems.push({ where: `${path}: adminTokenSecrets`, problem: `${key} is named twice (with and without a trailing slash)` });
    seenUrls.add(key);
  }
  const alerts = isRecord(raw) && isRecord(raw.alerts) ? raw.alerts : {};
  const emails = Array.isArray(alerts.emails) ? (alerts.emails as unknown[]) : [];
  const seenEmails = new Set<string>();
  emails.forEach((email, index) => {
    if (typeof email !== 'string') return;
    const key = email.toLowerCase();
    if (seenEmails.has(key)) problems.push({ where: `${path}: alerts.emails[${index}]`, problem: `"${email}" is listed twice` });
    seenEmails.add(key);
  });
  return problems;
}

function settingsFrom(fleet: z.infer<typeof awsSettingsSchema>, path: string): AwsFleetSettings {
  const adminTokenSecrets: Record<string, string> = {};
  for (const [url, secret] of Object.entries(fleet.adminTokenSecrets)) adminTokenSecrets[url.replace(/\/+$/, '')] = secret;
  const alerts = fleet.alerts ?? alertsSchema.parse({});
  return {
    stackName: fleet.stackName ?? DEFAULT_STACK_NAME,
    secretPrefix: secretPrefixOf(fleet, path),
    metrics: fleet.metrics,
    scanEveryHours: fleet.scanEveryHours,
    convergeEveryHours: fleet.convergeEveryHours,
    scanConcurrency: fleet.scanConcurrency,
    scanWorkers: fleet.scanWorkers,
    scanBatchSize: fleet.scanBatchSize,
    gitlabRequestsPerMinute: fleet.gitlabRequestsPerMinute,
    adminTokenSecrets,
    ssm: fleet.ssm,
    alerts: {
      emails: alerts.emails,
      ...(alerts.slackWebhookSecretName === undefined ? {} : { slackWebhookSecretName: alerts.slackWebhookSecretName }),
      ...(alerts.chatbot === undefined ? {} : { chatbot: alerts.chatbot }),
      nearExpiryDays: alerts.nearExpiryDays,
      reminderHours: alerts.reminderHours,
    },
  };
}

/**
 * The fleet's secret prefix. A fleet that names its own stack (a second fleet in the account, most likely)
 * must name its prefix as well: with the default one, its scanner and grants would cover the first fleet's
 * secrets too (both find their secrets by the runner tag under the prefix).
 */
function secretPrefixOf(fleet: { stackName?: string; secretPrefix?: string }, path: string): string {
  if (fleet.secretPrefix !== undefined) return fleet.secretPrefix;
  if (fleet.stackName !== undefined && fleet.stackName !== DEFAULT_STACK_NAME) {
    throw new InvalidInputError(
      `${path}: secretPrefix`,
      `is not set, but stackName is "${fleet.stackName}": name this fleet's own prefix (e.g. "${fleet.stackName}/"), one that neither starts nor is started by another fleet's prefix in the account (default ${DEFAULT_SECRET_PREFIX})`,
    );
  }
  return DEFAULT_SECRET_PREFIX;
}

/**
 * The secret name behind a secret id: Secrets Manager hands rotation hooks the ARN, whose last part is the
 * name plus a dash and six random characters.
 */
export function secretNameFromId(secretId: string): string {
  const match = /^arn:[^:]+:secretsmanager:[^:]*:\d*:secret:(.+)-[A-Za-z0-9]{6}$/.exec(secretId);
  return match?.[1] ?? secretId;
}
