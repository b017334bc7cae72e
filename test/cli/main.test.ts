import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { RunnerDaemons } from '../../src/simulator/runner-daemons.ts';
import { checkHosts, createSimulatedFleet, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const DAY_MS = 86_400_000;
let dir: string;
let simulator: GitLabSimulator;
let fleet: SimulatedFleet;
let fleetPath: string;
let output: ReturnType<typeof recordingOutput>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  const now = Date.now();
  fleet = await createSimulatedFleet(simulator, dir, [
    { name: 'fresh', hosts: 2 },
    { name: 'old', hosts: 2, tokenObtainedAt: new Date(now - 25 * DAY_MS), tokenExpiresAt: new Date(now + 5 * DAY_MS) },
  ]);
  fleetPath = join(dir, 'fleet.json');
  await writeFile(fleetPath, JSON.stringify(fleet.fleetFile('state', 'none')));
  output = recordingOutput();
});

afterEach(async () => {
  expectNoTokens(captured(output.lines), fleet.tokens);
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

const rotator = (...args: string[]) => main(['--fleet', fleetPath, ...args], output);

describe('rotator', () => {
  it('shows runners that are not adopted yet', async () => {
    expect(await rotator('status')).toBe(0);
    expect(output.lines.filter((l) => l.includes('not adopted'))).toHaveLength(2);
  });

  it('adopts a runner from its config.toml, rotates it at once, and shows it in status', async () => {
    expect(await rotator('adopt', 'old')).toBe(0);
    expect(output.lines.join('\n')).toMatch(/outage window old: \d+ ms/);
    const checks = await checkHosts(fleet.hosts.filter((h) => h.runner === 'old'), fleet.url);
    expect(checks.map((c) => c.accepted && c.selfRotationDisabled)).toEqual([true, true]);
    output.lines.length = 0;
    expect(await rotator('status', '--json')).toBe(0);
    const rows = output.lines.map((l) => JSON.parse(l) as { runner: string; adopted: boolean; due: boolean; lastRotation: string | null });
    expect(rows.find((r) => r.runner === 'old')).toMatchObject({ adopted: true, due: false });
    expect(rows.find((r) => r.runner === 'old')?.lastRotation).not.toBeNull();
    expect(rows.find((r) => r.runner === 'fresh')).toMatchObject({ adopted: false });
  });

  it('rotates only the runners that are due with --due', async () => {
    expect(await rotator('adopt', 'fresh', '--no-rotate')).toBe(0);
    expect(await rotator('adopt', 'old', '--no-rotate')).toBe(0);
    output.lines.length = 0;
    expect(await rotator('rotate', '--due')).toBe(0);
    const text = output.lines.join('\n');
    expect(text).toContain('[old] createSecret');
    expect(text).not.toContain('[fresh] createSecret');
    output.lines.length = 0;
    expect(await rotator('rotate', '--due')).toBe(0);
    expect(output.lines).toContain('No runner is due.');
  });

  it('scans: rotates what is due, and a second scan finds nothing to do', async () => {
    expect(await rotator('adopt', 'fresh', '--no-rotate')).toBe(0);
    expect(await rotator('adopt', 'old', '--no-rotate')).toBe(0);
    output.lines.length = 0;
    expect(await rotator('scan')).toBe(0);
    expect(output.lines.find((l) => l.startsWith('[old] due'))).toContain('rotated');
    // Not due, and every host converged on the current token (adopted without a rotation, so repaired now).
    expect(output.lines.find((l) => l.startsWith('[fresh] not due'))).toMatch(/2 of 2 host\(s\) hold the current token \(2 repaired now\)$/);
    output.lines.length = 0;
    expect(await rotator('scan')).toBe(0);
    expect(output.lines.filter((l) => l.includes('not due'))).toHaveLength(2);
    expect(output.lines.filter((l) => l.includes('repaired now'))).toEqual([]);
  });

  it('exits 1 and names the host when a host misses the token', async () => {
    expect(await rotator('adopt', 'fresh', '--no-rotate')).toBe(0);
    const broken = fleet.hosts.find((h) => h.name === 'fresh-2');
    await appendFile(broken?.configPath as string, 'this is = = not toml\n');
    expect(await rotator('rotate', 'fresh')).toBe(1);
    expect(output.lines.find((l) => l.startsWith('fresh') && l.includes('fresh-2'))).toMatch(/failed .*malformed TOML/);
  });

  it.each([
    [['rotate', 'nobody'], 'runner "nobody": not in the fleet config'],
    [['rotate'], 'name a runner to rotate'],
    [['scan', '--every-hours', 'soon'], '--every-hours: must be a number of hours above 0'],
  ])('exits 2 with a clear line for %j', async (args, message) => {
    expect(await rotator(...args)).toBe(2);
    expect(output.lines.join('\n')).toContain(message);
  });

  it('exits 2 and names the file and field of a bad fleet file', async () => {
    await writeFile(fleetPath, JSON.stringify({ stateDir: 'state', runners: [{ name: 'x', gitlabUrl: 'https://g', runnerId: 'seven', hosts: [{ config: 'c' }] }] }));
    expect(await rotator('status')).toBe(2);
    expect(output.lines.join('\n')).toContain(`${fleetPath}: runners[0].runnerId`);
  });

  it('re-adopts a replaced runner by the id its secret holds, not the stale id of the fleet file, and shows that id', async () => {
    // An instance runner: only an administrator may create its replacement.
    const accessToken = simulator.addAccessToken({ scopes: ['api'], admin: true });
    await writeFile(join(dir, 'admin-token'), `${accessToken}\n`, { mode: 0o600 });
    const file = fleet.fleetFile('state', 'none') as Record<string, unknown>;
    await writeFile(fleetPath, JSON.stringify({ ...file, adminTokenFile: 'admin-token', defaults: { reload: 'none', strategy: 'replace' } }));
    const daemons = new RunnerDaemons(fleet.url, fleet.hosts.filter((h) => h.runner === 'old'), { intervalMs: 20 }).start();
    try {
      expect(await rotator('adopt', 'old')).toBe(0);
    } finally {
      await daemons.stopAll();
    }
    const oldId = fleet.runners.find((r) => r.name === 'old')!.id;
    output.lines.length = 0;
    expect(await rotator('status', '--json')).toBe(0);
    const newId = (output.lines.map((l) => JSON.parse(l) as { runner: string; runnerId: number }).find((r) => r.runner === 'old'))!.runnerId;
    expect(newId).not.toBe(oldId);

    expect(await rotator('adopt', 'old', '--no-rotate')).toBe(0);

    expect(output.lines.join('\n')).toContain('adopted the token');
    expect(simulator.runner(oldId)).toBeUndefined();
    const checks = await checkHosts(fleet.hosts.filter((h) => h.runner === 'old'), fleet.url, () => newId);
    expect(checks.map((c) => c.accepted && c.leftoverRunnerIds.length === 0)).toEqual([true, true]);
  }, 30_000);

  it('adopts by the runner id given with --runner-id, and refuses one that is not a runner id', async () => {
    const oldId = fleet.runners.find((r) => r.name === 'old')!.id;
    expect(await rotator('adopt', 'old', '--no-rotate', '--runner-id', String(oldId + 1000))).toBe(2);
    expect(output.lines.join('\n')).toContain(`id ${oldId + 1000}`);
    expect(await rotator('adopt', 'old', '--no-rotate', '--runner-id', '12abc')).toBe(2);
    expect(output.lines.join('\n')).toContain('--runner-id: "12abc" is not a runner id');
    expect(await rotator('adopt', 'old', '--no-rotate', '--runner-id', String(oldId))).toBe(0);
    expect(output.lines.join('\n')).toContain(`(runner ${oldId})`);
  });
});
