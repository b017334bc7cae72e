/**
 * The fleet-wide doctor document: its shape, and its runCommand run with real bash (as the SSM agent
 * would) against config fixtures, the GitLab simulator and a closed port. Read-only: the config is
 * byte-identical afterwards and GitLab sees only GET /version. Its output feeds the fleet report.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCTOR_PARAMETERS, buildDoctorDocument, doctorCommandParameters } from '../../src/adapters/aws/doctor-document.ts';
import { HEREDOC_DELIMITER, readScript, SSM_DOCUMENT_MAX_BYTES } from '../../src/adapters/aws/host-update-document.ts';
import { buildFleetReport, formatFleetReport } from '../../src/doctor/fleet-report.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { expectNoTokens } from '../support/token-leaks.ts';
import { runDoctorCli, stamp, tempRoot, writeHost } from './doctor-harness.ts';

const DAY_MS = 86_400_000;
const TOKEN = 'glrt-HOSTDOCTORTOKEN000001';
const LEGACY = 'Hd4LegacyHostToken000001';
const OPENSSL = ['/usr/bin/openssl', '/usr/local/bin/openssl', '/bin/openssl'].find((p) => existsSync(p));

interface Step {
  action: string;
  precondition: unknown;
  inputs: { runCommand: string[]; timeoutSeconds: string };
}

let root: string;
let script: string;
let document: Record<string, unknown>;
let sim: GitLabSimulator;
let closedPort: number;

beforeAll(async () => {
  root = await tempRoot('doctor-doc-');
  document = buildDoctorDocument();
  script = join(root, '_script.sh');
  await writeFile(script, `${stepOf(document).inputs.runCommand.join('\n')}\n`);
  sim = new GitLabSimulator({ clockSkewMs: 300_000 });
  await sim.start();
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

afterAll(async () => {
  await sim.stop();
  await rm(root, { recursive: true, force: true });
});

/** The evidence of the one finding with `code`. */
function evidenceOf(run: HostRun, code: string): string {
  const found = run.lines.filter((l) => l.code === code);
  expect(found, run.stdout).toHaveLength(1);
  return String(found[0]!.evidence);
}

function stepOf(doc: Record<string, unknown>): Step {
  const steps = doc.mainSteps as Step[];
  expect(steps).toHaveLength(1);
  return steps[0]!;
}

interface HostRun {
  code: number;
  stdout: string;
  stderr: string;
  lines: Array<Record<string, unknown>>;
  codes: string[];
}

/** This PATH without any directory that holds a gitlab-runner: the hosts' gitlab-runner is the test's stand-in, or none. */
const PATH_WITHOUT_RUNNER = (process.env.PATH ?? '/usr/bin:/bin')
  .split(':')
  .filter((dir) => dir !== '' && !existsSync(join(dir, 'gitlab-runner')))
  .join(':');

/** A directory with a stand-in gitlab-runner whose `--version` says `version`, as gitlab-runner prints it. */
async function runnerBin(version: string): Promise<string> {
  const dir = join(root, `bin-${version}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'gitlab-runner'), `#!/bin/sh
[ "$1" = --version ] || exit 64
printf 'Version:      ${version}\nGit revision: 91a27b2a\nGO version:   go1.21.9\n'
`);
  await chmod(join(dir, 'gitlab-runner'), 0o755);
  return dir;
}

/**
 * Runs the document's commands with bash, as the agent does, with SSM_<name> for each parameter; with
 * `binDir` (a stand-in gitlab-runner) first on PATH, else with no gitlab-runner on PATH.
 */
function runDocument(configPath: string, params: Record<string, string> = {}, shell = 'bash', binDir: string | null = null): Promise<HostRun> {
  const values = doctorCommandParameters({ ConfigPath: configPath, ...params });
  const env: Record<string, string> = { PATH: binDir === null ? PATH_WITHOUT_RUNNER : `${binDir}:${PATH_WITHOUT_RUNNER}`, TMPDIR: root };
  for (const [name, [value]] of Object.entries(values)) env[`SSM_${name}`] = value!;
  return new Promise((resolve) => {
    execFile(shell, [script], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, lines, codes: lines.filter((l) => 'code' in l).map((l) => String(l.code)) });
    });
  });
}

describe('the doctor SSM document', () => {
  it('is schema 2.2 aws:runShellScript with ENV_VAR parameters, each with an allowedPattern and a default, no {{ }} in its commands, under 64 KB', () => {
    expect(document.schemaVersion).toBe('2.2');
    const step = stepOf(document);
    expect(step.action).toBe('aws:runShellScript');
    const parameters = document.parameters as Record<string, { interpolationType: string; allowedPattern: string; default: string }>;
    expect(Object.keys(parameters)).toEqual(DOCTOR_PARAMETERS.map((p) => p.name));
    for (const p of Object.values(parameters)) {
      expect(p.interpolationType).toBe('ENV_VAR');
      expect(new RegExp(p.allowedPattern).test(p.default)).toBe(true);
    }
    expect(step.inputs.runCommand.some((l) => l.includes('{{'))).toBe(false);
    expect(Buffer.byteLength(JSON.stringify(document))).toBeLessThan(SSM_DOCUMENT_MAX_BYTES);
    // The one script run is doctor.sh; it reads config.toml through the updater's walker, written beside it.
    expect(step.inputs.runCommand.filter((l) => /^bash /.test(l))).toEqual([expect.stringMatching(/^bash "\$DOCTOR_DIR\/doctor.sh" .*--walker "\$DOCTOR_DIR\/toml-edit.awk" /)]);
  });

  it('embeds doctor.sh and the walker toml-edit.awk once each (as readScript gives them), and not the updater', () => {
    const lines = stepOf(document).inputs.runCommand;
    const heredocs = lines.filter((l) => l.endsWith(`<<'${HEREDOC_DELIMITER}'`));
    expect(heredocs).toEqual([`cat >"$DOCTOR_DIR/doctor.sh" <<'${HEREDOC_DELIMITER}'`, `cat >"$DOCTOR_DIR/toml-edit.awk" <<'${HEREDOC_DELIMITER}'`]);
    const walker = readScript(new URL('../../host/toml-edit.awk', import.meta.url));
    const start = lines.indexOf(heredocs[1]!) + 1;
    expect(lines.slice(start, start + walker.length)).toEqual(walker);
    expect(lines[start + walker.length]).toBe(HEREDOC_DELIMITER);
    expect(lines.filter((l) => l.startsWith('function vscan('))).toHaveLength(1);
  });

  it('refuses a parameter value that does not match its pattern', () => {
    expect(() => doctorCommandParameters({ ConfigPath: '/etc/gitlab-runner/config.toml; rm -rf /' })).toThrow(/ConfigPath/);
    expect(() => doctorCommandParameters({ Shared: 'maybe' })).toThrow(/Shared/);
  });

  it('reports file.mode, token.expiring, self-rotation.enabled and clock.skew, leaves config.toml untouched, and GitLab sees only GET /version', async () => {
    const { id, token } = sim.addRunner({ tokenExpiresAt: new Date(Date.now() + 2 * DAY_MS) });
    const expires = new Date(Math.floor((Date.now() + 2 * DAY_MS) / 1000) * 1000);
    const host = await writeHost(root, 'self-rotating.toml', { URL: `${sim.url}/`, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: stamp(expires) }, { mode: 0o644 });
    const before = await readFile(host.configPath);
    const mtime = (await stat(host.configPath)).mtimeMs;
    sim.resetStats();
    const run = await runDocument(host.configPath);
    expect(run.code).toBe(0);
    expect(run.codes).toEqual(['file.mode', 'token.expiring', 'self-rotation.enabled', 'clock.skew']);
    const byCode = new Map(run.lines.filter((l) => 'code' in l).map((l) => [l.code, l]));
    expect(byCode.get('file.mode')!.evidence).toBe(`${host.configPath} has mode 0644: group and others may access the runner tokens in it (want 0600)`);
    expect(byCode.get('token.expiring')!.evidence).toBe(`token_expires_at ${expires.toISOString()} (config.toml) is 2 d away (threshold 7 d)`);
    expect(byCode.get('self-rotation.enabled')!.severity).toBe('info');
    expect(byCode.get('clock.skew')!.evidence).toMatch(new RegExp(`^GitLab at ${sim.url} sent Date: .+; this host's clock read .+ GMT: (299|300|301) s behind GitLab \\(limit 60 s\\)$`));
    expect(run.lines.find((l) => 'runners' in l)).toEqual({ runners: [`${sim.url}#${id}`] });
    const notRun = (run.lines.at(-1) as { notRun: Array<{ check: string }> }).notRun.map((n) => n.check);
    expect(notRun).toEqual(['token.invalid', 'registration.disallowed', 'url.mismatch', 'manager.stale', 'runner.version-too-old']);
    expect(await readFile(host.configPath)).toEqual(before);
    expect((await stat(host.configPath)).mtimeMs).toBe(mtime);
    expect(sim.stats.byRoute).toEqual({ 'GET /version': 1 });
    expectNoTokens(run.stdout + run.stderr, [token]);
  });

  it('finds the same local codes as rotator doctor on the same fixture', async () => {
    const { id, token } = sim.addRunner({ legacyToken: true, tokenExpiresAt: null });
    const host = await writeHost(root, 'legacy.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()) }, { mode: 0o640, systemId: null });
    const onHost = await runDocument(host.configPath, { Probe: 'no' });
    const cli = await runDoctorCli(['--config', host.configPath, '--json']);
    expect(onHost.codes).toEqual(['file.mode', 'token.legacy']);
    expect(cli.findings.map((f) => f.code).filter((c) => c !== 'clock.skew').sort()).toEqual([...onHost.codes].sort());
    expect(onHost.lines.find((l) => l.code === 'token.legacy')!.evidence).toBe(cli.findings.find((f) => f.code === 'token.legacy')!.evidence);
    expectNoTokens(onHost.stdout + onHost.stderr, [token]);
  });

  it('takes a glrt- token behind an instance prefix for an authentication token, as rotator doctor and rotator migrate do', async () => {
    const host = await writeHost(root, 'legacy.toml', { URL: sim.url, ID: 1, TOKEN: 'acme-glrt-t1_PREFIXEDTOKEN0001', OBTAINED_AT: stamp(new Date()) }, { mode: 0o600, systemId: null });
    const onHost = await runDocument(host.configPath, { Probe: 'no' });
    const cli = await runDoctorCli(['--config', host.configPath, '--json']);
    expect(onHost.codes).not.toContain('token.legacy');
    expect(cli.findings.map((f) => f.code)).not.toContain('token.legacy');
    expect(onHost.lines.some((l) => 'runners' in l)).toBe(true);
  });

  it('config.unparseable comes from the updater\'s own validator, names the line, and never quotes it', async () => {
    const host = await writeHost(root, 'malformed.toml', { TOKEN });
    const run = await runDocument(host.configPath);
    expect(run.codes).toEqual(['config.unparseable']);
    expect(evidenceOf(run, 'config.unparseable')).toBe(`${host.configPath}: malformed TOML at line 7: unterminated string (the host updater's validator)`);
    expectNoTokens(run.stdout + run.stderr, [TOKEN]);
  });

  it.each([
    ['config.unreadable', 'missing', 'does not exist (ENOENT)'],
    ['config.no-runners', 'no-runners.toml', 'parses but has no [[runners]] table'],
    ['token.missing', 'missing-token.toml', '[[runners]] #1 (url https://gitlab.example.com/) has no token key, or an empty one'],
  ])('%s on %s', async (code, fixture, evidence) => {
    const path = fixture === 'missing' ? join(root, 'absent', 'config.toml') : (await writeHost(root, fixture)).configPath;
    const run = await runDocument(path, { Probe: 'no' });
    expect(run.codes).toEqual([code]);
    expect(evidenceOf(run, code)).toContain(evidence);
    expect(run.code).toBe(0);
  });

  it('reads a runner table without name or id (empty fields stay in place)', async () => {
    const host = await writeHost(root, 'no-runners.toml');
    await writeFile(host.configPath, `[[runners]]\n  url = "https://gitlab.example.com"\n  token = "${LEGACY}"\n  token_expires_at = ${stamp(new Date(Date.now() - DAY_MS))}\n`);
    const run = await runDocument(host.configPath, { Probe: 'no' });
    expect(run.codes).toEqual(['token.legacy', 'token.expired', 'self-rotation.enabled']);
    expect(run.lines[0]!.runner).toBe('[[runners]] #1');
    expect(run.lines.find((l) => 'runners' in l)).toEqual({ runners: ['https://gitlab.example.com#table1'] });
    expectNoTokens(run.stdout, [LEGACY]);
  });

  it('token.expired from config.toml\'s token_expires_at', async () => {
    const host = await writeHost(root, 'runner.toml', { URL: 'https://gitlab.example.com', ID: 5, TOKEN, OBTAINED_AT: '2025-01-01T00:00:00Z', EXPIRES_AT: stamp(new Date(Date.now() - 3 * DAY_MS)) });
    const run = await runDocument(host.configPath, { Probe: 'no' });
    expect(run.codes).toEqual(['token.expired']);
    expect(evidenceOf(run, 'token.expired')).toMatch(/^token_expires_at .+Z \(config\.toml\) passed 3 d ago$/);
  });

  it('network.unreachable: refused and DNS, with curl\'s exit code', async () => {
    const refused = await writeHost(root, 'runner.toml', { URL: `http://127.0.0.1:${closedPort}`, ID: 5, TOKEN, OBTAINED_AT: '2025-01-01T00:00:00Z', EXPIRES_AT: '0001-01-01T00:00:00Z' });
    const run = await runDocument(refused.configPath, { ProbeTimeout: '5' });
    expect(run.codes).toEqual(['network.unreachable']);
    expect(evidenceOf(run, 'network.unreachable')).toMatch(new RegExp(`^GET http://127.0.0.1:${closedPort}/api/v4/version: connection refused: .+ \\(curl exit 7: `));
    const dns = await writeHost(root, 'runner.toml', { URL: 'https://gitlab.doctor-test.invalid/', ID: 5, TOKEN, OBTAINED_AT: '2025-01-01T00:00:00Z', EXPIRES_AT: '0001-01-01T00:00:00Z' });
    const dnsRun = await runDocument(dns.configPath, { ProbeTimeout: '5' });
    expect(evidenceOf(dnsRun, 'network.unreachable')).toMatch(/^GET https:\/\/gitlab\.doctor-test\.invalid\/api\/v4\/version: DNS: the host name does not resolve \(curl exit 6: /);
  });

  it('prints and probes a url without the credentials in it (http://oauth2:glpat-…@host), and curl sends none', async () => {
    const secret = 'glpat-DoctorUrlSecret00001';
    const requests: Array<{ path: string | undefined; authorization: string | undefined }> = [];
    const server = createHttpServer((req, res) => {
      requests.push({ path: req.url, authorization: req.headers.authorization });
      // Ten minutes ahead: a clock.skew finding, whose evidence names the url.
      res.setHeader('Date', new Date(Date.now() + 600_000).toUTCString());
      res.statusCode = 401;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const host = await writeHost(root, 'no-runners.toml');
      await writeFile(
        host.configPath,
        `[[runners]]\n  name = "with-credentials"\n  url = "http://oauth2:${secret}@127.0.0.1:${port}/"\n  id = 5\n  token = "${LEGACY}"\n` +
          `[[runners]]\n  name = "unreachable"\n  url = "http://oauth2:${secret}@127.0.0.1:${closedPort}"\n  id = 6\n  token = "${TOKEN}"\n`,
      );

      const run = await runDocument(host.configPath, { ProbeTimeout: '5' });

      expect(run.stdout + run.stderr).not.toContain(secret);
      expect(run.stdout).not.toContain('oauth2');
      expect([...run.codes].sort()).toEqual(['clock.skew', 'network.unreachable', 'token.legacy']);
      expect(evidenceOf(run, 'token.legacy')).toContain(`(url http://127.0.0.1:${port}/)`);
      expect(evidenceOf(run, 'network.unreachable')).toMatch(new RegExp(`^GET http://127.0.0.1:${closedPort}/api/v4/version: connection refused`));
      expect(evidenceOf(run, 'clock.skew')).toMatch(new RegExp(`^GitLab at http://127.0.0.1:${port} sent Date: `));
      expect(run.lines.find((l) => 'runners' in l)).toEqual({ runners: [`http://127.0.0.1:${port}#5`, `http://127.0.0.1:${closedPort}#6`] });
      expect(requests).toEqual([{ path: '/api/v4/version', authorization: undefined }]);
      expectNoTokens(run.stdout + run.stderr, [TOKEN, LEGACY]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('runs under sh up to the bash line, as the agent starts it', async () => {
    const host = await writeHost(root, 'no-runners.toml');
    const run = await runDocument(host.configPath, { Probe: 'no' }, existsSync('/bin/sh') ? '/bin/sh' : 'bash');
    expect(run.codes).toEqual(['config.no-runners']);
    expect(run.code).toBe(0);
  });

  it('the fleet report makes one table of every host, raises self-rotation.enabled on a runner found on two hosts, and flags a host that did not finish', async () => {
    const { id, token } = sim.addRunner({ tokenExpiresAt: new Date(Date.now() + 30 * DAY_MS) });
    const vars = { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: stamp(new Date(Date.now() + 30 * DAY_MS)) };
    const a = await runDocument((await writeHost(root, 'self-rotating.toml', vars)).configPath, { Probe: 'no' });
    const b = await runDocument((await writeHost(root, 'self-rotating.toml', vars, { mode: 0o604 })).configPath, { Probe: 'no' });
    const report = buildFleetReport([
      { host: 'i-0aaa', status: 'Success', output: a.stdout },
      { host: 'i-0bbb', status: 'Success', output: b.stdout },
      { host: 'i-0ccc', status: 'TimedOut', output: '' },
    ]);
    expect(report.rows.map((r) => [r.host, r.code, r.severity])).toEqual([
      ['i-0ccc', 'doctor.did-not-run', 'error'],
      ['i-0aaa', 'self-rotation.enabled', 'warning'],
      ['i-0bbb', 'self-rotation.enabled', 'warning'],
      ['i-0bbb', 'file.mode', 'warning'],
    ]);
    expect(report.rows[1]!.evidence).toContain(`runner ${sim.url}#${id} is on 2 hosts: i-0aaa, i-0bbb`);
    expect(report.rows[1]!.fix).toContain('FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true');
    const table = formatFleetReport(report);
    expect(table[0]).toMatch(/^HOST +CODE +SEVERITY +RUNNER +EVIDENCE$/);
    expect(table).toContain('fixes:');
    expectNoTokens(table.join('\n'), [token, LEGACY]);
  });

  it('runner.version-too-old: gitlab-runner 16.11.0 on a shared runner (Shared=yes) is an error with the same evidence as rotator doctor --shared', async () => {
    const { id, token } = sim.addRunner({ tokenExpiresAt: null });
    const host = await writeHost(root, 'runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: '0001-01-01T00:00:00Z' }, { systemId: null });
    const bin = await runnerBin('16.11.0');
    const onHost = await runDocument(host.configPath, { Probe: 'no', Shared: 'yes' }, 'bash', bin);
    const cli = await runDoctorCli(['--config', host.configPath, '--shared', '--gitlab-runner', join(bin, 'gitlab-runner'), '--json']);
    expect(onHost.codes).toEqual(['runner.version-too-old']);
    // This file's simulator runs 5 minutes ahead: the CLI's probe reports clock.skew (Probe=no on the host).
    expect(cli.findings.map((f) => f.code).filter((c) => c !== 'clock.skew')).toEqual(['runner.version-too-old']);
    const line = onHost.lines.find((l) => l.code === 'runner.version-too-old')!;
    expect(line).toMatchObject({ severity: 'error', runner: `docker-builders (id ${id})`, key: `${sim.url}#${id}` });
    expect(line.evidence).toBe('gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version); shared: the operator says so (Shared=yes)');
    expect(String(line.evidence).replace('(Shared=yes)', '(--shared)')).toBe(cli.findings.find((f) => f.code === 'runner.version-too-old')!.evidence);
    expectNoTokens(onHost.stdout + onHost.stderr, [token]);
  });

  it.each(['17.0.0', '17.5.1'])('runner.version-too-old: gitlab-runner %s is no finding, even with Shared=yes', async (version) => {
    const host = await writeHost(root, 'runner.toml', { URL: 'https://gitlab.example.com', ID: 5, TOKEN, OBTAINED_AT: '2025-01-01T00:00:00Z', EXPIRES_AT: '0001-01-01T00:00:00Z' });
    const run = await runDocument(host.configPath, { Probe: 'no', Shared: 'yes' }, 'bash', await runnerBin(version));
    expect(run.codes).toEqual([]);
    const notRun = (run.lines.at(-1) as { notRun: Array<{ check: string }> }).notRun.map((n) => n.check);
    expect(notRun).not.toContain('runner.version-too-old');
    expect(run.code).toBe(0);
  });

  it('runner.version-too-old is listed as not run when gitlab-runner is not on PATH', async () => {
    const host = await writeHost(root, 'runner.toml', { URL: 'https://gitlab.example.com', ID: 5, TOKEN, OBTAINED_AT: '2025-01-01T00:00:00Z', EXPIRES_AT: '0001-01-01T00:00:00Z' });
    const run = await runDocument(host.configPath, { Probe: 'no', Shared: 'yes' });
    expect(run.codes).toEqual([]);
    const notRun = (run.lines.at(-1) as { notRun: Array<{ check: string; runner: string | null; reason: string }> }).notRun;
    expect(notRun.filter((n) => n.check === 'runner.version-too-old')).toEqual([
      { check: 'runner.version-too-old', runner: null, reason: 'no gitlab-runner version is known: gitlab-runner not found: gitlab-runner is not installed here, or not on PATH' },
    ]);
  });

  it('the fleet report makes runner.version-too-old an error on a runner found on two hosts, and leaves it info on a runner of one host', async () => {
    const { id, token } = sim.addRunner({ tokenExpiresAt: null });
    const vars = { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: '0001-01-01T00:00:00Z' };
    const old = await runnerBin('16.11.0');
    const a = await runDocument((await writeHost(root, 'runner.toml', vars)).configPath, { Probe: 'no' }, 'bash', old);
    const b = await runDocument((await writeHost(root, 'runner.toml', vars)).configPath, { Probe: 'no' }, 'bash', await runnerBin('17.0.0'));
    const alone = await runDocument((await writeHost(root, 'runner.toml', { ...vars, ID: id + 1000 })).configPath, { Probe: 'no' }, 'bash', old);
    expect(a.lines.find((l) => l.code === 'runner.version-too-old')).toMatchObject({ severity: 'info', evidence: 'gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version); shared or not: decided by the fleet report' });
    expect(a.code).toBe(0);
    const report = buildFleetReport([
      { host: 'i-0aaa', status: 'Success', output: a.stdout },
      { host: 'i-0bbb', status: 'Success', output: b.stdout },
      { host: 'i-0ccc', status: 'Success', output: alone.stdout },
    ]);
    expect(report.rows.map((r) => [r.host, r.code, r.severity])).toEqual([
      ['i-0aaa', 'runner.version-too-old', 'error'],
      ['i-0ccc', 'runner.version-too-old', 'info'],
    ]);
    expect(report.rows[0]!.evidence).toBe(`gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version); shared or not: decided by the fleet report; runner ${sim.url}#${id} is on 2 hosts: i-0aaa, i-0bbb`);
    expect(report.rows[0]!.fix).toContain('Upgrade gitlab-runner to 17.0 or later on every host of the runner');
    expectNoTokens(formatFleetReport(report).join('\n'), [token]);
  });

  it.skipIf(OPENSSL === undefined)('tls.untrusted: curl cannot verify a self-signed certificate, unless the runner\'s tls-ca-file holds it (needs openssl)', async () => {
    const cert = join(root, 'host-gitlab.crt');
    const key = join(root, 'host-gitlab.key');
    execFileSync(OPENSSL!, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const server = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (_req, res) => {
      res.statusCode = 401;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const untrusted = await writeHost(root, 'runner.toml', { URL: url, ID: 5, TOKEN, OBTAINED_AT: '2025-01-01T00:00:00Z', EXPIRES_AT: '0001-01-01T00:00:00Z' });
      const run = await runDocument(untrusted.configPath);
      expect(run.codes).toEqual(['tls.untrusted']);
      expect(evidenceOf(run, 'tls.untrusted')).toMatch(new RegExp(`^GET ${url}/api/v4/version: curl exit 60: .*certificate.*; verified against the system CAs; no tls-ca-file in config.toml$`));
      const trusted = await writeHost(root, 'tls-ca-file.toml', { URL: url, TOKEN, CA_FILE: cert });
      expect((await runDocument(trusted.configPath)).codes).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('host/doctor.sh run from host/ or a copy', () => {
  const HOST_DIR = fileURLToPath(new URL('../../host/', import.meta.url));
  function doctor(script: string, args: string[]): Promise<HostRun> {
    return new Promise((resolve) => {
      execFile('bash', [script, ...args], { env: { PATH: PATH_WITHOUT_RUNNER, TMPDIR: root }, timeout: 30_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        resolve({ code, stdout, stderr, lines, codes: lines.filter((l) => 'code' in l).map((l) => String(l.code)) });
      });
    });
  }

  it('finds toml-edit.awk next to itself in host/, and through a link to it', async () => {
    const host = await writeHost(root, 'legacy.toml', { URL: 'https://gitlab.example.com', ID: 5, TOKEN: LEGACY, OBTAINED_AT: '2025-01-01T00:00:00Z' }, { mode: 0o600, systemId: null });
    const direct = await doctor(join(HOST_DIR, 'doctor.sh'), ['--config', host.configPath, '--probe', 'no']);
    expect(direct.stderr).toBe('');
    expect(direct.codes).toEqual(['token.legacy']);
    const bin = join(root, 'doctor-bin');
    await mkdir(bin, { recursive: true });
    await symlink(join(HOST_DIR, 'doctor.sh'), join(bin, 'doctor.sh'));
    expect((await doctor(join(bin, 'doctor.sh'), ['--config', host.configPath, '--probe', 'no'])).stdout).toBe(direct.stdout);
  });

  it('without the walker stops at once: exit 3, one line on stderr, nothing on stdout (no guessing at the file)', async () => {
    const host = await writeHost(root, 'legacy.toml', { URL: 'https://gitlab.example.com', ID: 5, TOKEN: LEGACY, OBTAINED_AT: '2025-01-01T00:00:00Z' });
    const alone = join(root, 'doctor-alone');
    await mkdir(alone, { recursive: true });
    await copyFile(join(HOST_DIR, 'doctor.sh'), join(alone, 'doctor.sh'));
    const run = await doctor(join(alone, 'doctor.sh'), ['--config', host.configPath, '--probe', 'no']);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`doctor.sh: error: the TOML walker toml-edit.awk is missing or unreadable (${join(alone, 'toml-edit.awk')}): install it next to doctor.sh or pass --walker PATH\n`);
    // --walker, or --updater of older callers (the walker next to that updater), points at it.
    expect((await doctor(join(alone, 'doctor.sh'), ['--config', host.configPath, '--probe', 'no', '--walker', join(HOST_DIR, 'toml-edit.awk')])).codes).toEqual(['token.legacy']);
    expect((await doctor(join(alone, 'doctor.sh'), ['--config', host.configPath, '--probe', 'no', '--updater', join(HOST_DIR, 'update-runner-token.sh')])).codes).toEqual(['token.legacy']);
  });

  it('reads runners as the updater does: a [[runners]] line inside a multi-line string is no table, a duplicate key is malformed TOML', async () => {
    const host = await writeHost(root, 'no-runners.toml');
    await writeFile(host.configPath, `[[runners]]\n  name = "real"\n  url = "https://gitlab.example.com"\n  id = 5\n  token = "${TOKEN}"\n  pre_build_script = """\n[[runners]]\n  token = ""\n"""\n`);
    const run = await doctor(join(HOST_DIR, 'doctor.sh'), ['--config', host.configPath, '--probe', 'no']);
    expect(run.codes).toEqual([]);
    expect(run.lines.find((l) => 'runners' in l)).toEqual({ runners: ['https://gitlab.example.com#5'] });
    await writeFile(host.configPath, `[[runners]]\n  url = "https://gitlab.example.com"\n  id = 5\n  token = "${TOKEN}"\n  id = 6\n`);
    const bad = await doctor(join(HOST_DIR, 'doctor.sh'), ['--config', host.configPath, '--probe', 'no']);
    expect(bad.codes).toEqual(['config.unparseable']);
    expect(evidenceOf(bad, 'config.unparseable')).toBe(`${host.configPath}: malformed TOML at line 5: duplicate key id (the host updater's validator)`);
    expectNoTokens(run.stdout + run.stderr + bad.stdout + bad.stderr, [TOKEN]);
  });
});
