import { runbookAnchor, type Alert, type AlertHost, type AlertKind } from './alerts.ts';
import type { RotationError } from './errors.ts';
import { formatDays } from './expiry-policy.ts';
import { nextStepFor, type AlertEngine } from './next-steps.ts';
import type { RunnerScanResult } from './scan-runner.ts';
import { hostHoldsVersion } from './types.ts';
import type { HostResult, ManagedRunner, RotationRecord } from './types.ts';

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

/** An alert of `kind`, with the advice of the engine that raises it (next-steps.ts). */
export function buildAlert(kind: AlertKind, fields: { engine: AlertEngine; runner: string; secretId: string; summary: string; hosts?: AlertHost[]; stateKey?: string; now: Date; logUrl?: string }): Alert {
  return {
    kind,
    runner: fields.runner,
    secretId: fields.secretId,
    severity: SEVERITY[kind],
    summary: fields.summary,
    hosts: fields.hosts ?? [],
    since: fields.now.toISOString(),
    nextStep: nextStepFor(fields.engine, kind, fields.runner),
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
export function alertsFromScan(runner: ManagedRunner, result: RunnerScanResult, options: { engine: AlertEngine; nearExpiryDays: number; now: Date; logUrl?: string }): Alert[] {
  const base = { engine: options.engine, runner: runner.name, secretId: result.secretId, now: options.now, logUrl: options.logUrl };
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
export function alertFromRotationError(engine: AlertEngine, runner: string, error: RotationError, now: Date, logUrl?: string): Alert | undefined {
  const base = { engine, runner, secretId: error.secretId, now, logUrl, stateKey: error.step };
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

/** Secrets Manager's RotationFailed / RotationAbandoned as an alert (the AWS engine's only); undefined for any other outcome. */
export function alertFromRotationOutcome(eventName: string, runner: string, secretId: string, at: Date, logUrl?: string): Alert | undefined {
  const summary = Object.hasOwn(OUTCOME_SUMMARY, eventName) ? OUTCOME_SUMMARY[eventName] : undefined;
  return summary && buildAlert('rotation-failed', { engine: 'aws', runner, secretId, summary: summary(runner), now: at, logUrl, stateKey: eventName });
}

/** After a rotation: the hosts that did not take the new token (invariant 5: named in an alert). */
export function alertsFromRotation(engine: AlertEngine, runner: string, record: RotationRecord, now: Date, logUrl?: string): Alert[] {
  const missed = record.hosts.filter((h) => !hostHoldsVersion(h));
  if (missed.length === 0) return [];
  return [
    buildAlert('host-missed', {
      engine,
      runner,
      secretId: record.secretId,
      now,
      logUrl,
      summary: `${missed.length} of ${record.hosts.length} host(s) of runner ${runner} did not take the new token and cannot take jobs`,
      hosts: alertHosts(missed),
    }),
  ];
}
