import { decideRotation, formatDays, type RotationDecision } from './expiry-policy.ts';
import { hostHoldsVersion } from './types.ts';
import type { ManagedRunner, RotationRecord, RunnerManager, RunnerSecretValue } from './types.ts';

export interface ScanInput {
  runner: ManagedRunner;
  current: RunnerSecretValue;
  currentVersionId: string;
  /** A version sits in AWSPENDING: Secrets Manager refuses a new rotation until it finishes. */
  rotationInProgress: boolean;
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
  if (decision.due && input.rotationInProgress) {
    warnings.push(`due (${decision.reason}) but a rotation is still in progress: it is stuck or failing`);
    return { decision, rotate: false, repushHosts: [], warnings };
  }
  if (decision.due) return { decision, rotate: true, repushHosts: [], warnings };
  return { decision, rotate: false, repushHosts: hostsToRepush(input, warnings), warnings };
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
