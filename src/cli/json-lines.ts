/**
 * What `--json` prints: one JSON object per runner and line (JSON Lines), so that `jq` or a script reads
 * each runner as it comes. Progress and alert lines go to stderr meanwhile; no object holds a token.
 * Times are ISO 8601 strings, counts are numbers, an unknown value is null.
 */
import { outageWindow } from '../core/outage-window.ts';
import type { RunnerScanResult } from '../core/scan-runner.ts';
import { hostHoldsVersion, type HostResult, type HostSelector } from '../core/types.ts';
import type { RotationRun } from './rotate-command.ts';
import type { RunnerStatus } from './status-command.ts';

/** The hosts a selector names, as numbers and names where they are known (files, instance ids). */
function hostsOf(selector: HostSelector): { hosts: number | null; hostNames: string[] | null } {
  switch (selector.kind) {
    case 'config-files':
      return { hosts: selector.files.length, hostNames: selector.files.map((f) => f.name) };
    case 'ec2-instances':
      return { hosts: selector.instanceIds.length, hostNames: [...selector.instanceIds] };
    case 'ec2-tag':
      return { hosts: null, hostNames: null };
  }
}

function hostJson(host: HostResult) {
  return { host: host.host, status: host.status, holdsToken: hostHoldsVersion(host), systemId: host.systemId, detail: host.detail };
}

/** `status --json`: one runner's row. */
export function statusJson(row: RunnerStatus) {
  const { runner } = row;
  return {
    runner: runner.name,
    url: runner.gitlabUrl,
    runnerId: runner.runnerId,
    strategy: runner.strategy,
    adopted: row.adopted,
    expiresAt: row.expiresAt,
    daysLeft: row.daysLeft,
    due: row.due,
    reason: row.reason,
    problem: row.problem,
    ...hostsOf(runner.hosts),
    lastRotation: row.lastRotation,
  };
}

/** `rotate --json` and `adopt --json`: how one runner's rotation ended, host by host. */
export function rotationJson(run: RotationRun) {
  const record = run.result?.record;
  if (run.error || !record) {
    return { runner: run.runner.name, runnerId: run.runner.runnerId, rotated: false, error: run.error?.message ?? 'no rotation record', fix: (run.error as { fix?: string } | undefined)?.fix ?? null, hosts: [] };
  }
  const window = outageWindow(record);
  return {
    runner: run.runner.name,
    runnerId: record.runnerId,
    rotated: true,
    strategy: record.strategy ?? 'reset',
    versionId: record.toVersionId,
    tokenExpiresAt: record.tokenExpiresAt,
    promotedAt: record.promotedAt,
    outageWindowMs: window.ms,
    outageWindowComplete: window.complete,
    hosts: record.hosts.map(hostJson),
  };
}

/** `scan --json`: what the scan did for one runner, or why it could not. */
export function scanJson(runner: string, outcome: { result: RunnerScanResult } | { notAdopted: true } | { error: Error }) {
  if ('notAdopted' in outcome) return { runner, adopted: false, due: null, reason: 'not adopted', rotated: false, repushed: [], warnings: [], error: null };
  if ('error' in outcome) return { runner, adopted: null, due: null, reason: null, rotated: false, repushed: [], warnings: [], error: outcome.error.message, fix: (outcome.error as { fix?: string }).fix ?? null };
  const { result } = outcome;
  return {
    runner,
    adopted: true,
    due: result.plan?.decision.due ?? null,
    reason: result.plan?.decision.reason ?? null,
    rotated: result.rotationStarted,
    rotationRunning: result.rotationRunning,
    rotationStuck: result.rotationStuck,
    repushed: result.repushed.map(hostJson),
    missingHosts: result.missingHosts.map((h) => h.host),
    warnings: result.warnings,
    error: null,
  };
}
