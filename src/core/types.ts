/** Shapes shared by the core, the adapters and the CLI. Nothing here does I/O. */

/** The secret stages of AWS Secrets Manager; the local file store uses the same names. */
export type VersionStage = 'AWSCURRENT' | 'AWSPENDING' | 'AWSPREVIOUS';

/** The four steps of a Secrets Manager rotation hook. */
export type RotationStep = 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
export const ROTATION_STEPS: readonly RotationStep[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

/**
 * How a runner's token is renewed. `reset` (default): GitLab issues a new token for the same runner and
 * the old one dies at once, so hosts are offline until they hold the new one (the outage window).
 * `replace`: a new runner is created beside the old one with the same settings, added on every host,
 * confirmed through each host's runner manager, and only then is the old runner removed and deleted:
 * no outage window, but it needs an access token that may create and delete runners.
 */
export type RotationStrategy = 'reset' | 'replace';

/** How a host's gitlab-runner picks up a new config.toml. */
export type ReloadMode = 'sighup' | 'restart' | 'none';

/**
 * The value stored in each version of a runner's secret (JSON). It identifies the runner so that a
 * rotation needs nothing else: DESIGN.md "createSecret: read AWSCURRENT (runner id, GitLab url, token)".
 */
export interface RunnerSecretValue {
  runnerId: number;
  gitlabUrl: string;
  token: string;
  /** ISO 8601 from GitLab's `token_expires_at`; null where GitLab sets no expiry. */
  tokenExpiresAt: string | null;
  /** ISO 8601: when GitLab issued this token (the reset reply), or when it was adopted. */
  tokenObtainedAt: string;
}

/** A token as GitLab hands it out: reset, create, legacy register. */
export interface IssuedToken {
  token: string;
  tokenExpiresAt: string | null;
}

/** One runner-manager record from `GET /runners/:id/managers`. */
export interface RunnerManager {
  systemId: string;
  contactedAt: string | null;
  status: string;
  version: string | null;
  ipAddress: string | null;
}

export type RunnerType = 'instance_type' | 'group_type' | 'project_type';
export type RunnerAccessLevel = 'not_protected' | 'ref_protected';

/**
 * What a runner is set up to do: the fields `POST /user/runners` takes and `GET /runners/:id` returns.
 * A replacement runner is created with the old one's settings.
 */
export interface RunnerSettings {
  runnerType: RunnerType;
  /** The group of a group_type runner. */
  groupId: number | null;
  /** Every project a project_type runner is enabled on (the first one owns it). */
  projectIds: number[];
  description: string;
  tagList: string[];
  runUntagged: boolean;
  locked: boolean;
  accessLevel: RunnerAccessLevel;
  /** Seconds; null where the runner sets none. */
  maximumTimeout: number | null;
  paused: boolean;
  maintenanceNote: string | null;
}

/** What `GET /runners/:id` says about a runner (access token needed). */
export interface RunnerDetails extends RunnerSettings {
  id: number;
  status: string;
  contactedAt: string | null;
}

/** One host of the local engine: a config.toml on this machine, with a name for reports. */
export interface HostTarget {
  name: string;
  configPath: string;
}

/**
 * Which hosts share a runner's token. The local engine lists config files; the AWS engine names EC2
 * instances by tag (every instance carrying it, found by SSM at send time) or by id (up to 50 a call).
 */
export type HostSelector =
  | { kind: 'config-files'; files: HostTarget[] }
  | { kind: 'ec2-tag'; tagKey: string; tagValue: string; configPath: string }
  | { kind: 'ec2-instances'; instanceIds: string[]; configPath: string };

/** How a tag target is named where a host name would stand (results, alerts): `tag:Role=builders`. */
export function tagHostName(selector: { tagKey: string; tagValue: string }): string {
  return `tag:${selector.tagKey}=${selector.tagValue}`;
}

/** A few words for tables: "3 hosts", "tag Role=builders", "4 instances". */
export function describeHosts(selector: HostSelector): string {
  switch (selector.kind) {
    case 'config-files':
      return `${selector.files.length} host${selector.files.length === 1 ? '' : 's'}`;
    case 'ec2-tag':
      return `tag ${selector.tagKey}=${selector.tagValue}`;
    case 'ec2-instances':
      return `${selector.instanceIds.length} instance${selector.instanceIds.length === 1 ? '' : 's'}`;
  }
}

/** The same kind of selector, narrowed to the named hosts (instance ids in AWS, host names locally). */
export function restrictHosts(selector: HostSelector, hostNames: string[]): HostSelector {
  const names = new Set(hostNames);
  switch (selector.kind) {
    case 'config-files':
      return { ...selector, files: selector.files.filter((f) => names.has(f.name)) };
    case 'ec2-tag':
      if (names.has(tagHostName(selector))) return selector;
      return { kind: 'ec2-instances', instanceIds: hostNames.filter((n) => /^(i|mi)-/.test(n)), configPath: selector.configPath };
    case 'ec2-instances':
      return { ...selector, instanceIds: selector.instanceIds.filter((id) => names.has(id)) };
  }
}

/** A runner this service keeps in step: one GitLab runner, one secret, one or more hosts. */
export interface ManagedRunner {
  /** Operator-facing name; also the secret id in the local engine. */
  name: string;
  secretId: string;
  gitlabUrl: string;
  runnerId: number;
  hosts: HostSelector;
  reload: ReloadMode;
  policy: ExpiryPolicy;
  strategy: RotationStrategy;
}

/**
 * The config names the runner a secret started with; a `replace` rotation moves the secret to a new
 * runner id. Everything that acts on the runner takes its id from the secret's current value.
 */
export function atRunnerId(runner: ManagedRunner, runnerId: number): ManagedRunner {
  return runner.runnerId === runnerId ? runner : { ...runner, runnerId };
}

/** When a token is due for rotation. See expiry-policy.ts for the rule. */
export interface ExpiryPolicy {
  /** Rotate when less than this share of the token's lifetime is left (0 < share < 1). */
  rotateAtRemainingShare: number;
  /** Never later than this many days before expiry (capped at half the lifetime). */
  minDaysBeforeExpiry: number;
  /** Where GitLab sets no expiry: rotate once the token is this many days old. */
  maxAgeDaysWithoutExpiry: number;
}

export const DEFAULT_EXPIRY_POLICY: ExpiryPolicy = {
  rotateAtRemainingShare: 0.5,
  minDaysBeforeExpiry: 7,
  maxAgeDaysWithoutExpiry: 90,
};

/** What happened on one host when a version was pushed to it. */
export type HostStatus = 'updated' | 'already-current' | 'failed' | 'undeliverable' | 'timed-out';

export interface HostResult {
  host: string;
  status: HostStatus;
  /** The gitlab-runner system_id the host reported (`.runner_system_id`), when it did. */
  systemId: string | null;
  /** One line for operators: the updater's reason, an SSM status detail. Never a token. */
  detail: string;
  /** ISO 8601: when this host's result was known. */
  finishedAt: string;
}

/**
 * `earlier` with each host that appears in `later` replaced by its later result; new hosts appended.
 * A `tag:<key>=<value>` entry stands for a tag push no instance answered; once a later push reached
 * instances (and did not fail as a whole again), the instances speak for the tag and the entry goes.
 */
export function mergeHostResults(earlier: HostResult[], later: HostResult[]): HostResult[] {
  const reachedInstances = later.some((r) => !r.host.startsWith('tag:'));
  const byHost = new Map(earlier.filter((r) => !(reachedInstances && r.host.startsWith('tag:') && !later.some((l) => l.host === r.host))).map((r) => [r.host, r]));
  for (const result of later) byHost.set(result.host, result);
  return [...byHost.values()];
}

/** Hosts that hold the version they were sent. */
export function hostHoldsVersion(result: HostResult): boolean {
  return result.status === 'updated' || result.status === 'already-current';
}

/** The record of one finished rotation, kept in the ledger and shown by `rotator status`. */
export interface RotationRecord {
  secretId: string;
  /** The runner the secret holds now: for `replace`, the new runner. */
  runnerId: number;
  fromVersionId: string | null;
  toVersionId: string;
  /**
   * ISO 8601: the old token died. `reset`: GitLab's reply to the reset arrived. `replace`: the old runner
   * was deleted, after every host ran the new one.
   */
  resetAt: string;
  /** ISO 8601: the new token was stored as AWSPENDING. */
  storedAt: string;
  /** ISO 8601: AWSCURRENT moved to the new version. */
  promotedAt: string;
  tokenExpiresAt: string | null;
  hosts: HostResult[];
  /** Absent in records written before the replace strategy existed: `reset`. */
  strategy?: RotationStrategy;
  /** `replace`: the runner that was removed from the hosts and deleted. */
  replacedRunnerId?: number;
  /** `replace`: ISO 8601, when the replaced runner was found gone or deleted (retireReplacedRunner). */
  replacedRunnerRetiredAt?: string;
}
