/**
 * The adapter's HTTP leg against real sockets: the headers it sends, replies it cannot use, and the CAs
 * it trusts for a runner's tls-ca-file (a chain made with openssl in the test: root → intermediate → leaf).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, nodeHttpSend, USER_AGENT } from '../../../src/adapters/gitlab/gitlab-http.ts';

const OPENSSL = ['/usr/bin/openssl', '/usr/local/bin/openssl', '/bin/openssl'].find((p) => existsSync(p));
const servers: Array<Server | TcpServer | HttpsServer> = [];

async function listening<S extends Server | TcpServer | HttpsServer>(server: S): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    if ('closeAllConnections' in server) server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('the GitLab HTTP sender', () => {
  it('sends a User-Agent, Accept: application/json and Accept-Encoding: identity unless the request sets its own', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const port = await listening(createServer((req, res) => (seen.push(req.headers), res.end('{}'))));
    const send = nodeHttpSend();

    await (await send(new Request(`http://127.0.0.1:${port}/api/v4/version`))).text();
    await (await send(new Request(`http://127.0.0.1:${port}/api/v4/version`, { headers: { 'user-agent': 'mine/1', accept: 'text/plain' } }))).text();

    expect(seen[0]).toMatchObject({ 'user-agent': USER_AGENT, accept: 'application/json', 'accept-encoding': 'identity' });
    expect(seen[1]).toMatchObject({ 'user-agent': 'mine/1', accept: 'text/plain' });
  });

  it('takes a status outside 200-599 for no reply (HPE_INVALID_STATUS), not a Response it cannot build', async () => {
    const port = await listening(createTcpServer((socket) => socket.end('HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n', () => socket.destroy())));

    await expect(nodeHttpSend()(new Request(`http://127.0.0.1:${port}/`))).rejects.toMatchObject({ code: 'HPE_INVALID_STATUS' });
  });

  it('stops reading a body larger than MAX_BODY_BYTES (EMSGSIZE)', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    const port = await listening(
      createServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        let sent = 0;
        const more = (): void => {
          while (sent <= MAX_BODY_BYTES + chunk.length) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      }),
    );

    const response = await nodeHttpSend()(new Request(`http://127.0.0.1:${port}/`));

    await expect(response.text()).rejects.toMatchObject({ code: 'EMSGSIZE' });
  });
});

describe.skipIf(OPENSSL === undefined)('the CAs trusted for a runner\'s tls-ca-file (needs openssl)', () => {
  let dir: string;
  let server: HttpsServer;
  let url: string;
  let rootPem: string;
  let intermediatePem: string;
  let unrelatedPem: string;

  const openssl = (...args: string[]) => execFileSync(OPENSSL!, args, { cwd: dir, stdio: 'ignore' });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gitlab-http-ca-'));
    await writeFile(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n');
    await writeFile(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:false\n');
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root.key', '-out', 'root.crt', '-days', '2', '-subj', '/CN=Test Root', '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=Test Intermediate');
    openssl('x509', '-req', '-in', 'int.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'int.crt', '-days', '2', '-extfile', 'ca.ext');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1');
    openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'int.crt', '-CAkey', 'int.key', '-CAcreateserial', '-out', 'leaf.crt', '-days', '2', '-extfile', 'leaf.ext');
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=Unrelated');
    rootPem = await readFile(join(dir, 'root.crt'), 'utf8');
    intermediatePem = await readFile(join(dir, 'int.crt'), 'utf8');
    unrelatedPem = await readFile(join(dir, 'other.crt'), 'utf8');
    const leafPem = await readFile(join(dir, 'leaf.crt'), 'utf8');
    // GitLab sends leaf and intermediate, as a server should.
    server = createHttpsServer({ key: await readFile(join(dir, 'leaf.key')), cert: leafPem + intermediatePem }, (_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/api/v4/version`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const status = async (caPem: string | null) => (await nodeHttpSend({ caPem })(new Request(url))).status;

  it('trusts a tls-ca-file holding the root', async () => {
    expect(await status(rootPem)).toBe(200);
  });

  it('trusts a tls-ca-file holding only the intermediate, as gitlab-runner (Go) takes every certificate of the file as an anchor', async () => {
    expect(await status(intermediatePem)).toBe(200);
  });

  it('refuses a tls-ca-file that signs nothing of the chain, and the system CAs alone', async () => {
    await expect(status(unrelatedPem)).rejects.toMatchObject({ code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
    await expect(status(null)).rejects.toMatchObject({ code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
  });

  it('keeps trusting the NODE_EXTRA_CA_CERTS file when a tls-ca-file is given', async () => {
    const before = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = join(dir, 'root.crt');
    try {
      expect(await status(unrelatedPem)).toBe(200);
    } finally {
      if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = before;
    }
  });
});
