import { GitLabError, InvalidInputError, RotationInProgressError, RotatorError } from './errors.ts';
import type { Clock, Fleet, GitLab, RotationEvents, RotationLedger, SecretDescription, SecretStore } from './ports.ts';
import { currentVersionId, openRotationVersionId } from './rotation-guards.ts';
import { isRotationRunning, planScan, type ScanPlan } from './scan-plan.ts';
import { parseSecretValue } from './secret-value.ts';
import { retireReplacedRunner } from './replace-steps.ts';
import { atRunnerId, hostHoldsVersion, mergeHostResults, restrictHosts } from './types.ts';
import type { HostResult, HostSelector, ManagedRunner, RotationRecord } from './types.ts';

export interface ScanDeps {
  secrets: SecretStore;
  ledger: RotationLedger;
  fleet: Fleet;
  gitlab: GitLab;
  clock: Clock;
  events: RotationEvents;
  adminToken(gitlabUrl: string): Promise<string | undefined>;
  /** RotateSecret in the AWS engine (the hook then runs on its own); a whole rotation in the local engine. */
  startRotation(runner: ManagedRunner, secretId: string): Promise<void>;
  /**
   * Re-apply AWSCURRENT to every host of the runner on each scan, not only to those the ledger says missed
   * it: a host restored from an image or a backup, one whose update was lost, or a config file added since
   * the last rotation gets the current token without a new rotation and without an admin token. The
   * updater answers `already-current` at no cost on the others. The local engine does this (its hosts are
   * files on this machine); in AWS a State Manager association of the host document does it on the hosts.
   */
  convergeEveryHost?: boolean;
}

export interface RunnerScanResult {
  runner: string;
  secretId: string;
  plan: ScanPlan | undefined;
  rotationStarted: boolean;
  /**
   * Due, but a rotation has been in progress (AWSPENDING left on a version) longer than a healthy one takes
   * (ROTATION_STUCK_AFTER_MS), or for a time nobody knows.
   */
  rotationStuck: boolean;
  /**
   * Another rotation of this runner is running (open for less than ROTATION_STUCK_AFTER_MS, or it held the
   * lock or made RotateSecret refuse this scan's): left to it. Said quietly: no warning, no alert.
   */
  rotationRunning: boolean;
  repushed: HostResult[];
  /** Hosts of the current version's rotation that still lack it after this scan's re-push. */
  missingHosts: HostResult[];
  warnings: string[];
}

/**
 * One runner's part of a scan: read its secret, ledger and (with an access token, in one call) GitLab's
 * managers; rotate when due; re-push AWSCURRENT to hosts that missed the last rotation or went silent.
 * Problems become warnings on the result: one runner never stops the scan of the others.
 *
 * `listed`: the secret's versions as the scanner's listing (ListSecrets) showed them, saving one
 * DescribeSecret per runner where the caller already holds them (the AWS scan worker's own DescribeSecret
 * of the runner, the local engine's listing).
 * A listing can lag a few minutes behind; the value itself is always read fresh, and a lagging version
 * id only makes this scan skip a re-push (the next one does it), never rotate or push by mistake.
 */
export async function scanRunner(deps: ScanDeps, runner: ManagedRunner, secretId: string, scanIntervalMs: number, listed?: SecretDescription): Promise<RunnerScanResult> {
  const result: RunnerScanResult = {
    runner: runner.name,
    secretId,
    plan: undefined,
    rotationStarted: false,
    rotationStuck: false,
    rotationRunning: false,
    repushed: [],
    missingHosts: [],
    warnings: [],
  };
  const description = listed ?? (await deps.secrets.describe(secretId));
  const versionId = currentVersionId(description);
  const raw = await deps.secrets.getValue(secretId, { stage: 'AWSCURRENT' });
  if (versionId === null || raw === undefined) {
    result.warnings.push('no AWSCURRENT value: adopt the runner first');
    return result;
  }
  let current;
  try {
    current = parseSecretValue(raw, `${runner.name} AWSCURRENT`);
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    result.warnings.push(error.message);
    return result;
  }
  const openVersionId = openRotationVersionId(description);
  const rotationInProgress = openVersionId !== null;
  const openRotationAgeMs = openVersionId === null ? undefined : await openRotationAge(deps, secretId, description, openVersionId);
  const lastRotation = await deps.ledger.lastRotation(secretId);
  // After a `replace` rotation the secret holds another runner than the config names.
  const live = atRunnerId(runner, current.runnerId);
  await retireIfPending(deps, runner, lastRotation, versionId, result.warnings);
  const managers = await readManagers(deps, live, result.warnings);
  const everyHost = deps.convergeEveryHost && live.hosts.kind === 'config-files' ? live.hosts.files.map((f) => f.name) : undefined;
  const plan = planScan({
    runner: live,
    current,
    currentVersionId: versionId,
    rotationInProgress,
    ...(openRotationAgeMs === undefined ? {} : { openRotationAgeMs }),
    lastRotation,
    managers,
    now: deps.clock.now(),
    scanIntervalMs,
    everyHost,
  });
  result.plan = plan;
  result.warnings.push(...plan.warnings);
  result.rotationRunning = plan.rotationRunning;
  result.rotationStuck = plan.decision.due && rotationInProgress && !plan.rotationRunning;
  if (plan.rotate) {
    try {
      await deps.startRotation(runner, secretId);
      result.rotationStarted = true;
    } catch (error) {
      // A failed start is this runner's problem, said in the result: the scan goes on, and its alerts
      // (near expiry, expired) are still raised. Refused because another rotation started since this scan
      // read the secret (an overlapping scan): running if that rotation is young or already gone.
      if (error instanceof RotationInProgressError && (await anotherRotationRunning(deps, secretId))) {
        result.rotationRunning = true;
      } else {
        result.rotationStuck = error instanceof RotationInProgressError;
        result.warnings.push(`due but not rotated: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  if (plan.repushHosts.length > 0) result.repushed = await repushCurrent(deps, live, secretId, plan.repushHosts);
  // After a rotation that ran to its end here (the local engine), the hosts that missed are those of the
  // new record; Secrets Manager's rotation runs on its own, so the old record still says who lacks the
  // current token.
  let holding = { versionId, record: lastRotation };
  if (result.rotationStarted) {
    holding = { versionId: currentVersionId(await deps.secrets.describe(secretId)) ?? versionId, record: await deps.ledger.lastRotation(secretId) };
  }
  if (holding.record?.toVersionId === holding.versionId) {
    result.missingHosts = mergeHostResults(holding.record.hosts, result.repushed).filter((h) => !hostHoldsVersion(h));
  }
  return result;
}

/**
 * How long the open rotation (version `versionId`, in AWSPENDING) has been open: from the version's
 * creation where the store tells it (the local engine's), else from its reset (the ledger's pending record,
 * written by createSecret); undefined where neither is known (Secrets Manager before createSecret stored).
 */
async function openRotationAge(deps: ScanDeps, secretId: string, description: SecretDescription, versionId: string): Promise<number | undefined> {
  const since = description.versions.find((v) => v.versionId === versionId)?.createdAt ?? (await deps.ledger.pending(secretId, versionId))?.resetAt;
  const sinceMs = since === undefined ? Number.NaN : Date.parse(since);
  return Number.isNaN(sinceMs) ? undefined : Math.max(0, deps.clock.now().getTime() - sinceMs);
}

/**
 * After a start refused with RotationInProgressError: is another rotation running? Yes when none is open
 * any more (it finished meanwhile, or holds the lock and has not opened its version yet) or the open one is
 * young (isRotationRunning); no when it is old or of unknown age: then it is stuck.
 */
async function anotherRotationRunning(deps: ScanDeps, secretId: string): Promise<boolean> {
  const description = await deps.secrets.describe(secretId);
  const open = openRotationVersionId(description);
  return open === null || isRotationRunning(await openRotationAge(deps, secretId, description, open));
}

/**
 * A replacement whose old runner was not retired (finishSecret failed or died after the promotion; the local
 * engine never runs it again): each scan tries again until the record says it is done. Problems are warnings.
 */
async function retireIfPending(deps: ScanDeps, runner: ManagedRunner, last: RotationRecord | undefined, versionId: string, warnings: string[]): Promise<void> {
  if (last?.strategy !== 'replace' || last.replacedRunnerRetiredAt !== undefined || last.toVersionId !== versionId) return;
  try {
    await retireReplacedRunner({ ...deps, runnerFor: () => runner }, last, runner.gitlabUrl);
  } catch (error) {
    if (!(error instanceof RotatorError)) throw error;
    warnings.push(`runner ${last.replacedRunnerId ?? '?'} replaced by runner ${last.runnerId} is not retired yet: ${error.message}`);
  }
}

async function readManagers(deps: ScanDeps, runner: ManagedRunner, warnings: string[]) {
  const token = await deps.adminToken(runner.gitlabUrl);
  if (token === undefined) return undefined;
  try {
    return await deps.gitlab.managers(runner.gitlabUrl, runner.runnerId, token);
  } catch (error) {
    if (!(error instanceof GitLabError)) throw error;
    warnings.push(`could not read runner ${runner.runnerId}'s managers: ${error.message}`);
    return undefined;
  }
}

/**
 * Pushes AWSCURRENT again to the named hosts, without a new rotation (invariant 5), and records their
 * new results in the ledger's record of the current rotation. Nothing when a rotation is open now: one
 * may have started since the scan read the secret (Secrets Manager's schedule, an operator), reset the
 * token and pushed the new one, which AWSCURRENT's old token would overwrite; that rotation pushes to
 * every host itself.
 */
export async function repushCurrent(deps: Pick<ScanDeps, 'secrets' | 'fleet' | 'ledger' | 'events'>, runner: ManagedRunner, secretId: string, hostNames: string[]): Promise<HostResult[]> {
  const description = await deps.secrets.describe(secretId);
  if (openRotationVersionId(description) !== null) return [];
  const versionId = currentVersionId(description);
  const raw = await deps.secrets.getValue(secretId, { stage: 'AWSCURRENT' });
  if (versionId === null || raw === undefined) return [];
  const previousVersionId = description.versions.find((v) => v.stages.includes('AWSPREVIOUS'))?.versionId ?? null;
  const { tokenExpiresAt, runnerId } = parseSecretValue(raw, `${runner.name} AWSCURRENT`);
  const hosts = restrictHosts(runner.hosts, hostNames);
  if (isEmptySelector(hosts)) return [];
  const results = await deps.fleet.push({ ...runner, runnerId, hosts }, { secretId, versionId, previousVersionId, tokenExpiresAt }, (r) =>
    deps.events({ kind: 'host-result', secretId, result: r }),
  );
  await deps.ledger.updateHosts(secretId, versionId, results);
  return results;
}

function isEmptySelector(selector: HostSelector): boolean {
  return (selector.kind === 'config-files' && selector.files.length === 0) || (selector.kind === 'ec2-instances' && selector.instanceIds.length === 0);
}
