/**
 * One test per finding code, end to end: config fixtures on disk, the GitLab simulator over real HTTP,
 * `rotator doctor --json` through registerDoctorCommand. Each checks the code, its evidence and its fix,
 * and that no token reached the output. Network and TLS codes are in doctor-network.test.ts,
 * runner.version-too-old in runner-version.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { ROTATOR_SYSTEM_ID } from '../../src/core/rotator-identity.ts';
import { pollForJobs } from '../../src/simulator/simulated-fleet.ts';
import { expectNoTokens } from '../support/token-leaks.ts';
import { only, runDoctorCli, stamp, tempRoot, writeHost, type CliRun } from './doctor-harness.ts';

const DAY_MS = 86_400_000;
const UNKNOWN = '0001-01-01T00:00:00Z';

let root: string;
const simulators: GitLabSimulator[] = [];
const servers: Server[] = [];
const tokens: string[] = [];

beforeAll(async () => {
  root = await tempRoot('doctor-codes-');
});

afterEach(async () => {
  for (const sim of simulators.splice(0)) await sim.stop();
  for (const server of servers.splice(0)) await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function simulator(options: ConstructorParameters<typeof GitLabSimulator>[0] = {}): Promise<GitLabSimulator> {
  const sim = new GitLabSimulator(options);
  await sim.start();
  simulators.push(sim);
  return sim;
}

function addRunner(sim: GitLabSimulator, init: Parameters<GitLabSimulator['addRunner']>[0] = {}): { id: number; token: string } {
  const runner = sim.addRunner(init);
  tokens.push(runner.token);
  return runner;
}

async function accessTokenFile(sim: GitLabSimulator, admin = false): Promise<string> {
  const token = sim.addAccessToken({ scopes: ['read_api'], admin });
  tokens.push(token);
  const file = join(root, `access-${tokens.length}`);
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return file;
}

function clean(run: CliRun): CliRun {
  expectNoTokens(run.text, tokens);
  return run;
}

describe('rotator doctor, one finding code at a time', () => {
  it('config.unreadable: a config.toml that does not exist is an error naming the path, and every runner check is listed as not run', async () => {
    const path = join(root, 'nowhere', 'config.toml');
    const run = clean(await runDoctorCli(['--config', path, '--json']));
    const f = only(run, 'config.unreadable');
    expect(f.severity).toBe('error');
    expect(f.evidence).toBe(`${path}: does not exist (ENOENT)`);
    expect(f.fix).toContain('run the doctor as the user gitlab-runner runs as');
    expect(run.notRun.map((n) => n.check)).toEqual(expect.arrayContaining(['token.invalid', 'file.mode', 'manager.stale']));
    expect(run.code).toBe(2);
  });

  it('config.unparseable: malformed TOML names the line and column and never quotes the broken line, which holds a token', async () => {
    const token = 'glrt-BROKENLINETOKEN123456';
    tokens.push(token);
    const host = await writeHost(root, 'malformed.toml', { TOKEN: token });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'config.unparseable');
    expect(f.severity).toBe('error');
    expect(f.evidence).toMatch(new RegExp(`^${host.configPath}: line 7, column \\d+: control characters are not allowed in strings$`));
    expect(f.fix).toContain('config.toml.bak');
    expect(run.code).toBe(2);
  });

  it('config.no-runners: a config.toml without [[runners]] is an error', async () => {
    const host = await writeHost(root, 'no-runners.toml');
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'config.no-runners');
    expect(f.evidence).toBe(`${host.configPath} parses but has no [[runners]] table`);
    expect(f.fix).toContain('gitlab-runner register');
    expect(run.code).toBe(2);
  });

  it('token.missing: a runner table without a token is an error naming the table and its url', async () => {
    const host = await writeHost(root, 'missing-token.toml');
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'token.missing');
    expect(f.runner).toBe('half-registered (id 12)');
    expect(f.evidence).toBe('[[runners]] #1 (url https://gitlab.example.com/) has no token key, or an empty one');
    expect(f.fix).toContain('update-runner-token.sh');
  });

  it('token.legacy: a runner token without the glrt- prefix is a warning, and GitLab still accepts it', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim, { legacyToken: true, tokenExpiresAt: null });
    const host = await writeHost(root, 'legacy.toml', { URL: `${sim.url}/`, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()) });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'token.legacy');
    expect(f.severity).toBe('warning');
    expect(f.runner).toBe(`legacy-shell (id ${id})`);
    expect(f.evidence).toContain('has no glrt- prefix');
    expect(f.fix).toContain('POST /user/runners');
    expect(run.findings.map((x) => x.code)).toEqual(['token.legacy']);
    expect(run.code).toBe(1);
  });

  it('token.expired: an expiry in the past (config.toml) that GitLab also refuses is an error with the date', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim);
    sim.expireToken(id);
    const expired = new Date(Math.floor((Date.now() - 2 * DAY_MS) / 1000) * 1000);
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date(Date.now() - 30 * DAY_MS)), EXPIRES_AT: stamp(expired) });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'token.expired');
    expect(f.severity).toBe('error');
    expect(f.evidence).toBe(`token_expires_at ${expired.toISOString()} (config.toml) passed 2 d ago`);
    expect(f.fix).toContain('reset by id');
    expect(only(run, 'token.invalid').evidence).toContain('answered 403');
    expect(run.code).toBe(2);
  });

  it('token.expiring: GitLab\'s verify reply gives the expiry when config.toml does not know it (0001-01-01)', async () => {
    const sim = await simulator();
    const expires = new Date(Date.now() + 3 * DAY_MS);
    const { id, token } = addRunner(sim, { tokenExpiresAt: expires });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'token.expiring');
    expect(f.severity).toBe('warning');
    expect(f.evidence).toBe(`token_expires_at ${expires.toISOString()} (GitLab's verify reply) is 3 d away (threshold 7 d)`);
    expect(f.fix).toContain('rotator rotate');
    expect(run.code).toBe(1);
  });

  it('token.invalid: GitLab answers 403 to verify with the host\'s real system_id, and the manager record is that system_id\'s', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    expect(await pollForJobs(sim.url, token, host.systemId!)).toBe(204);
    sim.revokeToken(id);
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'token.invalid');
    expect(f.severity).toBe('error');
    expect(f.runner).toBe(`docker-builders (id ${id})`);
    expect(f.evidence).toBe(`GitLab at ${sim.url} answered 403 to POST /runners/verify with this host's token and system_id: 403 Forbidden`);
    expect(f.fix).toBe("Reset the runner's token (rotator rotate NAME, or GitLab → runner → Reset token) and push it to every host; see docs/operations.md#runbook-token-rejected.");
    expect(sim.runner(id)!.managers.map((m) => m.systemId)).toEqual([host.systemId]);
  });

  it('verifies the token as the rotator, even without a .runner_system_id, and never creates or refreshes a host\'s manager record', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN }, { systemId: null });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    expect(run.findings).toEqual([]);
    expect(run.notRun.find((n) => n.check === 'token.invalid')).toBeUndefined();
    expect(sim.stats.byRoute['POST /runners/verify']).toBe(1);
    expect(sim.runner(id)!.managers.map((m) => m.systemId)).toEqual([ROTATOR_SYSTEM_ID]);
    expect(run.code).toBe(0);
  });

  it('registration.disallowed: a 410 Gone to verify of a legacy token (fault-injected: the simulator\'s verify never answers 410) is an error', async () => {
    const sim = await simulator({ legacyRegistrationEnabled: false });
    const { id, token } = addRunner(sim, { legacyToken: true, tokenExpiresAt: null });
    const host = await writeHost(root, 'legacy.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()) });
    sim.faults.failNext(1, { status: 410, path: '/runners/verify' });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'registration.disallowed');
    expect(f.severity).toBe('error');
    expect(f.evidence).toBe(`GitLab at ${sim.url} answered 410 Gone to POST /runners/verify with this runner's legacy token: 410 Gone`);
    expect(f.fix).toContain('Do not re-register with a registration token');
    expect(sim.stats.byRoute['POST /runners']).toBeUndefined();
  });

  it('registration.disallowed: with an admin token, allow_runner_registration_token = false in GET /application/settings is a warning (a stub GitLab: the simulator has no settings endpoint)', async () => {
    const legacyToken = 'Xy9LegacyRunnerToken0001';
    const admin = 'glpat-DOCTORSTUBADMIN0001';
    tokens.push(legacyToken, admin);
    const seen: string[] = [];
    const stub = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v4/application/settings' && req.headers['private-token'] === admin) res.end(JSON.stringify({ allow_runner_registration_token: false }));
      else if (req.url === '/api/v4/runners/verify') res.end(JSON.stringify({ id: 31, token: legacyToken, token_expires_at: null }));
      else if (req.url?.startsWith('/api/v4/runners/31/managers')) res.end('[]');
      else {
        res.statusCode = 401;
        res.end('{"message":"401 Unauthorized"}');
      }
    });
    servers.push(stub);
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    const host = await writeHost(root, 'legacy.toml', { URL: url, ID: 31, TOKEN: legacyToken, OBTAINED_AT: stamp(new Date()) });
    const file = join(root, 'stub-admin');
    await writeFile(file, admin, { mode: 0o600 });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', file, '--json']));
    const f = only(run, 'registration.disallowed');
    expect(f.severity).toBe('warning');
    expect(f.evidence).toBe(`GET /application/settings: allow_runner_registration_token = false: legacy registration tokens are refused at ${url}, and this runner holds a legacy token (it still works, but cannot be registered again the old way)`);
    expect(seen.filter((s) => s.startsWith('POST /api/v4/runners') && s !== 'POST /api/v4/runners/verify')).toEqual([]);
  });

  it('registration.disallowed is listed as not run against the simulator, which has no GET /application/settings', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim, { legacyToken: true, tokenExpiresAt: null });
    const host = await writeHost(root, 'legacy.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()) });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', await accessTokenFile(sim, true), '--json']));
    expect(run.findings.map((x) => x.code)).toEqual(['token.legacy']);
    expect(run.notRun.find((n) => n.check === 'registration.disallowed')?.reason).toBe('GET /application/settings answered 404 (GitLab before 16.0, or not a GitLab)');
    expect(sim.stats.byRoute['POST /runners']).toBeUndefined();
  });

  it('url.mismatch: the config url rejects the token but --gitlab-url accepts it: an error with both urls', async () => {
    const right = await simulator();
    const wrong = await simulator();
    const { id, token } = addRunner(right, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: `${wrong.url}/`, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--gitlab-url', right.url, '--json']));
    const f = only(run, 'url.mismatch');
    expect(f.severity).toBe('error');
    expect(f.evidence).toBe(`config.toml url ${wrong.url}/, --gitlab-url ${right.url}: GitLab at the config url answered 403 to POST /runners/verify, GitLab at --gitlab-url accepted the same token as runner ${id}`);
    expect(f.fix).toContain('Set `url` in this [[runners]] table');
    expect(run.findings.map((x) => x.code)).not.toContain('token.invalid');
  });

  it('url.mismatch: a url that differs only by a trailing slash is info and exits 0', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: `${sim.url}/`, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--gitlab-url', sim.url, '--json']));
    const f = only(run, 'url.mismatch');
    expect(f.severity).toBe('info');
    expect(f.evidence).toBe(`config.toml url ${sim.url}/, --gitlab-url ${sim.url}: they differ only by a trailing slash (gitlab-runner and the updater treat them alike)`);
    expect(run.code).toBe(0);
  });

  it('clock.skew: GitLab\'s Date header two minutes ahead of this host is a warning', async () => {
    const sim = await simulator({ clockSkewMs: 120_000 });
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'clock.skew');
    expect(f.severity).toBe('warning');
    expect(f.runner).toBeNull();
    expect(f.evidence).toMatch(new RegExp(`^GitLab at ${sim.url} sent Date: .+ GMT; this host's clock read .+ GMT: 1(19|20|21) s behind GitLab \\(limit 60 s\\)$`));
    expect(f.fix).toContain('timedatectl set-ntp true');
    expect(run.code).toBe(1);
  });

  it('clock.skew: 30 s is within the limit', async () => {
    const sim = await simulator({ clockSkewMs: -30_000 });
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    expect(run.findings).toEqual([]);
    expect(run.code).toBe(0);
  });

  it('self-rotation.enabled: an expiring token without the flag, on a runner with two managers in GitLab, is a warning naming both system_ids', async () => {
    const sim = await simulator({ tokenLifetimeSeconds: 30 * 86_400 });
    const { id, token } = addRunner(sim);
    const expires = sim.runner(id)!.tokenExpiresAt!;
    const other = 's_otherhost0001';
    expect(await pollForJobs(sim.url, token, other)).toBe(204);
    const host = await writeHost(root, 'self-rotating.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date(Date.now() - 60_000)), EXPIRES_AT: stamp(expires) });
    // This host's own gitlab-runner polls too: its manager record is its own doing, never the doctor's.
    expect(await pollForJobs(sim.url, token, host.systemId!)).toBe(204);
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', await accessTokenFile(sim), '--json']));
    const f = only(run, 'self-rotation.enabled');
    expect(f.severity).toBe('warning');
    expect(f.evidence).toBe(`the token expires (token_expires_at ${expires.toISOString()}, GitLab's verify reply), FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is not true in [runners.feature_flags], and 2 runner managers share it (system_ids ${other}, ${host.systemId})`);
    expect(f.fix).toContain('FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true');
  });

  it('self-rotation.enabled: without an access token it needs --shared, and says so when it is missing', async () => {
    const sim = await simulator({ tokenLifetimeSeconds: 30 * 86_400 });
    const { id, token } = addRunner(sim);
    const expires = stamp(sim.runner(id)!.tokenExpiresAt!);
    const host = await writeHost(root, 'self-rotating.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: expires }, { systemId: null });
    const unsure = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    expect(unsure.findings).toEqual([]);
    expect(unsure.notRun.find((n) => n.check === 'self-rotation.enabled')?.reason).toContain('cannot tell whether the runner is shared');
    const shared = clean(await runDoctorCli(['--config', host.configPath, '--shared', '--json']));
    expect(only(shared, 'self-rotation.enabled').evidence).toContain('(token_expires_at 20');
    expect(only(shared, 'self-rotation.enabled').evidence).toContain("GitLab's verify reply), FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is not true in [runners.feature_flags], and the operator says it is shared (--shared)");
  });

  it('manager.stale: a manager silent since the last rotation (token_obtained_at) is a warning naming its system_id', async () => {
    let offsetMs = -3 * 3_600_000;
    const sim = await simulator({ now: () => new Date(Date.now() + offsetMs) });
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    expect(await pollForJobs(sim.url, token, 's_silenthost01')).toBe(204);
    offsetMs = 0;
    const rotatedAt = new Date(Date.now() - 3_600_000);
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(rotatedAt), EXPIRES_AT: UNKNOWN });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--access-token-file', await accessTokenFile(sim), '--json']));
    const f = only(run, 'manager.stale');
    expect(f.severity).toBe('warning');
    expect(f.evidence).toMatch(new RegExp(`^last rotation ${rotatedAt.toISOString().replace(/\.\d{3}Z$/, '.000Z')} \\(token_obtained_at in config.toml\\); silent since then: s_silenthost01 \\(contacted_at .+, status offline, ip 127.0.0.1\\)$`));
    expect(f.evidence).not.toContain(host.systemId!);
    expect(f.fix).toContain('rotator scan');
  });

  it('manager.stale is listed as not run without an access token', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    expect(run.notRun.find((n) => n.check === 'manager.stale')?.reason).toContain('needs an access token (--access-token-file');
  });

  it('file.mode: a config.toml readable by others is a warning with the mode', async () => {
    const sim = await simulator();
    const { id, token } = addRunner(sim, { tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN }, { mode: 0o644 });
    const run = clean(await runDoctorCli(['--config', host.configPath, '--json']));
    const f = only(run, 'file.mode');
    expect(f.severity).toBe('warning');
    expect(f.runner).toBeNull();
    expect(f.evidence).toBe(`${host.configPath} has mode 0644: group and others may access the runner tokens in it (want 0600)`);
    expect(f.fix).toContain('chmod 600');
    expect(run.code).toBe(1);
  });
});
