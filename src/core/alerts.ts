import type { HostStatus } from './types.ts';

/**
 * Every failure an operator must hear about before a runner goes offline. Each kind has a runbook
 * section in docs/operations.md (`#runbook-<kind>`), which the alert names as its next step.
 */
export type AlertKind =
  /** Secrets Manager reported RotationFailed or RotationAbandoned for a managed secret. */
  | 'rotation-failed'
  /** A host did not take the current token (undeliverable, failed, timed out) and still lacks it. */
  | 'host-missed'
  /** GitLab rejects the token the store holds as current: expired, revoked, or reset behind our back. */
  | 'token-rejected'
  /** A runner is due but its rotation is stuck in progress (AWSPENDING left on a version). */
  | 'rotation-stuck'
  /** A managed runner's token expires within the alert threshold and has not been rotated. */
  | 'near-expiry'
  /** Recovery needed the admin access token (reset by id) and none is configured or readable. */
  | 'admin-token-missing'
  /** A `replace` rotation stopped: a host did not take the new runner; the old runner is kept everywhere. */
  | 'replacement-stalled';

export const ALERT_KINDS: readonly AlertKind[] = ['rotation-failed', 'host-missed', 'token-rejected', 'rotation-stuck', 'near-expiry', 'admin-token-missing', 'replacement-stalled'];

export interface AlertHost {
  host: string;
  systemId: string | null;
  status: HostStatus;
  detail: string;
}

export interface Alert {
  kind: AlertKind;
  /** Runner name from the fleet config (or the secret name where no runner matches). */
  runner: string;
  secretId: string;
  severity: 'critical' | 'warning';
  /** One sentence: what failed. Never a token. */
  summary: string;
  /** The hosts concerned, for host-missed (and any alert where hosts are known). */
  hosts: AlertHost[];
  /** ISO 8601: when this state was first seen. */
  since: string;
  /** What to do next, in one sentence, and the runbook section that explains it. */
  nextStep: string;
  runbook: string;
  /** A console or log link, when the engine knows one. */
  logUrl?: string;
  /** True for the daily reminder of a state that persists; false for the first alert of a new state. */
  reminder: boolean;
  /**
   * What identifies this state beyond kind and hosts (a version id, an expiry date): when it changes, the
   * condition is a new one and alerts again at once.
   */
  stateKey: string;
}

/** The docs/operations.md anchor of each alert kind's runbook section. */
export function runbookAnchor(kind: AlertKind): string {
  return `runbook-${kind}`;
}
