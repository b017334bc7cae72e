import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { RunnerDaemons } from '../../src/simulator/runner-daemons.ts';
import { createSimulatedFleet, isManagedTable, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';

let dir: string;
let simulator: GitLabSimulator;
let fleet: SimulatedFleet;
let daemons: RunnerDaemons | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'daemons-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  fleet = await createSimulatedFleet(simulator, dir, [{ name: 'builders', hosts: 2 }]);
});

afterEach(async () => {
  await daemons?.stopAll();
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

const waitForTicks = async (d: RunnerDaemons, count: number) => {
  while (d.mark() < count) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe('the simulated gitlab-runners', () => {
  it('poll GitLab with every table of their config.toml and record each host as served while its runner is accepted', async () => {
    daemons = new RunnerDaemons(fleet.url, fleet.hosts, { intervalMs: 10, counts: isManagedTable }).start();
    await waitForTicks(daemons, 4);

    expect(daemons.offlineSince(0).offline).toBe(0);
    expect(daemons.ticks[0]?.polls.map((p) => p.status)).toEqual([204, 204]);
    const managers = simulator.runner(fleet.runners[0]!.id)!.managers.map((m) => m.systemId).sort();
    expect(managers).toEqual(fleet.hosts.map((h) => h.systemId).sort());
  });

  it('count a host offline once GitLab refuses its runner, even while the neighbour table still works', async () => {
    daemons = new RunnerDaemons(fleet.url, fleet.hosts, { intervalMs: 10, counts: isManagedTable }).start();
    simulator.revokeToken(fleet.runners[0]!.id);
    const mark = daemons.mark();
    await waitForTicks(daemons, mark + 4);

    const { offline, ticks } = daemons.offlineSince(mark + 2);
    expect(offline).toBe(ticks);
    expect(daemons.ticks.at(-1)?.polls.some((p) => p.status === 204)).toBe(true);
  });

  it('stop polling for a host whose gitlab-runner was stopped, and start again when resumed', async () => {
    daemons = new RunnerDaemons(fleet.url, fleet.hosts, { intervalMs: 10 }).start();
    const stopped = fleet.hosts[0]!.name;
    daemons.stop(stopped);
    const mark = daemons.mark();
    await waitForTicks(daemons, mark + 6);
    expect(daemons.ticks.slice(mark + 2).every((t) => t.host !== stopped)).toBe(true);

    daemons.resume(stopped);
    const resumed = daemons.mark();
    await waitForTicks(daemons, resumed + 6);
    expect(daemons.ticks.slice(resumed).some((t) => t.host === stopped)).toBe(true);
  });
});
