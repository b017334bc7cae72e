import { appendFileSync } from 'node:fs';
import type { CaseState, FaultCase } from './fault-cases.ts';
import { startWorld } from './fault-world.ts';
import { judge, leaks, snapshot, type CaseVerdict } from './verdict.ts';

/**
 * Runs one case through its phases and the shared verdict: inject → run → snapshot S1 → repair → one scan
 * → snapshot S2 → the case's own checks → leak search over everything captured. The world is always closed.
 */
export async function runCase(fault: FaultCase): Promise<CaseVerdict> {
  const world = await startWorld(fault.engine, fault.options);
  const state: CaseState = { checks: [] };
  try {
    const threw = async (phase: string, action: () => Promise<unknown>) => {
      try {
        await action();
      } catch (error) {
        world.errors.push(error);
        state.checks.push(`${phase} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
      }
    };
    await threw('inject', async () => fault.inject?.(world, state));
    await threw('run', () => fault.run(world, state));
    const s1 = await snapshot(world);
    await threw('repair', async () => fault.repair?.(world, state));
    await threw('the repair scan', () => world.scan());
    const s2 = await snapshot(world);
    let extra: string[] = [];
    await threw('expect', async () => {
      extra = (await fault.expect?.(world, state)) ?? [];
    });
    const leaked = leaks(world.capturedStreams(), await world.knownTokens());
    return judge(world, fault.name, s1, s2, leaked, [...state.checks, ...extra]);
  } finally {
    await world.close();
  }
}

/** Appends the verdict as one JSON line to the file FAULTS_REPORT names (npm run faults reads it). */
export function recordVerdict(verdict: CaseVerdict): void {
  const file = process.env.FAULTS_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(verdict)}\n`);
}

/** Appends how many cases the run should report, so that a case that never reported counts as failed. */
export function recordPlan(planned: number): void {
  const file = process.env.FAULTS_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify({ planned })}\n`);
}
