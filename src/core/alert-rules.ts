import { runbookAnchor, type Alert, type AlertHost, type AlertKind } from './alerts.ts';
import type { RotationError } from './errors.ts';
import { formatDays } from './expiry-policy.ts';
import type { RunnerScanResult } from './scan-runner.ts';
import { hostHoldsVersion } from './types.ts';
import type { HostResult, ManagedRunner, RotationRecord } from './types.ts';

/** What the operator does next, per kind; docs/operations.md has a runbook section for each (#runbook-<kind>). */
export const NEXT_STEPS: Record<AlertKind, string> = {
  'rotation-failed':
    "Read the failing step in the rotate-secret log; fix its cause and Secrets Manager retries the step. Cancel the rotation only when AWSPENDING holds no token (a stored token must be finished, it is the only valid one).",
  'host-missed':
    'Bring the named hosts back (instance running, SSM agent online, config.toml valid); the next scan re-pushes the current token to them without a new rotation. To repair at once, run the scanner (or `rotator scan`).',
  'token-rejected':
    'GitLab no longer accepts the stored token: reset it by id with an access token that may manage the runner (configure the admin token secret), or reset it in GitLab and adopt the new token; then rotate.',
  'rotation-stuck':
    'A rotation holds AWSPENDING and keeps failing: read its failing step in the rotate-secret log, fix the cause, and let Secrets Manager retry; new rotations are refused until it finishes.',
  'near-expiry':
    'Rotate now (`rotator rotate --aws RUNNER` or `aws secretsmanager rotate-secret`), then find out why the scan did not: scanner errors, rotation stuck, or a policy that rotates too late.',
  'admin-token-missing':
    'Recovery needs an access token that may manage the runner: store one in the admin token secret for this GitLab (adminTokenSecrets), or reset the runner token by hand and adopt it.',
  'replacement-stalled':
    'Nothing is offline: the old runner still works on every host. Fix gitlab-runner on the named hosts (`rotator doctor`), then rotate again: the rotation resumes with the same new runner and removes the old one once every host runs it.',
};

const SEVERITY: Record<AlertKind, Alert['severity']> = {
  'rotation-failed': 'critical',
  'host-missed': 'critical',
  'token-rejected': 'critical',
  'rotation-stuck': 'critical',
  'near-expiry': 'warning',
  'admin-token-missing': 'critical',
  'replacement-stalled': 'warning',
};

/** The kinds a scan checks, and so clears when it no longer finds them. */
export const SCAN_CHECKED_KINDS: readonly AlertKind[] = ['host-missed', 'rotation-stuck', 'near-expiry', 'token-rejected'];

/** The kinds a finished rotation resolves (host-missed is re-checked from its own record). */
export const ROTATION_RESOLVES_KINDS: readonly AlertKind[] = ['host-missed', 'rotation-failed', 'rotation-stuck', 'near-expiry', 'token-rejected', 'admin-token-missing', 'replacement-stalled'];

export function buildAlert(kind: AlertKind, fields: { runner: string; secretId: string; summary: string; hosts?: AlertHost[]; stateKey?: string; now: Date; logUrl?: string }): Alert {
  return {
    kind,
    runner: fields.runner,
    secretId: fields.secretId,
    severity: SEVERITY[kind],
    summary: fields.summary,
    hosts: fields.hosts ?? [],
    since: fields.now.toISOString(),
    nextStep: NEXT_STEPS[kind],
    runbook: runbookAnchor(kind),
    ...(fields.logUrl ? { logUrl: fields.logUrl } : {}),
    reminder: false,
    stateKey: fields.stateKey ?? '',
  };
}

function alertHosts(hosts: HostResult[]): AlertHost[] {
  return hosts.map((h) => ({ host: h.host, systemId: h.systemId, status: h.status, detail: h.detail }));
}

/** The conditions one scan of one runner found. */
export function alertsFromScan(runner: ManagedRunner, result: RunnerScanResult, options: { nearExpiryDays: number; now: Date; logUrl?: string }): Alert[] {
  const base = { runner: runner.name, secretId: result.secretId, now: options.now, logUrl: options.logUrl };
  const alerts: Alert[] = [];
  if (result.missingHosts.length > 0) {
    alerts.push(buildAlert('host-missed', { ...base, summary: `${result.missingHosts.length} host(s) of runner ${runner.name} still lack the current token and cannot take jobs`, hosts: alertHosts(result.missingHosts) }));
  }
  const decision = result.plan?.decision;
  if (result.rotationStuck) {
    alerts.push(buildAlert('rotation-stuck', { ...base, summary: `Runner ${runner.name} is due (${decision?.reason ?? 'due'}) but its rotation is stuck in progress` }));
  }
  if (decision?.expired) {
    alerts.push(buildAlert('token-rejected', { ...base, summary: `The token of runner ${runner.name} expired (${decision.reason}): GitLab rejects it and every host is offline`, stateKey: 'expired' }));
  } else if (decision && decision.daysLeft !== null && decision.daysLeft <= options.nearExpiryDays && !result.rotationStarted && !result.rotationRunning) {
    // Not while another rotation (an overlapping scan's) is running: it rotates the token; if it fails, it alerts, and later scans find it stuck.
    const expiresOn = new Date(options.now.getTime() + decision.daysLeft * 86_400_000).toISOString().slice(0, 10);
    alerts.push(buildAlert('near-expiry', { ...base, summary: `The token of runner ${runner.name} expires in ${formatDays(decision.daysLeft)} and was not rotated`, stateKey: expiresOn }));
  }
  return alerts;
}

/** The alert a failed rotation step deserves on its own (beyond Secrets Manager's RotationFailed), if any. */
export function alertFromRotationError(runner: string, error: RotationError, now: Date, logUrl?: string): Alert | undefined {
  const base = { runner, secretId: error.secretId, now, logUrl, stateKey: error.step };
  switch (error.code) {
    case 'current-token-rejected-no-admin-token':
      return buildAlert('admin-token-missing', { ...base, summary: `${error.message}. Every host of runner ${runner} is offline until the token is reset by id.` });
    case 'pending-token-rejected':
      return buildAlert('token-rejected', { ...base, summary: error.message });
    case 'store-failed':
    case 'replaced-runner-not-deleted':
      return buildAlert('rotation-failed', { ...base, summary: error.message });
    case 'replace-needs-access-token':
      return buildAlert('admin-token-missing', { ...base, summary: `${error.message}. Nothing changed: the runner keeps its token.` });
    case 'replacement-unconfirmed':
      return buildAlert('replacement-stalled', { ...base, summary: `Replacing runner ${runner} stopped: ${error.message}`, hosts: alertHosts(error.hosts) });
    default:
      return undefined;
  }
}

const OUTCOME_SUMMARY: Record<string, (runner: string) => string> = {
  RotationFailed: (r) => `Secrets Manager reports RotationFailed for runner ${r}: a rotation step failed; Secrets Manager retries it within the rotation window`,
  RotationAbandoned: (r) => `Secrets Manager abandoned a rotation of runner ${r} (RotationAbandoned): if GitLab had issued the new token, AWSCURRENT may hold a dead one`,
};

/** Secrets Manager's RotationFailed / RotationAbandoned as an alert; undefined for any other outcome. */
export function alertFromRotationOutcome(eventName: string, runner: string, secretId: string, at: Date, logUrl?: string): Alert | undefined {
  const summary = Object.hasOwn(OUTCOME_SUMMARY, eventName) ? OUTCOME_SUMMARY[eventName] : undefined;
  return summary && buildAlert('rotation-failed', { runner, secretId, summary: summary(runner), now: at, logUrl, stateKey: eventName });
}

/** After a rotation: the hosts that did not take the new token (invariant 5: named in an alert). */
export function alertsFromRotation(runner: string, record: RotationRecord, now: Date, logUrl?: string): Alert[] {
  const missed = record.hosts.filter((h) => !hostHoldsVersion(h));
  if (missed.length === 0) return [];
  return [
    buildAlert('host-missed', {
      runner,
      secretId: record.secretId,
      now,
      logUrl,
      summary: `${missed.length} of ${record.hosts.length} host(s) of runner ${runner} did not take the new token and cannot take jobs`,
      hosts: alertHosts(missed),
    }),
  ];
}
