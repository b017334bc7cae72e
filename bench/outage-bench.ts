/**
 * Outage window of the reset strategy: one runner on N hosts through the local engine, with every part
 * real: the GitLab simulator over HTTP, the file secret store and ledger, and host/update-runner-token.sh
 * in bash on each host's config.toml (LocalFleet, 8 hosts at once). The window of each rotation is the
 * engine's own measure (src/core/outage-window.ts): GitLab's reset reply (the old token dies) → the last
 * host's updater finished, on the system clock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptRunner, findCurrentToken } from '../src/cli/adopt-command.ts';
import { systemClock } from '../src/adapters/system-clock.ts';
import { parseFleetConfig } from '../src/config/fleet-config.ts';
import { outageWindow } from '../src/core/outage-window.ts';
import { rotateNow } from '../src/core/rotate-now.ts';
import type { ManagedRunner } from '../src/core/types.ts';
import { createLocalEngine } from '../src/engines/local-engine.ts';
import { GitLabSimulator } from '../src/simulator/gitlab-simulator.ts';
import { checkHosts, createSimulatedFleet } from '../src/simulator/simulated-fleet.ts';

const DAY_MS = 86_400_000;

export interface OutageMeasurement {
  hosts: number;
  rotations: number;
  windowsMs: number[];
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** Whole rotation (four steps) per rotation, for scale. */
  rotationP50Ms: number;
  allHostsAccepted: boolean;
}

export async function runOutage(hosts: number, rotations: number): Promise<OutageMeasurement> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-outage-'));
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  try {
    const now = Date.now();
    const fleet = await createSimulatedFleet(simulator, dir, [{ name: 'runner-a', hosts, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) }]);
    const config = parseFleetConfig(JSON.stringify(fleet.fleetFile(join(dir, 'state'), 'none')), join(dir, 'fleet.json'));
    const engine = createLocalEngine(config, { events: () => undefined, alertLines: () => undefined, clock: systemClock });
    const runner = config.runners[0] as ManagedRunner;
    await adoptRunner(engine, runner, await findCurrentToken(runner, undefined), new Date());
    const windowsMs: number[] = [];
    const rotationMs: number[] = [];
    for (let i = 0; i < rotations; i += 1) {
      const start = performance.now();
      const result = await rotateNow(engine.deps, runner.secretId, 120_000);
      rotationMs.push(performance.now() - start);
      const window = result.record ? outageWindow(result.record) : undefined;
      if (!window?.complete || window.ms === null) throw new Error(`rotation ${i + 1} did not reach every host`);
      windowsMs.push(window.ms);
    }
    const allHostsAccepted = (await checkHosts(fleet.hosts, fleet.url)).every((c) => c.accepted);
    return { hosts, rotations, windowsMs, p50Ms: percentile(windowsMs, 0.5), p95Ms: percentile(windowsMs, 0.95), maxMs: Math.max(...windowsMs), rotationP50Ms: percentile(rotationMs, 0.5), allHostsAccepted };
  } finally {
    await simulator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}
