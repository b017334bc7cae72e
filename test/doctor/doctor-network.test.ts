/**
 * network.unreachable (DNS, refused, timeout told apart), tls.untrusted (a self-signed certificate made
 * with openssl in the test), and a GitLab that cannot be reached at all: every local finding is still
 * reported and the checks that needed GitLab are listed as not run. Nothing here leaves 127.0.0.1
 * except one lookup of a name under .invalid, which never resolves (RFC 6761).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNoTokens } from '../support/token-leaks.ts';
import { only, runDoctorCli, stamp, tempRoot, writeHost } from './doctor-harness.ts';

const TOKEN = 'glrt-NETWORKTESTTOKEN00001';
const LEGACY = 'Lg7NetworkLegacyToken001';
const UNKNOWN = '0001-01-01T00:00:00Z';
const OPENSSL = ['/usr/bin/openssl', '/usr/local/bin/openssl', '/bin/openssl'].find((p) => existsSync(p));

let root: string;
let closedPort: number;
let silent: NetServer;
const silentSockets = new Set<Socket>();
let silentUrl: string;

beforeAll(async () => {
  root = await tempRoot('doctor-net-');
  // A port nobody listens on: bind an ephemeral one, then close it.
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  // A server that accepts connections and never answers.
  silent = createNetServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
  await rm(root, { recursive: true, force: true });
});

const runnerVars = (url: string) => ({ URL: url, ID: 42, TOKEN, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: UNKNOWN });

describe('network.unreachable tells DNS, refused and timeout apart', () => {
  it('refused: a closed port on 127.0.0.1', async () => {
    const url = `http://127.0.0.1:${closedPort}`;
    const host = await writeHost(root, 'runner.toml', runnerVars(url));
    const run = await runDoctorCli(['--config', host.configPath, '--json']);
    const f = only(run, 'network.unreachable');
    expect(f.severity).toBe('error');
    expect(f.runner).toBe('docker-builders (id 42)');
    expect(f.evidence).toBe(`GET ${url}/api/v4/version: connection refused: nothing listens on that port, or a firewall rejects it (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${closedPort})`);
    expect(f.fix).toContain('refused: check the port');
    expect(run.code).toBe(2);
    expectNoTokens(run.text, [TOKEN]);
  });

  it('timeout: a server that accepts the connection and never answers, with a 300 ms limit', async () => {
    const host = await writeHost(root, 'runner.toml', runnerVars(silentUrl));
    const run = await runDoctorCli(['--config', host.configPath, '--timeout-seconds', '0.3', '--json']);
    const f = only(run, 'network.unreachable');
    expect(f.evidence).toBe(`GET ${silentUrl}/api/v4/version: timeout: no reply in time (routes, security groups, a proxy that drops packets) (ETIMEDOUT: no reply within 300 ms)`);
  });

  it('DNS: a host name under .invalid, which never resolves', async () => {
    const url = 'https://gitlab.doctor-test.invalid';
    const host = await writeHost(root, 'runner.toml', runnerVars(url));
    const run = await runDoctorCli(['--config', host.configPath, '--timeout-seconds', '5', '--json']);
    const f = only(run, 'network.unreachable');
    expect(f.evidence).toMatch(/^GET https:\/\/gitlab\.doctor-test\.invalid\/api\/v4\/version: DNS: the host name does not resolve \((ENOTFOUND|EAI_AGAIN|EAI_FAIL): /);
  });
});

describe('with no reachable GitLab', () => {
  it('still reports every local finding and lists the checks it could not run, in JSON and as text', async () => {
    const url = `http://127.0.0.1:${closedPort}/`;
    const host = await writeHost(root, 'legacy.toml', { URL: url, ID: 9, TOKEN: LEGACY, OBTAINED_AT: stamp(new Date()) }, { mode: 0o640 });
    const run = await runDoctorCli(['--config', host.configPath, '--json']);
    expect(run.findings.map((f) => f.code)).toEqual(['network.unreachable', 'token.legacy', 'file.mode']);
    expect(only(run, 'file.mode').evidence).toContain('mode 0640: group may access');
    const reasons = new Map(run.notRun.map((n) => [n.check, n.reason]));
    expect(reasons.get('token.invalid')).toBe(`GitLab at ${url} did not reply to GET /version (refused: ECONNREFUSED)`);
    expect(reasons.get('clock.skew')).toBe('no GitLab replied with a Date header');
    expect(reasons.get('token.expiring')).toContain('GitLab did not answer verify');
    expect(run.code).toBe(2);
    expectNoTokens(run.text, [LEGACY]);

    const text = await runDoctorCli(['--config', host.configPath]);
    expect(text.lines[0]).toMatch(/^CODE +SEVERITY +RUNNER +EVIDENCE +FIX$/);
    expect(text.lines).toContain('checks not run:');
    expect(text.text).toContain(`token.invalid [legacy-shell (id 9)]: GitLab at ${url} did not reply to GET /version (refused: ECONNREFUSED)`);
    expect(text.code).toBe(2);
    expectNoTokens(text.text, [LEGACY]);
  });
});

describe.skipIf(OPENSSL === undefined)('tls.untrusted (needs openssl to make a self-signed certificate)', () => {
  let server: HttpsServer;
  let url: string;
  let certFile: string;

  beforeAll(async () => {
    certFile = join(root, 'gitlab.crt');
    const keyFile = join(root, 'gitlab.key');
    execFileSync(OPENSSL!, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    server = createHttpsServer({ key: await readFile(keyFile), cert: await readFile(certFile) }, (req, res) => {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json');
      res.end('{"message":"401 Unauthorized"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a self-signed certificate is an error that points at tls-ca-file and NODE_EXTRA_CA_CERTS', async () => {
    const host = await writeHost(root, 'runner.toml', runnerVars(url));
    const run = await runDoctorCli(['--config', host.configPath, '--json']);
    const f = only(run, 'tls.untrusted');
    expect(f.severity).toBe('error');
    expect(f.evidence).toBe(`GET ${url}/api/v4/version: DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate; verified against the system CAs (and NODE_EXTRA_CA_CERTS, if set); no tls-ca-file in config.toml`);
    expect(f.fix).toContain('tls-ca-file = "/etc/gitlab-runner/certs/ca.crt"');
    expect(f.fix).toContain('NODE_EXTRA_CA_CERTS');
    expect(run.findings.map((x) => x.code)).not.toContain('network.unreachable');
    expect(run.notRun.find((n) => n.check === 'token.invalid')?.reason).toBe(`GitLab at ${url} did not reply to GET /version (tls: DEPTH_ZERO_SELF_SIGNED_CERT)`);
  });

  it('the runner\'s tls-ca-file is trusted, as gitlab-runner trusts it: no tls.untrusted', async () => {
    const host = await writeHost(root, 'tls-ca-file.toml', { URL: url, TOKEN, CA_FILE: certFile }, { systemId: null });
    const run = await runDoctorCli(['--config', host.configPath, '--json']);
    expect(run.findings).toEqual([]);
    expect(run.code).toBe(0);
  });

  it('a tls-ca-file that does not sign GitLab\'s certificate is named in the evidence', async () => {
    const other = join(root, 'other-ca.crt');
    execFileSync(OPENSSL!, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(root, 'other.key'), '-out', other, '-days', '2', '-subj', '/CN=other-ca'], { stdio: 'ignore' });
    const host = await writeHost(root, 'tls-ca-file.toml', { URL: url, TOKEN, CA_FILE: other }, { systemId: null });
    const run = await runDoctorCli(['--config', host.configPath, '--json']);
    expect(only(run, 'tls.untrusted').evidence).toContain(`verified against the system CAs and tls-ca-file ${other} from config.toml`);
  });
});
