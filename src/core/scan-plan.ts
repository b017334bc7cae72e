import { decideRotation, formatDays, type RotationDecision } from './expiry-policy.ts';
import { hostHoldsVersion, ROTATION_STEPS } from './types.ts';
import type { ManagedRunner, RotationRecord, RunnerManager, RunnerSecretValue } from './types.ts';

export interface ScanInput {
  runner: ManagedRunner;
  current: RunnerSecretValue;
  currentVersionId: string;
  /** A version sits in AWSPENDING: Secrets Manager refuses a new rotation until it finishes. */
  rotationInProgress: boolean;
  /**
   * How long the open rotation has been open (its version's creation, else its reset), where known. Up to
   * ROTATION_STUCK_AFTER_MS it is another rotation still running; older, or of unknown age, it is stuck.
   */
  openRotationAgeMs?: number;
  lastRotation: RotationRecord | undefined;
  /** GitLab's runner managers, when an access token allowed reading them. */
  managers: RunnerManager[] | undefined;
  now: Date;
  scanIntervalMs: number;
  /** Every host of the runner, when each scan re-applies AWSCURRENT to all of them (ScanDeps.convergeEveryHost). */
  everyHost?: string[];
}

export interface ScanPlan {
  decision: RotationDecision;
  rotate: boolean;
  /** Hosts (by name) that should get AWSCURRENT again: they missed the last rotation or went silent since. */
  repushHosts: string[];
  warnings: string[];
  /**
   * Another rotation of this runner is open and younger than ROTATION_STUCK_AFTER_MS (a scan or `rotate`
   * running at the same time): it is left to finish, with no re-push (it pushes itself) and no warning.
   */
  rotationRunning: boolean;
}

/**
 * The longest one rotation step may run: the rotation Lambda's timeout, 10 minutes
 * (lib/constructs/rotation-functions.ts); each step gets that less a safety margin as its deadline
 * (StepRequest.deadline, functions/rotate-secret.ts). The local engine gives a whole rotation less
 * (ROTATION_BUDGET_MS, 5 minutes, src/cli/rotate-command.ts).
 */
export const ROTATION_STEP_DEADLINE_MS = 10 * 60_000;

/**
 * A rotation open longer than this is stuck (or failing and being retried): each of its four steps is an
 * invocation of its own, so a healthy rotation is open at most four step deadlines (ROTATION_STEP_DEADLINE_MS,
 * 40 minutes), plus 5 minutes for Secrets Manager to invoke the next step. Younger, it is a rotation still
 * running (another scan's, or an operator's `rotate`): a scan says so quietly, with no alert. 45 minutes.
 */
export const ROTATION_STUCK_AFTER_MS = ROTATION_STEPS.length * ROTATION_STEP_DEADLINE_MS + 5 * 60_000;

/** An open rotation of known age up to ROTATION_STUCK_AFTER_MS: still running. Unknown age counts as stuck. */
export function isRotationRunning(openRotationAgeMs: number | undefined): boolean {
  return openRotationAgeMs !== undefined && openRotationAgeMs <= ROTATION_STUCK_AFTER_MS;
}

/** A manager silent this long after a rotation was promoted has not picked up the new token. */
export const STALE_AFTER_ROTATION_MS = 15 * 60_000;

/**
 * What one scan does for one runner. Pure: the scanner gathers the inputs (secret, ledger, GitLab's
 * managers) and carries out the plan (RotateSecret, re-push, metrics, alerts).
 */
export function planScan(input: ScanInput): ScanPlan {
  const { runner, current, now } = input;
  const decision = decideRotation(current, runner.policy, now);
  const warnings: string[] = [];
  if (decision.expired) warnings.push(`token of runner ${runner.runnerId} expired: a rotation must reset it by id with the admin access token`);
  const lifetimeMs = current.tokenExpiresAt === null ? null : Date.parse(current.tokenExpiresAt) - Date.parse(current.tokenObtainedAt);
  if (lifetimeMs !== null && lifetimeMs > 0 && lifetimeMs < 2 * input.scanIntervalMs) {
    warnings.push(
      `token lifetime ${formatDays(lifetimeMs / 86_400_000)} is shorter than twice the scan interval (${formatDays(input.scanIntervalMs / 86_400_000)}): it can expire between two scans; scan more often`,
    );
  }
  if (input.rotationInProgress && isRotationRunning(input.openRotationAgeMs)) {
    return { decision, rotate: false, repushHosts: [], warnings, rotationRunning: true };
  }
  if (decision.due && input.rotationInProgress) {
    const open = input.openRotationAgeMs === undefined ? 'for an unknown time' : `for ${Math.round(input.openRotationAgeMs / 60_000)} min`;
    warnings.push(
      `due (${decision.reason}) but a rotation is still in progress, open ${open} (a healthy one finishes within ${ROTATION_STUCK_AFTER_MS / 60_000} min): it is stuck or failing`,
    );
    return { decision, rotate: false, repushHosts: [], warnings, rotationRunning: false };
  }
  if (decision.due) return { decision, rotate: true, repushHosts: [], warnings, rotationRunning: false };
  return { decision, rotate: false, repushHosts: hostsToRepush(input, warnings), warnings, rotationRunning: false };
}

function hostsToRepush(input: ScanInput, warnings: string[]): string[] {
  const last = input.lastRotation;
  const repush = new Set(input.everyHost ?? []);
  if (!last || last.toVersionId !== input.currentVersionId) return [...repush];
  for (const h of last.hosts) if (!hostHoldsVersion(h)) repush.add(h.host);
  const staleBefore = Date.parse(last.promotedAt) + STALE_AFTER_ROTATION_MS;
  if (input.managers && input.now.getTime() > staleBefore) {
    const hostBySystemId = new Map(last.hosts.filter((h) => h.systemId).map((h) => [h.systemId as string, h.host]));
    for (const manager of input.managers) {
      const contacted = manager.contactedAt === null ? 0 : Date.parse(manager.contactedAt);
      if (contacted >= Date.parse(last.promotedAt)) continue;
      const host = hostBySystemId.get(manager.systemId);
      if (host) repush.add(host);
      else warnings.push(`manager ${manager.systemId} has been silent since before the last rotation and is not one of the hosts it reached`);
    }
  }
  return [...repush];
}
