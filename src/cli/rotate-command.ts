import { InvalidInputError } from '../core/errors.ts';
import { outageWindow } from '../core/outage-window.ts';
import { alertAfterRotationStep } from '../core/alerting.ts';
import { rotateNow } from '../core/rotate-now.ts';
import type { RotateNowResult } from '../core/rotate-now.ts';
import { hostHoldsVersion } from '../core/types.ts';
import type { ManagedRunner } from '../core/types.ts';
import type { LocalEngine } from '../engines/local-engine.ts';
import type { Output } from './output.ts';
import { formatWindow } from './progress.ts';
import { collectStatus, type RunnerStatus } from './status-command.ts';
import { formatTable } from './table.ts';

/** How long one rotation may take before the store retries give up (the Lambda has 15 min at most). */
export const ROTATION_BUDGET_MS = 5 * 60_000;

export interface RotationRun {
  runner: ManagedRunner;
  result?: RotateNowResult;
  error?: Error;
}

/** Picks the runners to rotate: one by name, or every adopted runner whose token is due. */
export async function selectRunners(engine: LocalEngine, name: string | undefined, due: boolean, now: Date): Promise<ManagedRunner[]> {
  if (name !== undefined) {
    const runner = engine.config.runners.find((r) => r.name === name);
    if (!runner) throw new InvalidInputError(`runner "${name}"`, `not in the fleet config (known: ${engine.config.runners.map((r) => r.name).join(', ')})`);
    return [runner];
  }
  if (!due) throw new InvalidInputError('rotate', 'name a runner to rotate, or pass --due to rotate every runner that is due');
  return (await selectDueRunners(engine, now)).runners;
}

/**
 * Every adopted runner whose token is due, and the runners whose state could not be read (a broken secret
 * or ledger file): nobody knows whether those are due, so `rotate --due` names them and fails rather than
 * saying "No runner is due".
 */
export async function selectDueRunners(engine: LocalEngine, now: Date): Promise<{ runners: ManagedRunner[]; unreadable: RunnerStatus[] }> {
  const rows = await collectStatus(engine, now);
  return { runners: rows.filter((s) => s.adopted && s.due).map((s) => s.runner), unreadable: rows.filter((s) => s.problem !== null) };
}

/** Rotates each runner in turn; one runner's failure does not stop the next. */
export async function rotateRunners(engine: LocalEngine, runners: ManagedRunner[], output: Output): Promise<RotationRun[]> {
  const runs: RotationRun[] = [];
  for (const runner of runners) {
    try {
      const result = await rotateNow(engine.deps, runner.secretId, ROTATION_BUDGET_MS);
      runs.push({ runner, result });
      const last = result.steps.at(-1);
      if (last) await alertLocally(output, runner.name, () => alertAfterRotationStep(engine.alerts, runner.name, runner.secretId, { outcome: last }, { alertEveryFailure: true }));
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      output.err(`[${runner.name}] rotation failed: ${err.message}`);
      const fix = (err as { fix?: string }).fix;
      if (fix) output.err(`[${runner.name}] fix: ${fix}`);
      runs.push({ runner, error: err });
      await alertLocally(output, runner.name, () => alertAfterRotationStep(engine.alerts, runner.name, runner.secretId, { error }, { alertEveryFailure: true }));
    }
  }
  return runs;
}

/** An alert that cannot be sent (Slack down) is said on stderr, not thrown: the next run sends it again. */
export async function alertLocally(output: Output, runner: string, alerting: () => Promise<unknown>): Promise<void> {
  try {
    await alerting();
  } catch (error) {
    output.err(`[${runner}] could not send an alert: ${(error as Error).message}`);
  }
}

/** The per-host report at the end of `rotator rotate`; returns the number of problems (failed runners + missed hosts). */
export function printRotationReport(runs: RotationRun[], output: Output): number {
  const rows: string[][] = [];
  for (const run of runs) {
    if (run.error || !run.result?.record) {
      rows.push([run.runner.name, '-', 'rotation failed', '-', run.error?.message ?? 'no rotation record']);
      continue;
    }
    for (const host of run.result.record.hosts) rows.push([run.runner.name, host.host, host.status, host.systemId ?? '-', host.detail]);
  }
  output.out('');
  for (const line of formatTable(['RUNNER', 'HOST', 'RESULT', 'SYSTEM ID', 'DETAIL'], rows)) output.out(line);
  output.out('');
  for (const run of runs) {
    if (!run.result?.record) continue;
    const { record } = run.result;
    const window = outageWindow(record);
    const span = record.strategy === 'replace' ? `old runner ${record.replacedRunnerId ?? '?'} deleted after the last host ran runner ${record.runnerId}` : 'GitLab reset -> last host updated';
    output.out(`outage window ${run.runner.name}: ${formatWindow(window.ms, window.complete)} (${span})`);
  }
  return rotationProblems(runs);
}

/** Failed rotations, and hosts that do not hold the new token: what makes `rotate` exit 1. */
export function rotationProblems(runs: RotationRun[]): number {
  let problems = 0;
  for (const run of runs) {
    if (run.error || !run.result?.record) problems += 1;
    else problems += run.result.record.hosts.filter((host) => !hostHoldsVersion(host)).length;
  }
  return problems;
}
