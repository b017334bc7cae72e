import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { runSimulatorCommand } from '../../src/cli/simulator-command.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { pollForJobs } from '../../src/simulator/simulated-fleet.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'simulator-cmd-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Table = Record<string, unknown>;
const tablesOf = async (path: string) => (parse(await readFile(path, 'utf8')) as { runners: Table[] }).runners;

/** Runs `rotator simulator` in this process until `work` is done with the files it wrote, then stops it. */
async function withSimulator(options: { config?: string }, work: (files: { dir: string; fleetPath: string; configPath: string; url: string }) => Promise<void>) {
  const output = recordingOutput();
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const trial = join(dir, 'try');
  // The command prints its instructions once everything is written and the simulator serves.
  let ready: () => void = () => {};
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const watching = { out: (line: string) => (output.out(line), line.includes('Stop with Ctrl-C') && ready()), err: output.err };
  const running = runSimulatorCommand({ dir: trial, config: options.config, port: 0, expiresInDays: 3 }, watching, stopped);
  await Promise.race([isReady, running.then((code) => Promise.reject(new Error(`rotator simulator exited ${code} before it was ready: ${output.lines.join('\n')}`)))]);
  const url = /GitLab simulator on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.lines[0] ?? '')?.[1] ?? '';
  try {
    await work({ dir: trial, fleetPath: join(trial, 'fleet.json'), configPath: join(trial, 'config.toml'), url });
  } finally {
    stop();
    expect(await running).toBe(0);
  }
  return output;
}

describe('rotator simulator', () => {
  it('serves a runner host with a fleet file on which adopt rotates the token, and prints no token', async () => {
    const rotatorOutput = recordingOutput();
    const seen: string[] = [];
    const output = await withSimulator({}, async ({ fleetPath, configPath, url }) => {
      const [before] = await tablesOf(configPath);
      seen.push(String(before?.token));
      expect(await pollForJobs(url, String(before?.token), 's_000000000000')).toBe(204);
      expect(parseFleetConfig(await readFile(fleetPath, 'utf8'), fleetPath).runners.map((r) => [r.name, r.gitlabUrl, r.reload])).toEqual([['my-runner', url, 'none']]);

      expect(await main(['--fleet', fleetPath, 'adopt', 'my-runner'], rotatorOutput)).toBe(0);

      const [after] = await tablesOf(configPath);
      seen.push(String(after?.token));
      expect(after?.token).not.toBe(before?.token);
      expect(await pollForJobs(url, String(after?.token), 's_000000000000')).toBe(204);
      expect(await pollForJobs(url, String(before?.token), 's_000000000000')).toBe(403);
    });
    expect(output.lines.join('\n')).toContain('export ROTATOR_FLEET=');
    expect(output.lines.at(-1)).toMatch(/^simulator stopped; files kept in /);
    expectNoTokens(captured(output.lines, rotatorOutput.lines), seen);
  });

  it('copies a config.toml: each table keeps its settings and gets a simulator runner, and the original is not touched', async () => {
    const original = join(dir, 'config.toml');
    const realTokens = ['glrt-REALREALREALREALREAL1', 'glrt-REALREALREALREALREAL2'];
    const text = `concurrent = 8\n\n[[runners]]\n  name = "docker"\n  url = "https://gitlab.example.com/"\n  id = 42\n  token = "${realTokens[0]}"\n  executor = "docker"\n  [runners.docker]\n    image = "alpine:3.20"\n\n[[runners]]\n  name = "shell"\n  url = "https://gitlab.example.com/"\n  id = 43\n  token = "${realTokens[1]}"\n  executor = "shell"\n`;
    await writeFile(original, text, { mode: 0o600 });

    const output = await withSimulator({ config: original }, async ({ configPath, fleetPath, url }) => {
      const tables = await tablesOf(configPath);
      expect(tables.map((t) => [t.name, t.executor, t.url])).toEqual([['docker', 'docker', `${url}/`], ['shell', 'shell', `${url}/`]]);
      expect((tables[0]?.docker as Table).image).toBe('alpine:3.20');
      const copy = await readFile(configPath, 'utf8');
      for (const token of realTokens) expect(copy).not.toContain(token);
      expect(JSON.parse(await readFile(fleetPath, 'utf8')).runners.map((r: Table) => r.name)).toEqual(['docker', 'shell']);
    });

    expect(await readFile(original, 'utf8')).toBe(text);
    expectNoTokens(captured(output.lines), realTokens);
  });

  it('refuses a folder that already holds a config.toml, and writes nothing there', async () => {
    const trial = join(dir, 'busy');
    await mkdir(trial);
    await writeFile(join(trial, 'config.toml'), 'concurrent = 1\n');

    const attempt = runSimulatorCommand({ dir: trial, port: 0, expiresInDays: 3 }, recordingOutput(), Promise.resolve());

    await expect(attempt).rejects.toThrow(`${join(trial, 'config.toml')}: is already here: name an empty or new folder with --dir`);
    expect(await readFile(join(trial, 'config.toml'), 'utf8')).toBe('concurrent = 1\n');
    await expect(stat(join(trial, 'fleet.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('names a port in use, and days outside the token lifetime, as bad input', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      await expect(runSimulatorCommand({ dir: join(dir, 'a'), port, expiresInDays: 3 }, recordingOutput(), Promise.resolve())).rejects.toThrow(
        new InvalidInputError('--port', `cannot listen on 127.0.0.1:${port} (EADDRINUSE): pick another port, or 0 for any`),
      );
    } finally {
      busy.close();
    }
    await expect(runSimulatorCommand({ dir: join(dir, 'b'), port: 0, expiresInDays: 45 }, recordingOutput(), Promise.resolve())).rejects.toThrow(/--expires-in-days: must be a number of days above 0 and below 30/);
  });

  it('runs as a command until Ctrl-C, while another rotator adopts and rotates its runner', async () => {
    const trial = join(dir, 'cli');
    const child = spawn(process.execPath, [join(REPO, 'src/cli/rotator.mjs'), 'simulator', '--dir', trial], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('Stop with Ctrl-C')) resolve();
      });
      void exited.then((code) => reject(new Error(`rotator simulator exited ${code} before it was ready: ${stdout}${stderr}`)));
    });
    const fleetPath = /export ROTATOR_FLEET=(\S+)/.exec(stdout)?.[1] ?? '';
    expect(fleetPath).toBe(join(trial, 'fleet.json'));

    const adopt = spawn(process.execPath, [join(REPO, 'src/cli/rotator.mjs'), 'adopt', 'my-runner'], { env: { ...process.env, ROTATOR_FLEET: fleetPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let adoptOut = '';
    adopt.stdout.on('data', (chunk: Buffer) => (adoptOut += chunk.toString()));
    adopt.stderr.on('data', (chunk: Buffer) => (adoptOut += chunk.toString()));
    expect(await new Promise((resolve) => adopt.on('close', resolve))).toBe(0);
    expect(adoptOut).toMatch(/outage window my-runner: \d+ ms/);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stdout).toContain(`simulator stopped; files kept in ${trial}`);
    expect(stderr).toBe('');
    expectNoTokens(`${stdout}\n${adoptOut}`, [String((await tablesOf(join(trial, 'config.toml')))[0]?.token)]);
  }, 60_000);
});
