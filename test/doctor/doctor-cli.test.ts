/** `rotator doctor` as a command: exit codes 0/1/2, the text table, --json, bad arguments. */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/errors.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { expectNoTokens } from '../support/token-leaks.ts';
import { runDoctorCli, stamp, tempRoot, writeHost } from './doctor-harness.ts';

const UNKNOWN = '0001-01-01T00:00:00Z';
let root: string;
let sim: GitLabSimulator;
const tokens: string[] = [];

beforeAll(async () => {
  root = await tempRoot('doctor-cli-');
  sim = new GitLabSimulator();
  await sim.start();
});

afterAll(async () => {
  await sim.stop();
  await rm(root, { recursive: true, force: true });
});

async function healthyHost(mode = 0o600): Promise<string> {
  const { id, token } = sim.addRunner({ tokenExpiresAt: null });
  tokens.push(token);
  return (await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN }, { mode })).configPath;
}

describe('rotator doctor', () => {
  it('exits 0 and says so when nothing is wrong, listing what it could not check', async () => {
    const run = await runDoctorCli(['--config', await healthyHost()]);
    expect(run.code).toBe(0);
    expect(run.lines[0]).toBe('No problems found.');
    expect(run.lines).toContain('checks not run:');
    expect(run.text).toMatch(/self-rotation\.enabled|manager\.stale/);
    expectNoTokens(run.text, tokens);
  });

  it('exits 1 on warnings only, with a table of code, severity, runner, evidence and fix', async () => {
    const run = await runDoctorCli(['--config', await healthyHost(0o644)]);
    expect(run.code).toBe(1);
    expect(run.lines[0]).toMatch(/^CODE +SEVERITY +RUNNER +EVIDENCE +FIX$/);
    expect(run.lines[2]).toMatch(/^file\.mode +warning +- +.+ has mode 0644: .+ chmod 600/);
  });

  it('exits 2 on errors', async () => {
    const { id, token } = sim.addRunner({ tokenExpiresAt: null });
    tokens.push(token);
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    sim.revokeToken(id);
    const run = await runDoctorCli(['--config', host.configPath]);
    expect(run.code).toBe(2);
    expect(run.text).toContain('token.invalid');
    expectNoTokens(run.text, tokens);
  });

  it('--json prints one object per finding, then exactly one {"notRun": [...]} object', async () => {
    const run = await runDoctorCli(['--config', await healthyHost(0o660), '--json']);
    const objects = run.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects.slice(0, -1)).toEqual([
      { code: 'file.mode', severity: 'warning', runner: null, evidence: expect.stringContaining('mode 0660: group may access'), fix: expect.stringContaining('chmod 600') },
    ]);
    expect(Object.keys(objects.at(-1)!)).toEqual(['notRun']);
    expect(run.code).toBe(1);
  });

  it('refuses bad arguments with InvalidInputError (exit 2 in main) and never prints an access token file\'s content', async () => {
    const config = await healthyHost();
    await expect(runDoctorCli(['--config', config, '--gitlab-url', 'ftp://gitlab'])).rejects.toThrow(InvalidInputError);
    // The runner token may be sent to --gitlab-url: plain http only to this machine.
    await expect(runDoctorCli(['--config', config, '--gitlab-url', 'http://gitlab.example.com'])).rejects.toThrow(/must be https:\/\/ .*clear text/);
    await expect(runDoctorCli(['--config', config, '--expiring-days', 'soon'])).rejects.toThrow(/--expiring-days/);
    const file = join(root, 'two-words');
    await writeFile(file, 'glpat-SECRETSECRET01 extra\n');
    const error = await runDoctorCli(['--config', config, '--access-token-file', file]).catch((e: unknown) => e as Error);
    expect(String((error as Error).message)).toBe(`--access-token-file: ${file} must hold one access token on its first line`);
  });
});
