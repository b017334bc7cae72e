/**
 * The ports the pure core calls. Each outside system has one adapter in src/adapters that
 * implements its port; tests of the core pass in-memory implementations of the same interfaces.
 */
import type { Alert, AlertKind } from './alerts.ts';
import type {
  HostResult,
  IssuedToken,
  ManagedRunner,
  RotationRecord,
  RotationStep,
  RotationStrategy,
  RunnerDetails,
  RunnerManager,
  RunnerSettings,
  VersionStage,
} from './types.ts';

export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export interface SecretVersionInfo {
  versionId: string;
  stages: VersionStage[];
  /**
   * ISO 8601 time the version was created, where the store tells it (the local engine's file store; Secrets
   * Manager's DescribeSecret and ListSecrets do not). For an open rotation: when it was opened.
   */
  createdAt?: string;
}

export interface SecretDescription {
  secretId: string;
  rotationEnabled: boolean;
  versions: SecretVersionInfo[];
}

export type VersionRef = { versionId: string } | { stage: VersionStage };

/** A secret with versions and stages, as AWS Secrets Manager keeps them. */
export interface SecretStore {
  /** Throws SecretNotFoundError when the secret does not exist. */
  describe(secretId: string): Promise<SecretDescription>;
  /** The version's value, or undefined when that version or stage has no value. */
  getValue(secretId: string, ref: VersionRef): Promise<string | undefined>;
  /**
   * Stores `value` as `versionId` with the AWSPENDING stage. Idempotent: the same version id and value
   * again is a no-op (PutSecretValue with the same ClientRequestToken).
   */
  putPendingValue(secretId: string, versionId: string, value: string): Promise<void>;
  /** Moves AWSCURRENT to `toVersionId`; the old current becomes AWSPREVIOUS and AWSPENDING is cleared. */
  promote(secretId: string, toVersionId: string, fromVersionId: string | null): Promise<void>;
}

/** What outlives one step: the reset timing, per-host results and the rotation history. */
export interface PendingRotation {
  secretId: string;
  versionId: string;
  fromVersionId: string | null;
  resetAt: string;
  storedAt: string;
  hosts: HostResult[];
  /** Absent: `reset`. */
  strategy?: RotationStrategy;
  /** `replace`: the runner the new one replaces (the runner of the version this rotation started from). */
  replacedRunnerId?: number;
}

export interface RotationLedger {
  savePending(pending: PendingRotation): Promise<void>;
  pending(secretId: string, versionId: string): Promise<PendingRotation | undefined>;
  /** Records a finished rotation and drops its pending record. */
  saveRotation(record: RotationRecord): Promise<void>;
  lastRotation(secretId: string): Promise<RotationRecord | undefined>;
  /**
   * After a re-push of the current version to some hosts: replaces those hosts' results (matched by host
   * name) in the record of the rotation to `toVersionId`, keeping the others.
   */
  updateHosts(secretId: string, toVersionId: string, results: HostResult[]): Promise<void>;
  /** The replaced runner of the rotation to `toVersionId` is gone: sets its `replacedRunnerRetiredAt`. */
  markRetired(secretId: string, toVersionId: string, retiredAt: string): Promise<void>;
  /**
   * `rotator migrate`: the next rotation of this secret replaces its runner, whatever the runner's
   * strategy. The request stays until a replacement is recorded (saveRotation of a `replace` record drops
   * it; a reset that was already under way does not) or it is withdrawn.
   */
  requestReplacement(secretId: string, requestedAt: string): Promise<void>;
  /** ISO 8601 time of an open replacement request, if any. */
  replacementRequested(secretId: string): Promise<string | undefined>;
  /** `rotator migrate --cancel`, or a RotateSecret that failed after the request: no replacement is wanted. */
  withdrawReplacement(secretId: string): Promise<void>;
}

/** The GitLab REST API v4 calls the core needs. Errors are the GitLab* classes of errors.ts. */
export interface GitLab {
  /**
   * POST /runners/reset_authentication_token with the current token, as the rotator (ROTATOR_SYSTEM_ID,
   * rotator-identity.ts). 403 when it is no longer valid.
   */
  resetWithToken(gitlabUrl: string, token: string): Promise<IssuedToken>;
  /** POST /runners/:id/reset_authentication_token with an access token that may manage the runner. */
  resetById(gitlabUrl: string, runnerId: number, accessToken: string): Promise<IssuedToken>;
  /**
   * POST /runners/verify as the rotator (ROTATOR_SYSTEM_ID): never in a host's name, so no host looks
   * contacted because the rotator checked a token.
   */
  verify(gitlabUrl: string, token: string): Promise<{ runnerId: number; tokenExpiresAt: string | null }>;
  runner(gitlabUrl: string, runnerId: number, accessToken: string): Promise<RunnerDetails>;
  /** GET /runners/:id/managers: the hosts' records only (the rotator's own is left out). */
  managers(gitlabUrl: string, runnerId: number, accessToken: string): Promise<RunnerManager[]>;
  /** GET /user: whether the access token is an administrator's (`is_admin`, shown to admins only). */
  isAdmin(gitlabUrl: string, accessToken: string): Promise<boolean>;
  /**
   * POST /user/runners with the settings' type, group or first project and the rest of them; never
   * retried after a 5xx or a lost reply (a second runner would be created).
   */
  createRunner(gitlabUrl: string, accessToken: string, settings: RunnerSettings): Promise<IssuedToken & { id: number }>;
  /** POST /projects/:id/runners: a project runner also serves this project. */
  enableRunnerInProject(gitlabUrl: string, projectId: number, runnerId: number, accessToken: string): Promise<void>;
  /** DELETE /runners/:id. GitLabNotFoundError when it is gone already. */
  deleteRunner(gitlabUrl: string, runnerId: number, accessToken: string): Promise<void>;
}

/**
 * Which version the hosts should fetch, and what to write beside it, into the table of the runner the
 * fleet is given (`runner.runnerId`: the runner of that version's value, see atRunnerId). The token itself
 * never travels here.
 */
export interface Delivery {
  secretId: string;
  versionId: string;
  /**
   * `replace`: the table does not exist yet; copy the table of this runner (`--mode add`). Absent: set
   * the token of the existing table (`--mode update`).
   */
  addFromRunnerId?: number;
  /** The version the hosts hold now: lets a host without `id` in config.toml find its table. */
  previousVersionId: string | null;
  tokenExpiresAt: string | null;
}

/** Every host of a runner: SSM Run Command in AWS, the host updater on this machine in the local engine. */
export interface Fleet {
  /** One result per host, never a throw for one host's failure. `onResult` reports each as it lands. */
  push(runner: ManagedRunner, delivery: Delivery, onResult?: (result: HostResult) => void): Promise<HostResult[]>;
  /**
   * Removes the `[[runners]]` table of `runner.runnerId` from every host (`--mode remove`; no token
   * travels). `versionId` names the rotation. Same result rules as push.
   */
  remove(runner: ManagedRunner, removal: { secretId: string; versionId: string }, onResult?: (result: HostResult) => void): Promise<HostResult[]>;
  /**
   * The token each host's config holds for the runner, with the host's system_id: how a token a host
   * rotated by itself is found. Only a fleet that can read the hosts' files without the token leaving
   * them has it (the local engine); through SSM a token would travel in command output (invariant 3).
   */
  hostTokens?(runner: ManagedRunner): Promise<Array<{ host: string; systemId: string | null; token: string }>>;
}

/** Progress of a rotation, for the CLI's lines and the Lambda's structured log. Never carries a token. */
export type RotationEvent =
  | { kind: 'step-started'; secretId: string; step: RotationStep; versionId: string }
  | { kind: 'step-skipped'; secretId: string; step: RotationStep; versionId: string; reason: string }
  | { kind: 'token-reset'; secretId: string; runnerId: number; via: 'current-token' | 'admin-token' | 'host-token'; host?: string }
  | { kind: 'token-stored'; secretId: string; versionId: string; attempts: number }
  | { kind: 'host-result'; secretId: string; result: HostResult }
  | { kind: 'token-verified'; secretId: string; versionId: string; systemId: string | null; verified: boolean; reason: string }
  | { kind: 'promoted'; secretId: string; versionId: string; record: RotationRecord }
  | { kind: 'runner-created'; secretId: string; runnerId: number; replaces: number; projects: number[] }
  | { kind: 'host-confirmed'; secretId: string; runnerId: number; host: string; systemId: string }
  | { kind: 'host-removed'; secretId: string; runnerId: number; result: HostResult }
  | { kind: 'runner-deleted'; secretId: string; runnerId: number; alreadyGone: boolean }
  | { kind: 'warning'; secretId: string; message: string };

export type RotationEvents = (event: RotationEvent) => void;

export interface RotationDeps {
  secrets: SecretStore;
  gitlab: GitLab;
  fleet: Fleet;
  ledger: RotationLedger;
  clock: Clock;
  /** The managed runner behind a secret id, from the fleet config. */
  runnerFor(secretId: string): ManagedRunner | undefined;
  /** The admin access token for reset-by-id at this GitLab, when one is configured. */
  adminToken(gitlabUrl: string): Promise<string | undefined>;
  events: RotationEvents;
  /** How the `replace` strategy waits for hosts; defaults in replace-steps.ts. */
  replace?: ReplaceTiming;
}

export interface ReplaceTiming {
  /** Give up waiting for every host's manager of the new runner after this long (or at the step's deadline). */
  confirmWithinMs: number;
  /** Between two reads of the new runner's managers. */
  pollMs: number;
}

/** Where alerts go: SNS (then Slack and e-mail) in AWS; stdout and an optional Slack webhook locally. */
export interface AlertSink {
  publish(alert: Alert): Promise<void>;
}

/** What the de-duplication remembers of one alert condition (one runner, one kind, one host where it applies). */
export interface AlertState {
  kind: AlertKind;
  runner: string;
  /** What the condition looked like when last sent (e.g. the hosts and statuses): a change means a new alert. */
  fingerprint: string;
  /** ISO 8601: when the condition was first seen. */
  firstSeen: string;
  /** ISO 8601: when an alert or reminder for it was last sent. */
  lastSent: string;
}

/** Alert de-duplication state: DynamoDB items `ALERT#<alertId>` in the AWS engine, a JSON file locally. */
export interface AlertLedger {
  alertState(secretId: string, alertId: string): Promise<AlertState | undefined>;
  saveAlertState(secretId: string, alertId: string, state: AlertState): Promise<void>;
  /** The condition cleared: the next occurrence is a new alert. */
  clearAlertState(secretId: string, alertId: string): Promise<void>;
  /** Every open condition of a secret, to clear the ones a scan no longer sees. */
  openAlerts(secretId: string): Promise<Array<{ alertId: string; state: AlertState }>>;
}
