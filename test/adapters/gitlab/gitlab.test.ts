/**
 * The GitLab adapter against the GitLab simulator over a real socket on 127.0.0.1: no mock of
 * gitbeaker, no fetch stub. Waits between attempts go through an injected `sleep` that records them
 * and returns at once (or moves the simulator's clock), so no test really waits for a retry.
 */
import dns from 'node:dns';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GitLabAdapter, type GitLabAdapterOptions } from '../../../src/adapters/gitlab/gitlab.ts';
import {
  GitLabError,
  GitLabForbiddenError,
  GitLabGoneError,
  GitLabNotFoundError,
  GitLabRateLimitedError,
  GitLabRequestError,
  GitLabRequestNotSentError,
  GitLabServerError,
  GitLabUnauthorizedError,
  GitLabUnreachableError,
  InvalidInputError,
} from '../../../src/core/errors.ts';
import { GitLabSimulator } from '../../../src/simulator/gitlab-simulator.ts';
import { ROTATOR_SYSTEM_ID } from '../../../src/core/rotator-identity.ts';
import { rejection } from '../../support/rejection.ts';

const RESET_ROUTE = 'POST /runners/reset_authentication_token';
const RESET_PATH = '/runners/reset_authentication_token';

let sim: GitLabSimulator;
let url: string;
let waits: number[];

/** An adapter whose waits are recorded, not slept. */
function adapter(options: GitLabAdapterOptions = {}): GitLabAdapter {
  return new GitLabAdapter({
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...options,
  });
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeEach(async () => {
  waits = [];
  sim = new GitLabSimulator({ tokenLifetimeSeconds: 7200 });
  url = await sim.start();
});

afterEach(async () => {
  await sim.stop();
});

describe('reset by the current token', () => {
  it('returns the new token and its expiry, and the old token stops working', async () => {
    const { id, token } = sim.addRunner({ description: 'build-1' });

    const issued = await adapter().resetWithToken(url, token);

    expect(issued.token).toMatch(/^glrt-/);
    expect(issued.token).not.toBe(token);
    expect(issued.tokenExpiresAt).toBe(sim.runner(id)!.tokenExpiresAt!.toISOString());
    expect(sim.accepts(token)).toBe(false);
    expect(sim.runnerIdForToken(issued.token)).toBe(id);
  });

  it('accepts the GitLab url with or without a trailing slash', async () => {
    const gitlab = adapter();
    const first = sim.addRunner();
    const second = sim.addRunner();

    await gitlab.resetWithToken(`${url}/`, first.token);
    await gitlab.resetWithToken(url, second.token);

    expect(sim.runner(first.id)!.tokenResets).toBe(1);
    expect(sim.runner(second.id)!.tokenResets).toBe(1);
  });

  it('throws GitLabForbiddenError for an expired token, naming the GitLab and the endpoint', async () => {
    const { id, token } = sim.addRunner();
    sim.expireToken(id);

    const error = await rejection(adapter().resetWithToken(url, token));

    expect(error).toBeInstanceOf(GitLabForbiddenError);
    expect(error).toMatchObject({ status: 403, endpoint: RESET_ROUTE });
    expect(error.message).toBe(
      `GitLab at ${url} answered 403 to POST /runners/reset_authentication_token: the runner token is invalid, expired or already reset (GitLab said: "403 Forbidden")`,
    );
  });

  it('throws GitLabForbiddenError for a revoked token, without retrying', async () => {
    const { id, token } = sim.addRunner();
    sim.revokeToken(id);
    sim.resetStats();

    await expect(adapter().resetWithToken(url, token)).rejects.toBeInstanceOf(GitLabForbiddenError);
    expect(sim.stats.requests).toBe(1);
  });

  it('sends no PRIVATE-TOKEN header, since GitLab answers 401 to an invalid one even where none is needed', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token: 'glrt-fresh-token-123', token_expires_at: null }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const capture = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const gitlab = adapter();
      // A client with an access token exists for the same url: the token-less call must not borrow it.
      await gitlab.resetById(capture, 1, 'glpat-some-access-token').catch(() => undefined);
      const issued = await gitlab.resetWithToken(capture, 'glrt-current-token-123');

      expect(issued).toEqual({ token: 'glrt-fresh-token-123', tokenExpiresAt: null });
      expect(seen).toHaveLength(2);
      expect(seen[0]!['private-token']).toBe('glpat-some-access-token');
      expect(seen[1]).not.toHaveProperty('private-token');
      expect(seen[1]).not.toHaveProperty('authorization');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('reset by runner id', () => {
  it('returns a new token with an access token that has manage_runner, and the old token stops working', async () => {
    const { id, token } = sim.addRunner();
    const accessToken = sim.addAccessToken({ scopes: ['manage_runner'] });

    const issued = await adapter().resetById(url, id, accessToken);

    expect(sim.runnerIdForToken(issued.token)).toBe(id);
    expect(sim.accepts(token)).toBe(false);
    expect(issued.tokenExpiresAt).toBe(sim.runner(id)!.tokenExpiresAt!.toISOString());
  });

  it('recovers a runner whose token expired', async () => {
    const { id } = sim.addRunner();
    sim.expireToken(id);

    const issued = await adapter().resetById(url, id, sim.addAccessToken({ scopes: ['api'] }));

    expect(sim.runnerIdForToken(issued.token)).toBe(id);
  });

  it('throws GitLabForbiddenError when the access token lacks the scope', async () => {
    const { id } = sim.addRunner();
    const readOnly = sim.addAccessToken({ scopes: ['read_api'] });

    const error = await rejection(adapter().resetById(url, id, readOnly));

    expect(error).toBeInstanceOf(GitLabForbiddenError);
    expect(error).toMatchObject({ status: 403, endpoint: `POST /runners/${id}/reset_authentication_token` });
    expect(error.message).toContain(`lacks the scope (manage_runner, api or read_api) or the role to manage runner ${id}`);
    expect(sim.runner(id)!.tokenResets).toBe(0);
  });

  it('throws GitLabUnauthorizedError when the access token is unknown', async () => {
    const { id } = sim.addRunner();

    const error = await rejection(adapter().resetById(url, id, 'glpat-not-a-real-token'));

    expect(error).toBeInstanceOf(GitLabUnauthorizedError);
    expect(error).toMatchObject({ status: 401 });
    expect(error.message).toContain('the access token (PRIVATE-TOKEN) is invalid, expired or revoked');
  });

  it('throws GitLabNotFoundError for a runner that does not exist', async () => {
    const accessToken = sim.addAccessToken({ scopes: ['manage_runner'] });

    const error = await rejection(adapter().resetById(url, 4242, accessToken));

    expect(error).toBeInstanceOf(GitLabNotFoundError);
    expect(error).toMatchObject({ status: 404, endpoint: 'POST /runners/4242/reset_authentication_token' });
    expect(error.message).toContain('runner 4242 does not exist, or the access token cannot see it');
  });

  it('refuses a runner id that is not a positive integer before any request', async () => {
    sim.resetStats();

    await expect(adapter().resetById(url, -1, 'glpat-x')).rejects.toBeInstanceOf(InvalidInputError);
    expect(sim.stats.requests).toBe(0);
  });
});

/** A host's gitlab-runner polling for a job with its own system_id: how a host's manager record comes to be. */
async function hostPoll(token: string, systemId: string): Promise<void> {
  const reply = await fetch(`${url}/api/v4/jobs/request`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, system_id: systemId }) });
  expect(reply.status).toBe(204);
}

describe('verify, runner details and managers', () => {
  it('verify returns the runner id and speaks as the rotator: only its own manager record is touched', async () => {
    const { id, token } = sim.addRunner();
    await hostPoll(token, 's_0123456789ab');
    const before = sim.runner(id)!.managers.find((m) => m.systemId === 's_0123456789ab')!.contactedAt.getTime();

    const verified = await adapter().verify(url, token);

    expect(verified).toEqual({ runnerId: id, tokenExpiresAt: sim.runner(id)!.tokenExpiresAt!.toISOString() });
    expect(sim.runner(id)!.managers.map((m) => m.systemId).sort()).toEqual([ROTATOR_SYSTEM_ID, 's_0123456789ab']);
    expect(sim.runner(id)!.managers.find((m) => m.systemId === 's_0123456789ab')!.contactedAt.getTime()).toBe(before);
    expect(sim.runner(id)!.managers.some((m) => m.systemId === '<legacy>')).toBe(false);
  });

  it('reset by token leaves no <legacy> manager: GitLab files it under the rotator, whom managers() never lists', async () => {
    const { id, token } = sim.addRunner();
    await hostPoll(token, 's_0123456789ab');
    const gitlab = adapter();

    const issued = await gitlab.resetWithToken(url, token);

    expect(sim.accepts(issued.token)).toBe(true);
    expect(sim.runner(id)!.managers.map((m) => m.systemId).sort()).toEqual([ROTATOR_SYSTEM_ID, 's_0123456789ab']);
    const managers = await gitlab.managers(url, id, sim.addAccessToken({ scopes: ['read_api'] }));
    expect(managers.map((m) => m.systemId)).toEqual(['s_0123456789ab']);
  });

  it('tells an administrator\'s access token from a maintainer\'s by GET /user', async () => {
    const gitlab = adapter();

    expect(await gitlab.isAdmin(url, sim.addAccessToken({ scopes: ['read_api'], admin: true }))).toBe(true);
    expect(await gitlab.isAdmin(url, sim.addAccessToken({ scopes: ['manage_runner'] }))).toBe(false);
  });

  it('verify with a token GitLab no longer accepts throws GitLabForbiddenError and creates no manager', async () => {
    const { id, token } = sim.addRunner();
    sim.expireToken(id);

    const error = await rejection(adapter().verify(url, token));

    expect(error).toBeInstanceOf(GitLabForbiddenError);
    expect(error).toMatchObject({ endpoint: 'POST /runners/verify' });
    expect(sim.runner(id)!.managers).toEqual([]);
  });

  it('runner details are mapped to the port type', async () => {
    const { id, token } = sim.addRunner({ description: 'docker-autoscaler', runnerType: 'group_type', groupId: 7, paused: true });
    await adapter().verify(url, token);
    const snapshot = sim.runner(id)!;

    const details = await adapter().runner(url, id, sim.addAccessToken({ scopes: ['read_api'] }));

    expect(details).toEqual({
      id,
      description: 'docker-autoscaler',
      runnerType: 'group_type',
      groupId: 7,
      projectIds: [],
      tagList: [],
      runUntagged: true,
      locked: false,
      accessLevel: 'not_protected',
      maximumTimeout: null,
      paused: true,
      maintenanceNote: null,
      status: 'online',
      contactedAt: snapshot.contactedAt!.toISOString(),
    });
  });

  it('runner details carry every setting a replacement copies, and a project runner lists its projects', async () => {
    const { id } = sim.addRunner({
      description: 'deployers',
      runnerType: 'project_type',
      projectIds: [41, 42],
      tagList: ['deploy', 'prod'],
      runUntagged: false,
      locked: true,
      accessLevel: 'ref_protected',
      maximumTimeout: 5400,
      maintenanceNote: 'owned by platform',
    });

    const details = await adapter().runner(url, id, sim.addAccessToken({ scopes: ['read_api'] }));

    expect(details).toMatchObject({
      runnerType: 'project_type',
      groupId: null,
      projectIds: [41, 42],
      description: 'deployers',
      tagList: ['deploy', 'prod'],
      runUntagged: false,
      locked: true,
      accessLevel: 'ref_protected',
      maximumTimeout: 5400,
      paused: false,
      maintenanceNote: 'owned by platform',
    });
  });

  it('creates a project runner on its first project and enables it on another with POST /projects/:id/runners', async () => {
    const accessToken = sim.addAccessToken({ scopes: ['api'] });
    const gitlab = adapter();

    const created = await gitlab.createRunner(url, accessToken, { runnerType: 'project_type', projectIds: [41, 42], description: 'deployers' });
    await gitlab.enableRunnerInProject(url, 42, created.id, accessToken);

    expect(sim.runner(created.id)).toMatchObject({ runnerType: 'project_type', projectIds: [41, 42], description: 'deployers' });
    expect(sim.stats.byRoute['POST /projects/:id/runners']).toBe(1);
    const again = await rejection(gitlab.enableRunnerInProject(url, 42, created.id, accessToken));
    expect(again).toBeInstanceOf(GitLabRequestError);
    expect(again).toMatchObject({ endpoint: 'POST /projects/42/runners' });
  });

  it('managers are mapped to the port type', async () => {
    const { id, token } = sim.addRunner();
    const gitlab = adapter();
    await hostPoll(token, 's_111111111111');
    await hostPoll(token, 's_222222222222');
    const snapshot = sim.runner(id)!;

    const managers = await gitlab.managers(url, id, sim.addAccessToken({ scopes: ['manage_runner'] }));

    expect(managers.map((m) => m.systemId).sort()).toEqual(['s_111111111111', 's_222222222222']);
    for (const manager of managers) {
      const record = snapshot.managers.find((m) => m.systemId === manager.systemId)!;
      expect(manager).toEqual({
        systemId: record.systemId,
        contactedAt: record.contactedAt.toISOString(),
        status: 'online',
        version: null,
        ipAddress: record.ipAddress,
      });
    }
  });
});

describe('retries', () => {
  it('retries a 500 once and succeeds, with 2 requests in all', async () => {
    const { id, token } = sim.addRunner();
    sim.faults.failNext(1, { status: 500, path: RESET_PATH });
    sim.resetStats();

    const issued = await adapter().resetWithToken(url, token);

    expect(sim.runnerIdForToken(issued.token)).toBe(id);
    expect(sim.stats.requests).toBe(2);
    expect(sim.stats.byRoute[RESET_ROUTE]).toBe(2);
    expect(waits).toEqual([250]);
  });

  it('gives GitLabServerError after exactly maxAttempts requests when GitLab keeps failing', async () => {
    const { token } = sim.addRunner();
    sim.faults.failNext(100, { status: 503 });
    sim.resetStats();

    const error = await rejection(adapter({ maxAttempts: 4 }).resetWithToken(url, token));

    expect(error).toBeInstanceOf(GitLabServerError);
    expect(error).toMatchObject({ status: 503, endpoint: RESET_ROUTE });
    expect(error.message).toContain('answered 503 to POST /runners/reset_authentication_token after 4 attempts');
    expect(error.message).toContain('the reset may or may not have been applied');
    expect(sim.stats.requests).toBe(4);
    expect(waits).toEqual([250, 1000, 4000]);
  });

  it('caps each back-off wait at maxRetryWaitMs', async () => {
    sim.faults.failNext(100, { status: 502 });

    await expect(adapter({ maxAttempts: 5, maxRetryWaitMs: 2000 }).runner(url, 1, 'glpat-x')).rejects.toBeInstanceOf(GitLabServerError);
    expect(waits).toEqual([250, 1000, 2000, 2000]);
  });

  it('a dropped reset reply, then the retry, gives GitLabForbiddenError saying the reply may have been lost, and the token did change', async () => {
    const { id, token } = sim.addRunner();
    sim.faults.dropNextReset();
    sim.resetStats();

    const error = await rejection(adapter().resetWithToken(url, token));

    expect(error).toBeInstanceOf(GitLabForbiddenError);
    expect(error.message).toMatch(/An earlier attempt got no reply \(.+\): that attempt may have reset the token and its reply \(the new token\) was lost/);
    expect(error.message).toContain('recover by resetting the runner by id with an access token');
    expect(sim.stats.byRoute[RESET_ROUTE]).toBe(2);
    expect(sim.accepts(token)).toBe(false);
    expect(sim.runner(id)!.tokenResets).toBe(1);
  });

  it('a dropped reply of a reset by id is retried and yields a token GitLab accepts', async () => {
    const { id } = sim.addRunner();
    sim.faults.dropNextReset();

    const issued = await adapter().resetById(url, id, sim.addAccessToken({ scopes: ['manage_runner'] }));

    expect(sim.runnerIdForToken(issued.token)).toBe(id);
    expect(sim.runner(id)!.tokenResets).toBe(2);
  });

  it('a hanging request gives GitLabUnreachableError after requestTimeoutMs', async () => {
    const { id } = sim.addRunner();
    sim.faults.hangNext(1, { path: `/runners/${id}` });
    const started = Date.now();

    const error = await rejection(adapter({ requestTimeoutMs: 150, maxAttempts: 1 }).runner(url, id, sim.addAccessToken({ scopes: ['api'] })));

    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(GitLabUnreachableError);
    expect(error).toMatchObject({ status: undefined, endpoint: `GET /runners/${id}` });
    expect(error.message).toBe(`GitLab at ${url} did not answer GET /runners/${id} after 1 attempt: no reply within 150 ms`);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(5000);
  });

  it('a request that hangs once is timed out and retried', async () => {
    const { id } = sim.addRunner({ description: 'slow' });
    sim.faults.hangNext(1);

    const details = await adapter({ requestTimeoutMs: 150 }).runner(url, id, sim.addAccessToken({ scopes: ['api'] }));

    expect(details.description).toBe('slow');
    expect(waits).toEqual([250]);
  });

  it('waits the Retry-After GitLab sent on 429 and gives GitLabRateLimitedError after maxAttempts', async () => {
    const { token } = sim.addRunner();
    sim.faults.failNext(100, { status: 429, retryAfterSeconds: 7 });
    sim.resetStats();

    const error = await rejection(adapter({ maxAttempts: 3 }).resetWithToken(url, token));

    expect(error).toBeInstanceOf(GitLabRateLimitedError);
    expect(error).toMatchObject({ status: 429, retryAfterSeconds: 7, endpoint: RESET_ROUTE });
    expect(error.message).toBe(`GitLab at ${url} answered 429 (rate limited) to POST /runners/reset_authentication_token on each of 3 attempts; it last asked to wait 7 s`);
    expect(waits).toEqual([7000, 7000]);
    expect(sim.stats.requests).toBe(3);
    expect(sim.stats.rateLimited).toBe(3);
  });

  it('gives up at once on a Retry-After longer than maxRetryWaitMs rather than retry before GitLab said', async () => {
    const { token } = sim.addRunner();
    sim.faults.failNext(1, { status: 429, retryAfterSeconds: 3600 });
    sim.resetStats();

    const error = await rejection(adapter({ maxRetryWaitMs: 5000 }).resetWithToken(url, token));

    expect(error).toBeInstanceOf(GitLabRateLimitedError);
    expect(error).toMatchObject({ status: 429, retryAfterSeconds: 3600 });
    expect(waits).toEqual([]);
    expect(sim.stats.requests).toBe(1);
    expect(sim.accepts(token)).toBe(true);
  });

  it("waits out GitLab's own rate limit window and then succeeds", async () => {
    await sim.stop();
    let clockMs = Date.UTC(2025, 0, 1, 12, 0, 30);
    sim = new GitLabSimulator({ now: () => new Date(clockMs), rateLimit: { requestsPerMinute: 2 } });
    url = await sim.start();
    const { id } = sim.addRunner();
    const accessToken = sim.addAccessToken({ scopes: ['read_api'] });
    const gitlab = new GitLabAdapter({
      sleep: async (ms) => {
        waits.push(ms);
        clockMs += ms;
      },
    });

    for (let call = 0; call < 3; call += 1) await gitlab.runner(url, id, accessToken);

    expect(waits).toEqual([30_000]);
    expect(sim.stats.rateLimited).toBe(1);
  });

  it('does not repeat POST /user/runners after a 500, which may have created the runner', async () => {
    const accessToken = sim.addAccessToken({ scopes: ['create_runner'] });
    sim.faults.failNext(1, { status: 500, path: '/user/runners' });
    sim.resetStats();

    const error = await rejection(adapter().createRunner(url, accessToken, { runnerType: 'instance_type' }));

    expect(error).toBeInstanceOf(GitLabServerError);
    expect(sim.stats.requests).toBe(1);
  });

  it('a refused connection (a closed port) gives GitLabRequestNotSentError after maxAttempts, saying the reset was not applied', async () => {
    const port = await closedPort();

    const error = await rejection(adapter({ maxAttempts: 2 }).resetWithToken(`http://127.0.0.1:${port}`, 'glrt-abcdefabcdef'));

    expect(error).toBeInstanceOf(GitLabRequestNotSentError);
    expect(error).toBeInstanceOf(GitLabUnreachableError);
    expect(error.message).toMatch(new RegExp(`^GitLab at http://127\\.0\\.0\\.1:${port} could not be reached for POST /runners/reset_authentication_token after 2 attempts: .*ECONNREFUSED`));
    expect(error.message).toMatch(/: the request never reached GitLab, so the reset was not applied and the runner keeps its token$/);
    expect(error.message).not.toContain('may or may not');
    // A refused connection proves nothing was sent: no "may have been applied" worry for the 403 case.
    expect((error as GitLabError).cause).not.toHaveProperty('earlierUncertainAttempt');
    expect(waits).toEqual([250]);
  });

  it('a host name that does not resolve gives GitLabRequestNotSentError, saying the reset was not applied', async () => {
    // Node's resolver answers as getaddrinfo does for an unknown name: no DNS server is asked, whatever the machine's network.
    const lookup = vi.spyOn(dns, 'lookup').mockImplementation(((hostname: string, ...rest: unknown[]) => {
      const callback = rest.at(-1) as (error: NodeJS.ErrnoException) => void;
      process.nextTick(() => callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname })));
    }) as unknown as typeof dns.lookup);
    try {
      const error = await rejection(adapter({ maxAttempts: 1 }).resetWithToken('https://gitlab.rotator-test.invalid', 'glrt-abcdefabcdef'));

      expect(lookup).toHaveBeenCalled();
      expect(error).toBeInstanceOf(GitLabRequestNotSentError);
      expect(error.message).toBe(
        'GitLab at https://gitlab.rotator-test.invalid could not be reached for POST /runners/reset_authentication_token after 1 attempt: getaddrinfo ENOTFOUND gitlab.rotator-test.invalid: the request never reached GitLab, so the reset was not applied and the runner keeps its token',
      );
    } finally {
      lookup.mockRestore();
    }
  });

  it('a reset whose reply never comes gives GitLabUnreachableError saying the reset may or may not have been applied', async () => {
    const { token } = sim.addRunner();
    sim.faults.hangNext(1, { path: '/runners/reset_authentication_token' });

    const error = await rejection(adapter({ requestTimeoutMs: 150, maxAttempts: 1 }).resetWithToken(url, token));

    expect(error).toBeInstanceOf(GitLabUnreachableError);
    expect(error).not.toBeInstanceOf(GitLabRequestNotSentError);
    expect(error.message).toBe(`GitLab at ${url} did not answer POST /runners/reset_authentication_token after 1 attempt: no reply within 150 ms: the reset may or may not have been applied`);
  });
});

describe('runner lifecycle', () => {
  it('a 410 Gone (legacy registration disabled) throws GitLabGoneError saying what to do instead, without the token', async () => {
    const { token } = sim.addRunner({ legacyToken: true });
    sim.faults.failNext(1, { status: 410, path: '/runners/verify' });

    const error = await rejection(adapter().verify(url, token));

    expect(error).toBeInstanceOf(GitLabGoneError);
    expect(error).toMatchObject({ status: 410, endpoint: 'POST /runners/verify' });
    expect(error.message).toContain('legacy runner registration is disabled');
    expect(error.message).toContain('POST /user/runners');
    expect(inspect(error, { depth: 10 })).not.toContain(token);
  });

  it('createRunner returns a runner whose token GitLab accepts, and deleteRunner removes it', async () => {
    const accessToken = sim.addAccessToken({ scopes: ['create_runner', 'manage_runner'] });
    const gitlab = adapter();

    const settings = {
      runnerType: 'group_type',
      groupId: 12,
      description: 'replacement',
      tagList: ['docker', 'linux'],
      runUntagged: false,
      locked: true,
      accessLevel: 'ref_protected',
      maximumTimeout: 3600,
      paused: true,
    } as const;

    const created = await gitlab.createRunner(url, accessToken, { ...settings, tagList: [...settings.tagList] });

    expect(sim.runnerIdForToken(created.token)).toBe(created.id);
    expect(created.tokenExpiresAt).toBe(sim.runner(created.id)!.tokenExpiresAt!.toISOString());
    expect(sim.runner(created.id)).toMatchObject(settings);

    await gitlab.deleteRunner(url, created.id, accessToken);

    expect(sim.runner(created.id)).toBeUndefined();
    expect(sim.accepts(created.token)).toBe(false);
    await expect(gitlab.deleteRunner(url, created.id, accessToken)).rejects.toBeInstanceOf(GitLabNotFoundError);
  });

  it('createRunner without the create_runner scope throws GitLabForbiddenError', async () => {
    const error = await rejection(adapter().createRunner(url, sim.addAccessToken({ scopes: ['read_api'] }), { runnerType: 'instance_type' }));

    expect(error).toBeInstanceOf(GitLabForbiddenError);
    expect(error.message).toContain('lacks the create_runner scope');
  });
});

describe('secrets', () => {
  it('no error thrown across a batch of failing calls holds the runner token or the access token', async () => {
    const { id, token } = sim.addRunner();
    const accessToken = sim.addAccessToken({ scopes: ['read_api'] });
    const unknownAccessToken = 'glpat-unknown-but-still-secret';
    const expired = sim.addRunner();
    sim.expireToken(expired.id);
    const port = await closedPort();
    const gitlab = adapter({ maxAttempts: 2, requestTimeoutMs: 100 });
    const secrets = [token, accessToken, unknownAccessToken, expired.token];

    const calls: Array<() => Promise<unknown>> = [
      () => gitlab.resetWithToken(url, expired.token),
      () => gitlab.verify(url, expired.token),
      () => gitlab.resetById(url, id, accessToken),
      () => gitlab.resetById(url, id, unknownAccessToken),
      () => gitlab.resetById(url, 999, accessToken),
      () => gitlab.createRunner(url, accessToken, { runnerType: 'instance_type' }),
      () => gitlab.resetWithToken(`http://127.0.0.1:${port}`, token),
      () => gitlab.runner(`http://127.0.0.1:${port}`, id, accessToken),
      () => {
        sim.faults.failNext(2, { status: 503 });
        return gitlab.resetWithToken(url, token);
      },
      () => {
        sim.faults.failNext(2, { status: 429, retryAfterSeconds: 1 });
        return gitlab.runner(url, id, accessToken);
      },
      () => {
        sim.faults.hangNext(2);
        return gitlab.managers(url, id, accessToken);
      },
      () => {
        sim.faults.dropNextReset();
        return gitlab.resetWithToken(url, token);
      },
      // undici rejects a header value with a newline and quotes the value in its message.
      () => gitlab.runner(url, id, `${accessToken}\nx`),
    ];

    const errors: Error[] = [];
    for (const call of calls) errors.push(await rejection(call()));

    expect(errors).toHaveLength(calls.length);
    for (const error of errors) {
      expect(error).toBeInstanceOf(GitLabError);
      const views = [inspect(error, { depth: 10 }), inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error), String(error.stack), error.message];
      for (const view of views) {
        for (const secret of secrets) expect(view).not.toContain(secret);
      }
    }
    expect(errors.at(-1)).toBeInstanceOf(GitLabRequestError);
  });

  it('scrubs a token that GitLab (or a proxy) echoes in its error reply, keeping the rest of its words', async () => {
    const echoed = 'glrt-echoed-by-the-server-42';
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `403 Forbidden - token ${echoed} has expired` }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const error = await rejection(adapter().resetWithToken(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, echoed));

      expect(error).toBeInstanceOf(GitLabForbiddenError);
      expect(error.message).toContain('(GitLab said: "403 Forbidden - token [redacted] has expired")');
      expect((error as GitLabError).cause).toEqual({ status: 403, statusText: 'Forbidden', description: '403 Forbidden - token [redacted] has expired', attempts: 1 });
      expect(inspect(error, { depth: 10, showHidden: true })).not.toContain(echoed);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
