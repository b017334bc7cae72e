import type { RunnerScanResult } from '../core/scan-runner.ts';

/**
 * The CloudWatch metric names the functions emit (namespace POWERTOOLS_METRICS_NAMESPACE, dimension
 * `service` only): the fleet dashboard and alarms name them from here. No metric has a per-runner
 * dimension: each name is one custom metric whatever the fleet's size ($0.30 a month each), where a metric
 * per runner would cost $3,000 a month at 10,000 runners. A runner's own days to expiry are in the scanner's
 * "runner scanned" log line (`daysLeft`), for CloudWatch Logs Insights, and, only where the fleet file opts in
 * (`metrics.perRunnerDaysToExpiry`), in DaysToExpiry with a `Runner` dimension.
 */
export const FLEET_METRICS = {
  /** Scan worker, once per batch (summed over a scan): managed secrets the scan took up (those that failed included). */
  runnersScanned: 'RunnersScanned',
  /** Scan worker, once per batch (summed over a scan): runners due for rotation, or whose rotation this scan started. */
  runnersDue: 'RunnersDue',
  /** Scan worker, once per batch (summed over a scan): runners whose token expires within `alerts.nearExpiryDays` (or has expired). */
  runnersExpiringSoon: 'RunnersExpiringSoon',
  /** Scan worker, once per batch that saw an expiring token: the fewest days left (tenths, rounded down) of any runner. */
  minDaysToExpiry: 'MinDaysToExpiry',
  /** Scan worker, per runner with an expiring token, dimension Runner: only with the fleet file's `metrics.perRunnerDaysToExpiry` (off by default). */
  daysToExpiry: 'DaysToExpiry',
  /** Scan worker, once per batch (summed over a scan): runners whose scan threw, or whose secret's tags make no runner. */
  scanFailures: 'ScanFailures',
  /** Scan worker, once per batch (summed over a scan): rotations it started (RotateSecret). */
  rotationsStarted: 'RotationsStarted',
  /** Rotation hook (setSecret, finishSecret) and scanner (re-push): hosts that hold the version / missed it. */
  hostsUpdated: 'HostsUpdated',
  hostsMissed: 'HostsMissed',
  /** Rotation hook, per finished rotation: milliseconds from the reset to the last host holding the new token. */
  outageWindow: 'OutageWindow',
  /** Notifier: RotationFailed / RotationAbandoned events of managed secrets. */
  rotationFailureEvents: 'RotationFailureEvents',
  /** Notifier: alerts posted to Slack, or only logged where no webhook is configured. */
  alertsPosted: 'AlertsPosted',
  alertsLogged: 'AlertsLogged',
} as const;

/** The fleet-level figures of one scan, from the runners scanned and the count of those that failed. */
export interface FleetScanSummary {
  runnersScanned: number;
  runnersDue: number;
  runnersExpiringSoon: number;
  /** Null when no scanned runner has a token with an expiry. */
  minDaysToExpiry: number | null;
  scanFailures: number;
  rotationsStarted: number;
}

export function summarizeScan(results: RunnerScanResult[], failures: number, nearExpiryDays: number): FleetScanSummary {
  let minDaysToExpiry: number | null = null;
  let runnersDue = 0;
  let runnersExpiringSoon = 0;
  for (const result of results) {
    const decision = result.plan?.decision;
    if (result.rotationStarted || decision?.due === true) runnersDue += 1;
    const days = decision?.daysLeft;
    if (days === undefined || days === null) continue;
    if (days <= nearExpiryDays) runnersExpiringSoon += 1;
    minDaysToExpiry = minDaysToExpiry === null ? days : Math.min(minDaysToExpiry, days);
  }
  return {
    runnersScanned: results.length + failures,
    runnersDue,
    runnersExpiringSoon,
    minDaysToExpiry: minDaysToExpiry === null ? null : Math.floor(minDaysToExpiry * 10) / 10,
    scanFailures: failures,
    rotationsStarted: results.filter((r) => r.rotationStarted).length,
  };
}
