/**
 * Outage window of a strategy: one runner on N hosts through the local engine, with every part real: the
 * GitLab simulator over HTTP, the file secret store and ledger, and host/update-runner-token.sh in bash on
 * each host's config.toml (LocalFleet, 16 hosts at once). The window of each rotation is the engine's own
 * measure (src/core/outage-window.ts): the old token's death (reset: GitLab's reply; replace: the
 * promotion, just before the old runner is deleted) → the last host's updater finished, on the system
 * clock. Each host also runs a simulated gitlab-runner polling every 50 ms (runner-daemons.ts): the polls
 * in which a host had no runner GitLab accepted are the outage as the hosts saw it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptRunner, findCurrentToken } from '../src/cli/adopt-command.ts';
import { systemClock } from '../src/adapters/local/system-clock.ts';
import { parseFleetConfig } from '../src/config/fleet-config.ts';
import { outageWindow } from '../src/core/outage-window.ts';
import { rotateNow } from '../src/core/rotate-now.ts';
import { parseSecretValue } from '../src/core/secret-value.ts';
import type { ManagedRunner, RotationStrategy } from '../src/core/types.ts';
import { createLocalEngine } from '../src/engines/local-engine.ts';
import { GitLabSimulator } from '../src/simulator/gitlab-simulator.ts';
import { RunnerDaemons } from '../src/simulator/runner-daemons.ts';
import { checkHosts, createSimulatedFleet, isManagedTable } from '../src/simulator/simulated-fleet.ts';

const DAY_MS = 86_400_000;
/** gitlab-runner's poll interval on the simulated hosts, and how often replace reads the managers. */
const POLL_MS = 50;

export interface OutageMeasurement {
  strategy: RotationStrategy;
  hosts: number;
  rotations: number;
  windowsMs: number[];
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** Whole rotation (four steps) per rotation, for scale. */
  rotationP50Ms: number;
  allHostsAccepted: boolean;
  /** Polls (one per host every 50 ms) in which a host had no runner GitLab accepted, during the rotations, of all polls. */
  offlinePolls: number;
  polls: number;
}

export async function runOutage(hosts: number, rotations: number, strategy: RotationStrategy = 'reset'): Promise<OutageMeasurement> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-outage-'));
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  let daemons: RunnerDaemons | undefined;
  try {
    const now = Date.now();
    const fleet = await createSimulatedFleet(simulator, dir, [{ name: 'runner-a', hosts, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) }]);
    const file = fleet.fleetFile(join(dir, 'state'), 'none') as Record<string, unknown>;
    if (strategy === 'replace') {
      // An administrator's: only an admin may create an instance runner (Ci::Runners::CreateRunnerService).
      await writeFile(join(dir, 'admin-token'), `${simulator.addAccessToken({ scopes: ['api'], admin: true })}\n`, { mode: 0o600 });
      Object.assign(file, { adminTokenFile: join(dir, 'admin-token'), defaults: { reload: 'none', strategy } });
    }
    const config = parseFleetConfig(JSON.stringify(file), join(dir, 'fleet.json'));
    const engine = createLocalEngine(config, { events: () => undefined, alertLines: () => undefined, clock: systemClock, replace: { confirmWithinMs: 60_000, pollMs: POLL_MS } });
    daemons = new RunnerDaemons(fleet.url, fleet.hosts, { intervalMs: POLL_MS, counts: isManagedTable }).start();
    const runner = config.runners[0] as ManagedRunner;
    await adoptRunner(engine, runner, await findCurrentToken(runner, undefined), new Date());
    const windowsMs: number[] = [];
    const rotationMs: number[] = [];
    const mark = daemons.mark();
    for (let i = 0; i < rotations; i += 1) {
      const start = performance.now();
      const result = await rotateNow(engine.deps, runner.secretId, 120_000);
      rotationMs.push(performance.now() - start);
      const window = result.record ? outageWindow(result.record) : undefined;
      if (!window?.complete || window.ms === null) throw new Error(`rotation ${i + 1} did not reach every host`);
      windowsMs.push(window.ms);
    }
    await daemons.stopAll();
    const { offline, ticks } = daemons.offlineSince(mark);
    const current = await engine.store.getValue(runner.secretId, { stage: 'AWSCURRENT' });
    const runnerId = current ? parseSecretValue(current, runner.secretId).runnerId : runner.runnerId;
    const allHostsAccepted = (await checkHosts(fleet.hosts, fleet.url, () => runnerId)).every((c) => c.accepted && c.leftoverRunnerIds.length === 0);
    return {
      strategy,
      hosts,
      rotations,
      windowsMs,
      p50Ms: percentile(windowsMs, 0.5),
      p95Ms: percentile(windowsMs, 0.95),
      maxMs: Math.max(...windowsMs),
      rotationP50Ms: percentile(rotationMs, 0.5),
      allHostsAccepted,
      offlinePolls: offline,
      polls: ticks,
    };
  } finally {
    await daemons?.stopAll();
    await simulator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}
