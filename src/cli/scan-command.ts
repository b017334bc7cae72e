import { isRotationLockedError } from '../adapters/local/file-secret-store.ts';
import { alertAfterRotationStep, alertAfterScan } from '../core/alerting.ts';
import type { StepOutcome } from '../core/rotation-steps.ts';
import { rotateNow } from '../core/rotate-now.ts';
import { scanRunner, type RunnerScanResult, type ScanDeps } from '../core/scan-runner.ts';
import { hostHoldsVersion } from '../core/types.ts';
import type { LocalEngine } from '../engines/local-engine.ts';
import { scanJson } from './json-lines.ts';
import type { Output } from './output.ts';
import { alertLocally, ROTATION_BUDGET_MS } from './rotate-command.ts';

/**
 * `rotator scan`: what the AWS engine's scheduled scanner does, on this machine: rotate what is due,
 * re-push the current token to hosts that missed the last rotation. Returns the number of problems.
 */
export async function scanLocalFleet(engine: LocalEngine, output: Output, scanIntervalMs: number, options: { json?: boolean } = {}): Promise<number> {
  // --json: one object per runner on stdout (json-lines.ts); the lines for people go to stderr.
  const said = (line: string) => (options.json ? output.err(line) : output.out(line));
  const json = (line: Parameters<typeof scanJson>[1], runner: string) => options.json && output.out(JSON.stringify(scanJson(runner, line)));
  const deps: ScanDeps = {
    ...engine.deps,
    // Every scan re-applies AWSCURRENT to every config file: a host left behind converges without a rotation.
    convergeEveryHost: true,
    // The rotation runs to its end here, so its outcome is alerted here, as the rotation hook does in AWS.
    startRotation: async (runner, secretId) => {
      const alert = (result: { outcome: StepOutcome } | { error: unknown }) =>
        alertLocally(output, runner.name, () => alertAfterRotationStep(engine.alerts, runner.name, secretId, result, { alertEveryFailure: true }));
      try {
        const last = (await rotateNow(engine.deps, secretId, ROTATION_BUDGET_MS)).steps.at(-1);
        if (last) await alert({ outcome: last });
      } catch (error) {
        // Another rotation holds the runner's lock (an overlapping scan or `rotate`): nothing failed here.
        if (!isRotationLockedError(error)) await alert({ error });
        throw error;
      }
    },
  };
  let problems = 0;
  // One runner's problem (its state file unreadable, GitLab down for it…) is that runner's line: the others are scanned.
  for (const runner of engine.config.runners) {
    try {
      if (!(await engine.store.exists(runner.secretId))) {
        output.err(`[${runner.name}] not adopted: run \`rotator adopt ${runner.name}\``);
        json({ notAdopted: true }, runner.name);
        problems += 1;
        continue;
      }
      const result = await scanRunner(deps, runner, runner.secretId, scanIntervalMs);
      said(`[${runner.name}] ${describeScan(result)}`);
      json({ result }, runner.name);
      for (const warning of result.warnings) output.err(`[${runner.name}] warning: ${warning}`);
      await alertLocally(output, runner.name, () => alertAfterScan(engine.alerts, runner, result, engine.config.alerts.nearExpiryDays));
      problems += result.warnings.length + result.repushed.filter((h) => !hostHoldsVersion(h)).length;
    } catch (error) {
      output.err(`[${runner.name}] scan failed: ${(error as Error).message}`);
      const fix = (error as { fix?: string }).fix;
      if (fix) output.err(`[${runner.name}] fix: ${fix}`);
      json({ error: error instanceof Error ? error : new Error(String(error)) }, runner.name);
      problems += 1;
    }
  }
  return problems;
}

function describeScan(result: RunnerScanResult): string {
  const reason = result.plan?.decision.reason ?? 'not checked';
  if (result.rotationStarted) return `due (${reason}): rotated`;
  if (result.rotationRunning) return `${result.plan?.decision.due ? 'due' : 'not due'} (${reason}): another rotation of this runner is running; left to it`;
  if (result.plan?.decision.due) return `due (${reason}): NOT rotated`;
  if (result.repushed.length > 0) {
    const holding = result.repushed.filter(hostHoldsVersion);
    const repaired = holding.filter((h) => h.status === 'updated').length;
    const missing = result.repushed.length - holding.length;
    return `not due (${reason}); ${holding.length} of ${result.repushed.length} host(s) hold the current token${repaired > 0 ? ` (${repaired} repaired now)` : ''}${missing > 0 ? `, ${missing} could not take it` : ''}`;
  }
  return `not due (${reason})`;
}
