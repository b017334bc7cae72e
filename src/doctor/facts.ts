/**
 * What the gatherer (gather.ts) found, and all the checks (checks.ts) get to see. No token is ever
 * part of it: a runner's token appears only as its kind (missing, glrt, legacy).
 */
import type { ProbeReply } from '../adapters/gitlab/gitlab.ts';
import type { RunnerManager } from '../core/types.ts';
import type { TokenKind } from './runner-config.ts';

/** Why GitLab did not reply to GET /version. */
export type { NoReplyCause } from '../adapters/gitlab/gitlab-http.ts';

/**
 * GET {url}/api/v4/version without credentials (401 is a fine answer: it has a Date header), as the
 * GitLab adapter's probe answers it; `localMs` is this host's clock half-way between sending the request
 * and the reply's headers (ms since epoch).
 */
export type ProbeOutcome = ProbeReply;

export interface ProbeFacts {
  /** The url as probed (config.toml's or --gitlab-url), shown as evidence. */
  url: string;
  /** The CA file the probe trusted besides the system CAs: a runner's tls-ca-file, or null. */
  caFile: string | null;
  /** Labels of the runners whose config url this is ([] for --gitlab-url only). */
  runners: string[];
  outcome: ProbeOutcome;
}

/** POST /runners/verify with the token and this host's real system_id. */
export type VerifyOutcome =
  | { kind: 'accepted'; runnerId: number; tokenExpiresAt: string | null }
  | { kind: 'rejected'; status: number; detail: string }
  | { kind: 'gone'; detail: string }
  | { kind: 'failed'; detail: string }
  | { kind: 'not-run'; reason: string };

/** GET /runners/:id/managers with the access token. */
export type ManagersOutcome =
  | { kind: 'listed'; managers: RunnerManager[] }
  | { kind: 'failed'; detail: string }
  | { kind: 'not-run'; reason: string };

/** `gitlab-runner --version` on this host (the binary config.toml belongs to). */
export type RunnerVersionOutcome =
  | { kind: 'found'; version: string }
  | { kind: 'not-run'; reason: string };

/** Whether GitLab still accepts legacy registration tokens, read without registering anything. */
export type RegistrationOutcome =
  | { kind: 'allowed'; source: string }
  | { kind: 'disallowed'; source: string }
  | { kind: 'not-run'; reason: string };

export interface RunnerFacts {
  index: number;
  label: string;
  name: string | null;
  /** `id` from config.toml. */
  id: number | null;
  url: string | null;
  tokenKind: TokenKind;
  tokenObtainedAt: string | null;
  tokenExpiresAt: string | null;
  selfRotationDisabled: boolean;
  tlsCaFile: string | null;
  /** At the config url. */
  verify: VerifyOutcome;
  /** At --gitlab-url when it is given and is not the config url; else null. */
  verifyAtGitlabUrl: VerifyOutcome | null;
  managers: ManagersOutcome;
  /** Only asked for runners with a legacy token. */
  registration: RegistrationOutcome;
}

export type ConfigFacts =
  | { kind: 'unreadable'; reason: string }
  | { kind: 'unparseable'; reason: string; mode: number }
  | { kind: 'parsed'; mode: number; runners: RunnerFacts[] };

export interface DoctorFacts {
  configPath: string;
  config: ConfigFacts;
  /** --gitlab-url: the GitLab that knows the runner, when the operator named it. */
  gitlabUrl: string | null;
  probes: ProbeFacts[];
  /** This host's gitlab-runner version (runner.version-too-old); not run when config.toml has no runner. */
  runnerVersion: RunnerVersionOutcome;
  /** --shared: the operator says the runners of this config are shared by several hosts. */
  shared: boolean;
  /** token.expiring fires within this many days (--expiring-days, default 7). */
  expiringDays: number;
}
