import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { pollForJobs } from '../../src/simulator/simulated-fleet.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

let dir: string;
let simulator: GitLabSimulator;
let runner: { id: number; token: string };
let configPath: string;
let fleetPath: string;
let output: ReturnType<typeof recordingOutput>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'init-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  const url = await simulator.start();
  runner = simulator.addRunner({ description: 'docker-builders' });
  configPath = join(dir, 'config.toml');
  await writeFile(configPath, `concurrent = 2\n\n[[runners]]\n  name = "docker-builders"\n  url = "${url}/"\n  id = ${runner.id}\n  token = "${runner.token}"\n  executor = "docker"\n`, { mode: 0o600 });
  fleetPath = join(dir, 'etc', 'fleet.json');
  output = recordingOutput();
});

afterEach(async () => {
  expectNoTokens(captured(output.lines), [runner.token]);
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

const rotator = (...args: string[]) => main(['--fleet', fleetPath, ...args], output);

describe('rotator init', () => {
  it('writes a fleet file the engine accepts for the runners of config.toml, without their tokens, and says what to run next', async () => {
    expect(await rotator('init', '--config', configPath, '--state-dir', join(dir, 'state'))).toBe(0);

    const text = await readFile(fleetPath, 'utf8');
    expect(text).not.toContain(runner.token);
    const fleet = parseFleetConfig(text, fleetPath);
    expect(fleet.runners.map((r) => [r.name, r.gitlabUrl, r.runnerId])).toEqual([['docker-builders', simulator.url, runner.id]]);
    expect(fleet.stateDir).toBe(join(dir, 'state'));
    expect((await stat(fleetPath)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'etc'))).mode & 0o777).toBe(0o700);
    expect(output.lines.join('\n')).toContain(`next: rotator --fleet ${fleetPath} adopt docker-builders`);
  });

  it('writes a fleet file with which adopt rotates the host, so the token in config.toml is a new one GitLab accepts', async () => {
    await writeFile(join(dir, '.runner_system_id'), 's_0123456789ab\n');
    expect(await pollForJobs(simulator.url, runner.token, 's_0123456789ab')).toBe(204);
    expect(await rotator('init', '--config', configPath, '--state-dir', join(dir, 'state'))).toBe(0);
    const fleet = JSON.parse(await readFile(fleetPath, 'utf8')) as Record<string, unknown>;
    await writeFile(fleetPath, JSON.stringify({ ...fleet, defaults: { reload: 'none' } }));

    expect(await rotator('adopt', 'docker-builders')).toBe(0);

    const token = /token = "([^"]+)"/.exec(await readFile(configPath, 'utf8'))?.[1] ?? '';
    expect(token).not.toBe(runner.token);
    expect(simulator.accepts(token)).toBe(true);
    expect(simulator.accepts(runner.token)).toBe(false);
    expectNoTokens(captured(output.lines), [token]);
  });

  it('refuses to replace a fleet file that is there, unless --force', async () => {
    expect(await rotator('init', '--config', configPath)).toBe(0);
    await writeFile(fleetPath, '{"mine": true}\n');

    expect(await rotator('init', '--config', configPath)).toBe(2);
    expect(await readFile(fleetPath, 'utf8')).toBe('{"mine": true}\n');
    expect(output.lines.join('\n')).toContain(`${fleetPath}: a fleet file is already here: pass --force to replace it`);

    expect(await rotator('init', '--config', configPath, '--force')).toBe(0);
    expect(await readFile(fleetPath, 'utf8')).toContain('"docker-builders"');
  });

  it('names the missing config.toml and writes nothing (exit 2)', async () => {
    const missing = join(dir, 'nowhere', 'config.toml');

    expect(await rotator('init', '--config', missing)).toBe(2);

    expect(output.lines.join('\n')).toContain(`rotator: ${missing}: no runner config here: name it with --config FILE`);
    await expect(stat(fleetPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('adopt with a runnerId that config.toml does not hold names the ids it does hold and how to fix it (exit 2)', async () => {
    expect(await rotator('init', '--config', configPath, '--state-dir', join(dir, 'state'))).toBe(0);
    const fleet = JSON.parse(await readFile(fleetPath, 'utf8')) as { runners: Array<{ runnerId: number }> };
    fleet.runners[0]!.runnerId = runner.id + 100;
    await writeFile(fleetPath, JSON.stringify(fleet));

    expect(await rotator('adopt', 'docker-builders')).toBe(2);

    expect(output.lines.at(-1)).toBe(
      `rotator: ${configPath}: no [[runners]] table with url ${simulator.url} and id ${runner.id + 100} (runner ${runner.id} has url ${simulator.url}): set runnerId of "docker-builders" in the fleet file to the right one (or pass --runner-id ${runner.id}), or pass --token-file`,
    );
    expect(simulator.accepts(runner.token)).toBe(true);
  });

  it('adopt --no-rotate asks GitLab the token\'s expiry and runner, so status shows when it expires', async () => {
    expect(await rotator('init', '--config', configPath, '--state-dir', join(dir, 'state'))).toBe(0);
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${runner.token}\n`, { mode: 0o600 });

    expect(await rotator('adopt', 'docker-builders', '--no-rotate', '--token-file', tokenFile, '--runner-id', String(runner.id + 1))).toBe(2);
    expect(output.lines.at(-1)).toBe(`rotator: runner "docker-builders": GitLab says the token belongs to runner ${runner.id}, not ${runner.id + 1}: set runnerId in the fleet file, or pass --runner-id ${runner.id}`);

    expect(await rotator('adopt', 'docker-builders', '--no-rotate', '--token-file', tokenFile)).toBe(0);
    output.lines.length = 0;
    expect(await rotator('status', '--json')).toBe(0);
    const [row] = output.lines.map((l) => JSON.parse(l) as { expiresAt: string | null });
    expect(row?.expiresAt).toBe(simulator.runner(runner.id)?.tokenExpiresAt?.toISOString());
    expect(simulator.accepts(runner.token)).toBe(true);
  });
});
