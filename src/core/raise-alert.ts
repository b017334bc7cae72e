import type { Alert, AlertKind } from './alerts.ts';
import type { AlertEngine } from './next-steps.ts';
import type { AlertLedger, AlertSink, Clock } from './ports.ts';

export interface AlertDeps {
  /** Whose advice the alerts give (next-steps.ts): the AWS engine's or the local engine's. */
  engine: AlertEngine;
  ledger: AlertLedger;
  sink: AlertSink;
  clock: Clock;
  /** A state that persists is sent again at most this often. Default 24 h. */
  reminderMs?: number;
}

export type RaiseOutcome = 'sent' | 'reminder' | 'suppressed';

const DAY_MS = 86_400_000;

/** One open condition per runner and kind: the hosts concerned are part of its fingerprint, not its id. */
export function alertIdOf(alert: Pick<Alert, 'kind'>): string {
  return alert.kind;
}

/** Same kind, same hosts in the same statuses, same state key: the same condition. */
export function fingerprintOf(alert: Alert): string {
  const hosts = alert.hosts.map((h) => `${h.host}:${h.status}`).sort();
  return [alert.kind, alert.stateKey, ...hosts].join('|');
}

/**
 * Sends an alert once per change of state and at most one reminder per `reminderMs` while it persists
 * (DESIGN: "no repeats"). The state is stored only after the sink took the alert, so a failed publish
 * is tried again next time rather than lost.
 */
export async function raiseAlert(deps: AlertDeps, alert: Alert): Promise<RaiseOutcome> {
  const now = deps.clock.now();
  const alertId = alertIdOf(alert);
  const fingerprint = fingerprintOf(alert);
  const state = await deps.ledger.alertState(alert.secretId, alertId);
  const same = state?.fingerprint === fingerprint;
  if (same && now.getTime() - Date.parse(state.lastSent) < (deps.reminderMs ?? DAY_MS)) return 'suppressed';
  const firstSeen = same ? state.firstSeen : now.toISOString();
  await deps.sink.publish({ ...alert, since: firstSeen, reminder: same });
  await deps.ledger.saveAlertState(alert.secretId, alertId, { kind: alert.kind, runner: alert.runner, fingerprint, firstSeen, lastSent: now.toISOString() });
  return same ? 'reminder' : 'sent';
}

/**
 * Raises the alerts a check found and clears the open conditions of the kinds it checked that it no
 * longer found: a runner that recovers alerts again at once if it breaks again.
 */
export async function syncAlerts(deps: AlertDeps, secretId: string, checkedKinds: readonly AlertKind[], found: Alert[]): Promise<RaiseOutcome[]> {
  const outcomes: RaiseOutcome[] = [];
  for (const alert of found) outcomes.push(await raiseAlert(deps, alert));
  const stillOpen = new Set(found.map(alertIdOf));
  for (const open of await deps.ledger.openAlerts(secretId)) {
    if (checkedKinds.includes(open.state.kind) && !stillOpen.has(open.alertId)) await deps.ledger.clearAlertState(secretId, open.alertId);
  }
  return outcomes;
}
