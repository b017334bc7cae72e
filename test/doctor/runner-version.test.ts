/**
 * runner.version-too-old end to end: `rotator doctor --json` with a stand-in gitlab-runner (a script that
 * prints what `gitlab-runner --version` prints, named with --gitlab-runner) and the GitLab simulator,
 * whose managers list carries the version each host sent in `info.version` of its job requests.
 */
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { expectNoTokens } from '../support/token-leaks.ts';
import { only, runDoctorCli, stamp, tempRoot, writeHost, type CliRun, type TestHost } from './doctor-harness.ts';

const UNKNOWN = '0001-01-01T00:00:00Z';

let root: string;
let sim: GitLabSimulator;
const tokens: string[] = [];
let accessFile: string;

beforeAll(async () => {
  root = await tempRoot('doctor-version-');
  sim = new GitLabSimulator();
  await sim.start();
  const access = sim.addAccessToken({ scopes: ['read_api'] });
  tokens.push(access);
  accessFile = join(root, 'access-token');
  await writeFile(accessFile, `${access}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await sim.stop();
  await rm(root, { recursive: true, force: true });
});

let scripts = 0;

/** A stand-in gitlab-runner: prints `body` and exits with `code`, as `gitlab-runner --version` would. */
async function fakeRunner(body: string, code = 0): Promise<string> {
  const path = join(root, `gitlab-runner-${++scripts}`);
  await writeFile(path, `#!/bin/sh\n[ "$1" = --version ] || exit 64\ncat <<'EOF'\n${body}EOF\nexit ${code}\n`);
  await chmod(path, 0o755);
  return path;
}

/** What gitlab-runner 16.11+ prints for `--version`. */
function versionOutput(version: string): string {
  return `Version:      ${version}\nGit revision: 91a27b2a\nGit branch:   ${version.split('.').slice(0, 2).join('-')}-stable\nGO version:   go1.21.9\nBuilt:        2024-04-18T15:10:07+0000\nOS/Arch:      linux/amd64\n`;
}

/** A runner in the simulator and one host of it on disk (the flag set, no expiry: no other finding). */
async function runnerHost(): Promise<{ id: number; token: string; host: TestHost }> {
  const { id, token } = sim.addRunner({ tokenExpiresAt: null });
  tokens.push(token);
  const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
  return { id, token, host };
}

/** A job request as gitlab-runner sends it: its system_id and its version in `info`. */
async function contact(token: string, systemId: string, version: string): Promise<void> {
  const response = await fetch(`${sim.url}/api/v4/jobs/request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, system_id: systemId, info: { name: 'gitlab-runner', version, revision: '91a27b2a', platform: 'linux', architecture: 'amd64' } }),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(204);
}

function clean(run: CliRun): CliRun {
  expectNoTokens(run.text, tokens);
  return run;
}

function notRunReason(run: CliRun): string | undefined {
  return run.notRun.find((n) => n.check === 'runner.version-too-old')?.reason;
}

describe('runner.version-too-old', () => {
  it('a shared runner (--shared) whose gitlab-runner --version says 16.11.0 is an error naming this host and the version', async () => {
    const { host } = await runnerHost();
    const run = clean(await runDoctorCli(['--config', host.configPath, '--shared', '--gitlab-runner', await fakeRunner(versionOutput('16.11.0')), '--json']));
    const f = only(run, 'runner.version-too-old');
    expect(f.severity).toBe('error');
    expect(f.runner).toMatch(/^docker-builders \(id \d+\)$/);
    expect(f.evidence).toBe('gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version); shared: the operator says so (--shared)');
    expect(f.fix).toContain('Upgrade gitlab-runner to 17.0 or later on every host of the runner');
    expect(run.code).toBe(2);
  });

  it.each(['17.0.0', '17.5.1'])('a shared runner whose hosts all run gitlab-runner %s has no finding', async (version) => {
    const { token, host } = await runnerHost();
    await contact(token, host.systemId!, version);
    await contact(token, 's_otherhost0001', version);
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', accessFile, '--gitlab-runner', await fakeRunner(versionOutput(version)), '--json']));
    expect(run.findings).toEqual([]);
    expect(notRunReason(run)).toBeUndefined();
    expect(run.code).toBe(0);
  });

  it('a runner with one host (one manager in GitLab) on gitlab-runner 16.11.0 has no finding', async () => {
    const { token, host } = await runnerHost();
    await contact(token, host.systemId!, '16.11.0');
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', accessFile, '--gitlab-runner', await fakeRunner(versionOutput('16.11.0')), '--json']));
    expect(run.findings).toEqual([]);
    expect(notRunReason(run)).toBeUndefined();
    expect(run.code).toBe(0);
  });

  it('without an access token or --shared, an old gitlab-runner is listed as not run: whether the runner is shared is unknown', async () => {
    const { host } = await runnerHost();
    const run = clean(await runDoctorCli(['--config', host.configPath, '--gitlab-runner', await fakeRunner(versionOutput('16.11.0')), '--json']));
    expect(run.findings).toEqual([]);
    expect(notRunReason(run)).toBe(
      'this host (16.11.0, gitlab-runner --version) is older than 17.0.0, but cannot tell whether the runner is shared: GET /runners/:id/managers needs an access token (--access-token-file, read_api or manage_runner); or pass --shared',
    );
  });

  it('the version comes from GET /runners/:id/managers with an access token: the other host\'s 16.11.0 is named, this host\'s 17.1.0 is not', async () => {
    const { token, host } = await runnerHost();
    await contact(token, host.systemId!, '17.1.0');
    await contact(token, 's_oldhost00001', '16.11.0');
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', accessFile, '--gitlab-runner', await fakeRunner(versionOutput('17.1.0')), '--json']));
    const f = only(run, 'runner.version-too-old');
    expect(f.severity).toBe('error');
    expect(f.evidence).toBe(`gitlab-runner older than 17.0.0 on manager s_oldhost00001 (16.11.0, GET /runners/:id/managers); shared: 2 runner managers (system_ids ${host.systemId}, s_oldhost00001)`);
    expect(run.code).toBe(2);
  });

  it('with no gitlab-runner on this host, the managers\' versions are enough', async () => {
    const { token, host } = await runnerHost();
    await contact(token, host.systemId!, '16.11.0~pre.12.g1a2b3c4d');
    await contact(token, 's_newhost00001', '17.5.1');
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', accessFile, '--gitlab-runner', join(root, 'no-such-gitlab-runner'), '--json']));
    expect(only(run, 'runner.version-too-old').evidence).toBe(
      `gitlab-runner older than 17.0.0 on manager ${host.systemId} (16.11.0~pre.12.g1a2b3c4d, GET /runners/:id/managers); shared: 2 runner managers (system_ids ${host.systemId}, s_newhost00001)`,
    );
  });

  it.each([
    ['gitlab-runner is missing', async () => join(root, 'no-such-gitlab-runner'), (path: string) => `no gitlab-runner version is known: ${path} not found (ENOENT): gitlab-runner is not installed here, or not on PATH (--gitlab-runner PATH); GET /runners/:id/managers needs an access token (--access-token-file, read_api or manage_runner)`],
    ['gitlab-runner --version fails', async () => fakeRunner('', 3), (path: string) => `no gitlab-runner version is known: ${path} --version failed (exit 3); GET /runners/:id/managers needs an access token (--access-token-file, read_api or manage_runner)`],
    ['gitlab-runner --version prints no Version: line', async () => fakeRunner('Usage: gitlab-runner [global options] command\n'), (path: string) => `no gitlab-runner version is known: ${path} --version printed no readable "Version:" line; GET /runners/:id/managers needs an access token (--access-token-file, read_api or manage_runner)`],
  ])('no version known (%s): listed as not run with the reason, and the doctor goes on', async (_what, program, reason) => {
    const { host } = await runnerHost();
    const path = await program();
    const run = clean(await runDoctorCli(['--config', host.configPath, '--shared', '--gitlab-runner', path, '--json']));
    expect(run.findings).toEqual([]);
    expect(notRunReason(run)).toBe(reason(path));
    expect(run.code).toBe(0);
  });

  it('--gitlab-runner does not go with --aws', async () => {
    await expect(runDoctorCli(['--aws', 'builders', '--fleet', join(root, 'fleet.json'), '--gitlab-runner', '/usr/bin/gitlab-runner'])).rejects.toThrow(/--gitlab-runner.*does not go with --aws/);
  });
});
