import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Output } from '../../src/cli/output.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { createSimulatedFleet, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const DAY_MS = 86_400_000;
let dir: string;
let simulator: GitLabSimulator;
let fleet: SimulatedFleet;
let fleetPath: string;
let stdout: string[];
let stderr: string[];

const streams: Output = { out: (line) => stdout.push(line), err: (line) => stderr.push(line) };
const rotator = (...args: string[]) => main(['--fleet', fleetPath, ...args], streams);
/** Every stdout line is one JSON object (a line that is not fails the test). */
const objects = () => stdout.map((line) => JSON.parse(line) as Record<string, unknown>);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'json-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  const now = Date.now();
  fleet = await createSimulatedFleet(simulator, dir, [
    { name: 'fresh', hosts: 2 },
    { name: 'old', hosts: 2, tokenObtainedAt: new Date(now - 25 * DAY_MS), tokenExpiresAt: new Date(now + 5 * DAY_MS) },
  ]);
  fleetPath = join(dir, 'fleet.json');
  await writeFile(fleetPath, JSON.stringify(fleet.fleetFile('state', 'none')));
  stdout = [];
  stderr = [];
});

afterEach(async () => {
  expectNoTokens(captured(stdout, stderr), fleet.tokens);
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('--json', () => {
  it('status prints one object per runner, with the number of hosts and their names', async () => {
    expect(await rotator('status', '--json')).toBe(0);

    expect(objects().map((o) => [o.runner, o.adopted, o.hosts, o.hostNames])).toEqual([
      ['fresh', false, 2, ['fresh-1', 'fresh-2']],
      ['old', false, 2, ['old-1', 'old-2']],
    ]);
  });

  it('adopt prints one object: where the token came from and how the rotation went on each host, with progress on stderr', async () => {
    expect(await rotator('adopt', 'old', '--json')).toBe(0);

    const [adopted, ...rest] = objects();
    expect(rest).toEqual([]);
    expect(adopted).toMatchObject({ runner: 'old', adoptedFrom: fleet.hosts.find((h) => h.name === 'old-1')?.configPath });
    const rotation = adopted?.rotation as Record<string, unknown>;
    expect(rotation).toMatchObject({ runner: 'old', rotated: true, strategy: 'reset', outageWindowComplete: true });
    expect(rotation.outageWindowMs).toEqual(expect.any(Number));
    expect((rotation.hosts as Array<Record<string, unknown>>).map((h) => [h.host, h.status, h.holdsToken])).toEqual([
      ['old-1', 'updated', true],
      ['old-2', 'updated', true],
    ]);
    expect(stderr.join('\n')).toContain('[old] createSecret');
  });

  it('rotate --due prints one object per runner rotated, and says on stderr when none is due', async () => {
    expect(await rotator('adopt', 'fresh', '--no-rotate')).toBe(0);
    expect(await rotator('adopt', 'old', '--no-rotate')).toBe(0);
    stdout = [];

    expect(await rotator('rotate', '--due', '--json')).toBe(0);
    expect(objects().map((o) => [o.runner, o.rotated])).toEqual([['old', true]]);

    stdout = [];
    stderr = [];
    expect(await rotator('rotate', '--due', '--json')).toBe(0);
    expect(stdout).toEqual([]);
    expect(stderr).toContain('No runner is due.');
  });

  it('scan prints one object per runner, a runner not adopted among them (exit 1)', async () => {
    expect(await rotator('adopt', 'old', '--no-rotate')).toBe(0);
    stdout = [];

    expect(await rotator('scan', '--json')).toBe(1);

    const byRunner = Object.fromEntries(objects().map((o) => [o.runner, o]));
    expect(byRunner.fresh).toMatchObject({ adopted: false, rotated: false, error: null });
    expect(byRunner.old).toMatchObject({ adopted: true, due: true, rotated: true, error: null });
    expect(stderr.join('\n')).toContain('[fresh] not adopted');
  });

  it('is refused with --aws, which reports through the stack (exit 2)', async () => {
    expect(await rotator('rotate', 'old', '--aws', '--json')).toBe(2);
    expect(stderr.join('\n')).toContain('rotate --aws: --json is for the local engine');
  });
});
