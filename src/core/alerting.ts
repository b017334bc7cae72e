import { alertFromRotationError, alertsFromRotation, alertsFromScan, buildAlert, ROTATION_RESOLVES_KINDS, SCAN_CHECKED_KINDS } from './alert-rules.ts';
import type { Alert } from './alerts.ts';
import { RotationError } from './errors.ts';
import { raiseAlert, syncAlerts, type AlertDeps, type RaiseOutcome } from './raise-alert.ts';
import type { StepOutcome } from './rotation-steps.ts';
import type { RunnerScanResult } from './scan-runner.ts';
import type { ManagedRunner } from './types.ts';

/**
 * After one rotation step: a finished rotation names every host that missed the token and resolves the
 * runner's earlier alerts; a step that failed for a reason an operator must act on raises its alert.
 * Other failures reach operators as Secrets Manager's RotationFailed event.
 */
export async function alertAfterRotationStep(
  deps: AlertDeps,
  runner: string,
  secretId: string,
  result: { outcome: StepOutcome } | { error: unknown },
  options: { logUrl?: string; alertEveryFailure?: boolean } = {},
): Promise<RaiseOutcome[]> {
  const now = deps.clock.now();
  const { logUrl } = options;
  if ('error' in result) {
    const coded = result.error instanceof RotationError ? alertFromRotationError(deps.engine, runner, result.error, now, logUrl) : undefined;
    // The local engine has no Secrets Manager to send RotationFailed: it alerts on every failure itself.
    const alert = coded ?? (options.alertEveryFailure ? rotationFailedAlert(deps, runner, secretId, result.error, logUrl) : undefined);
    return alert ? [await raiseAlert(deps, alert)] : [];
  }
  const record = result.outcome.record;
  if (!record) return [];
  return syncAlerts(deps, secretId, ROTATION_RESOLVES_KINDS, alertsFromRotation(deps.engine, runner, record, now, logUrl));
}

/** After one runner's scan: raise what it found, clear what it checked and no longer finds. */
export async function alertAfterScan(deps: AlertDeps, runner: ManagedRunner, result: RunnerScanResult, nearExpiryDays: number, logUrl?: string): Promise<RaiseOutcome[]> {
  if (!result.plan) return [];
  const found = alertsFromScan(runner, result, { engine: deps.engine, nearExpiryDays, now: deps.clock.now(), logUrl });
  return syncAlerts(deps, result.secretId, SCAN_CHECKED_KINDS, found);
}

function rotationFailedAlert(deps: AlertDeps, runner: string, secretId: string, error: unknown, logUrl?: string): Alert {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return buildAlert('rotation-failed', { engine: deps.engine, runner, secretId, now: deps.clock.now(), logUrl, stateKey: name, summary: `The rotation of runner ${runner} failed: ${message}` });
}
