import { describe, expect, it } from 'vitest';
import { asAccessToken, DAY, HOUR, MINUTE, useSimulators } from './simulator-client.ts';
import { TestClock } from '../support/test-clock.ts';

const GLRT = /^glrt-[A-Za-z0-9_-]{24}$/;
const START = '2026-03-01T10:00:00.000Z';

const started = useSimulators();

describe('POST /runners/reset_authentication_token', () => {
  it('answers 201 with a new glrt- token that expires one lifetime from now', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now, tokenLifetimeSeconds: 86_400 });
    const { token } = sim.addRunner();

    const response = await api.post('/runners/reset_authentication_token', { token });

    expect(response.status).toBe(201);
    const body = (await response.json()) as { token: string; token_expires_at: string };
    expect(body).toEqual({ token: expect.stringMatching(GLRT), token_expires_at: '2026-03-02T10:00:00.000Z' });
    expect(body.token).not.toBe(token);
  });

  it('kills the old token the moment it issues a new one', async () => {
    const { sim, api } = await started();
    const { id, token: oldToken } = sim.addRunner();

    const { token: newToken } = (await (await api.post('/runners/reset_authentication_token', { token: oldToken })).json()) as { token: string };

    expect(sim.accepts(oldToken)).toBe(false);
    expect(sim.runnerIdForToken(newToken)).toBe(id);
    expect((await api.post('/runners/reset_authentication_token', { token: oldToken })).status).toBe(403);
    expect((await api.post('/runners/verify', { token: newToken, system_id: 's_host1' })).status).toBe(200);
  });

  it('takes a form-encoded body as gitlab-runner sends it', async () => {
    const { sim, api } = await started();
    const { token } = sim.addRunner();

    const response = await api.postForm('/runners/reset_authentication_token', { token });

    expect(response.status).toBe(201);
    expect(sim.accepts(token)).toBe(false);
  });

  it('answers null token_expires_at when tokens never expire', async () => {
    const { sim, api } = await started();
    const { token } = sim.addRunner();

    const body = (await (await api.post('/runners/reset_authentication_token', { token })).json()) as Record<string, unknown>;

    expect(body.token_expires_at).toBeNull();
  });

  it('answers 403 to a token it does not know', async () => {
    const { sim, api } = await started();
    sim.addRunner();

    const response = await api.post('/runners/reset_authentication_token', { token: 'glrt-not-a-real-token-at-all' });

    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ message: '403 Forbidden' });
  });

  it('answers 400 "token is missing" when no token is sent', async () => {
    const { api } = await started();

    const response = await api.post('/runners/reset_authentication_token', {});

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'token is missing' });
  });

  it('gives a legacy-registered runner a glrtr- token on reset, as GitLab prefixes registered runners', async () => {
    const { sim, api } = await started();
    const { token } = sim.addRunner({ legacyToken: true });

    const body = (await (await api.post('/runners/reset_authentication_token', { token })).json()) as { token: string };

    expect(token).toMatch(/^[A-Za-z0-9_-]{20}$/);
    expect(body.token).toMatch(/^glrtr-[A-Za-z0-9_-]{24}$/);
  });

  it('heartbeats the runner and a <legacy> manager at the caller address when no system_id is sent', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();

    await api.post('/runners/reset_authentication_token', { token });

    const runner = sim.runner(id);
    expect(runner?.contactedAt?.toISOString()).toBe(START);
    expect(runner?.managers.map((m) => [m.systemId, m.ipAddress, m.contactedAt.toISOString()])).toEqual([['<legacy>', '127.0.0.1', START]]);
  });

  it('heartbeats the manager of the system_id the reset carries, and no other', async () => {
    const { sim, api } = await started();
    const { id, token } = sim.addRunner();

    await api.post('/runners/reset_authentication_token', { token, system_id: 'gitlab-runner-token-rotator' });

    expect(sim.runner(id)?.managers.map((m) => m.systemId)).toEqual(['gitlab-runner-token-rotator']);
  });
});

describe('POST /runners/:id/reset_authentication_token', () => {
  it('answers 401 without an access token and with an unknown one', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner();

    const without = await api.post(`/runners/${id}/reset_authentication_token`);
    const unknown = await api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken('glpat-unknown'));

    expect(without.status).toBe(401);
    expect(await without.json()).toEqual({ message: '401 Unauthorized' });
    expect(unknown.status).toBe(401);
  });

  it('answers 403 to an access token without manage_runner or api', async () => {
    const { sim, api } = await started();
    const { id, token } = sim.addRunner();
    const readOnly = sim.addAccessToken({ scopes: ['read_api'] });

    const response = await api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken(readOnly));

    expect(response.status).toBe(403);
    expect(sim.accepts(token)).toBe(true);
  });

  it('answers 404 "Runner Not Found" for a runner that does not exist', async () => {
    const { sim, api } = await started();
    const manager = sim.addAccessToken({ scopes: ['manage_runner'] });

    const response = await api.post('/runners/999/reset_authentication_token', undefined, asAccessToken(manager));

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ message: '404 Runner Not Found' });
  });

  it('brings back a runner whose token has expired, with 201 and a fresh token', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now, tokenLifetimeSeconds: 7200 });
    const { id, token: oldToken } = sim.addRunner();
    sim.expireToken(id);
    const manager = sim.addAccessToken({ scopes: ['manage_runner'] });

    const response = await api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken(manager));

    expect(response.status).toBe(201);
    const body = (await response.json()) as { token: string; token_expires_at: string };
    expect(body).toEqual({ token: expect.stringMatching(GLRT), token_expires_at: '2026-03-01T12:00:00.000Z' });
    expect(sim.runnerIdForToken(body.token)).toBe(id);
    expect(sim.accepts(oldToken)).toBe(false);
  });

  it('lets an admin token and an api token reset as well', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner();
    const admin = sim.addAccessToken({ scopes: ['read_api'], admin: true });
    const apiScope = sim.addAccessToken({ scopes: ['api'] });

    expect((await api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken(admin))).status).toBe(201);
    expect((await api.post(`/runners/${id}/reset_authentication_token`, undefined, asAccessToken(apiScope))).status).toBe(201);
    expect(sim.runner(id)?.tokenResets).toBe(2);
  });
});

describe('POST /runners/verify', () => {
  it('answers 200 to a glrt- token sent without a system_id, and files the contact under a <legacy> manager', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();

    const response = await api.post('/runners/verify', { token });

    expect(response.status).toBe(200);
    expect(((await response.json()) as { id: number }).id).toBe(id);
    expect(sim.runner(id)?.managers.map((m) => [m.systemId, m.ipAddress, m.contactedAt.toISOString()])).toEqual([['<legacy>', '127.0.0.1', START]]);
    expect(sim.runner(id)?.contactedAt?.toISOString()).toBe(START);
  });

  it('makes a silent host look freshly contacted when its system_id is sent by someone else', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();
    await api.post('/jobs/request', { token, system_id: 's_host1' });
    clock.advance(3 * HOUR);

    await api.post('/runners/verify', { token, system_id: 's_host1' });

    expect(sim.runner(id)?.managers.map((m) => [m.systemId, m.contactedAt.toISOString()])).toEqual([['s_host1', '2026-03-01T13:00:00.000Z']]);
  });

  it('answers 200 with the same token and creates the runner manager it names', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now, tokenLifetimeSeconds: 86_400 });
    const { id, token } = sim.addRunner();

    const response = await api.post('/runners/verify', { token, system_id: 's_0123456789ab' });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id, token, token_expires_at: '2026-03-02T10:00:00.000Z' });
    const managers = sim.runner(id)?.managers ?? [];
    expect(managers.map((manager) => [manager.systemId, manager.contactedAt.toISOString()])).toEqual([['s_0123456789ab', START]]);
  });

  it('updates the existing manager record instead of adding a second one', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();
    await api.post('/runners/verify', { token, system_id: 's_host1' });
    clock.advance(5 * MINUTE);

    await api.post('/runners/verify', { token, system_id: 's_host1' });

    const managers = sim.runner(id)?.managers ?? [];
    expect(managers).toHaveLength(1);
    expect(managers[0]?.contactedAt.toISOString()).toBe('2026-03-01T10:05:00.000Z');
    expect(managers[0]?.createdAt.toISOString()).toBe(START);
  });

  it('answers 403 to an unknown or expired token', async () => {
    const { sim, api } = await started({ tokenLifetimeSeconds: 7200 });
    const { id, token } = sim.addRunner();
    sim.expireToken(id);

    expect((await api.post('/runners/verify', { token: 'glrt-unknownunknownunknown1', system_id: 's_x' })).status).toBe(403);
    expect((await api.post('/runners/verify', { token, system_id: 's_x' })).status).toBe(403);
    expect(sim.runner(id)?.managers).toEqual([]);
  });

  it('verifies a legacy token without a system_id', async () => {
    const { sim, api } = await started();
    const { id, token } = sim.addRunner({ legacyToken: true });

    const response = await api.post('/runners/verify', { token });

    expect(response.status).toBe(200);
    expect(((await response.json()) as { id: number }).id).toBe(id);
  });
});

describe('GET /runners/:id/managers', () => {
  it('lists every manager with its system_id, contact time, status, version and ip address', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();
    const reader = sim.addAccessToken({ scopes: ['read_api'] });
    await api.post('/jobs/request', { token, system_id: 's_old', info: { version: '17.5.0', revision: 'abc', platform: 'linux', architecture: 'amd64' } });
    clock.advance(3 * HOUR);
    await api.post('/runners/verify', { token, system_id: 's_new' });

    const response = await api.get(`/runners/${id}/managers`, asAccessToken(reader));

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([
      {
        id: expect.any(Number),
        system_id: 's_old',
        version: '17.5.0',
        revision: 'abc',
        platform: 'linux',
        architecture: 'amd64',
        created_at: START,
        contacted_at: START,
        ip_address: '127.0.0.1',
        status: 'offline',
      },
      {
        id: expect.any(Number),
        system_id: 's_new',
        version: null,
        revision: null,
        platform: null,
        architecture: null,
        created_at: '2026-03-01T13:00:00.000Z',
        contacted_at: '2026-03-01T13:00:00.000Z',
        ip_address: '127.0.0.1',
        status: 'online',
      },
    ]);
  });

  it('answers 401 without an access token and 404 for an unknown runner', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner();
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    expect((await api.get(`/runners/${id}/managers`)).status).toBe(401);
    expect((await api.get('/runners/404/managers', asAccessToken(reader))).status).toBe(404);
  });
});

describe('POST /jobs/request', () => {
  it('answers 204 and moves the manager\'s contacted_at to now', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();
    await api.post('/jobs/request', { token, system_id: 's_host1' });
    clock.advance(90 * 1000);

    const response = await api.postForm('/jobs/request', { token, system_id: 's_host1' });

    expect(response.status).toBe(204);
    const runner = sim.runner(id);
    expect(runner?.managers.map((manager) => manager.contactedAt.toISOString())).toEqual(['2026-03-01T10:01:30.000Z']);
    expect(runner?.contactedAt?.toISOString()).toBe('2026-03-01T10:01:30.000Z');
  });

  it('answers 403 to a token that was reset', async () => {
    const { sim, api } = await started();
    const { token } = sim.addRunner();
    await api.post('/runners/reset_authentication_token', { token });

    const response = await api.post('/jobs/request', { token, system_id: 's_host1' });

    expect(response.status).toBe(403);
  });
});

describe('GET /runners/:id', () => {
  it('describes the runner as GitLab does, with its status and token expiry', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now, tokenLifetimeSeconds: 86_400 });
    const { id, token } = sim.addRunner({
      description: 'build fleet',
      runnerType: 'group_type',
      groupId: 7,
      tagList: ['docker', 'linux'],
      runUntagged: false,
      locked: true,
      accessLevel: 'ref_protected',
      maximumTimeout: 3600,
    });
    await api.post('/jobs/request', { token, system_id: 's_host1', info: { version: '17.6.0' } });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    const response = await api.get(`/runners/${id}`, asAccessToken(reader));

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      id,
      description: 'build fleet',
      ip_address: '127.0.0.1',
      active: true,
      paused: false,
      is_shared: false,
      runner_type: 'group_type',
      online: true,
      status: 'online',
      contacted_at: START,
      created_at: START,
      tag_list: ['docker', 'linux'],
      run_untagged: false,
      locked: true,
      maximum_timeout: 3600,
      access_level: 'ref_protected',
      version: '17.6.0',
      projects: [],
      groups: [expect.objectContaining({ id: 7 })],
    });
    expect(sim.runner(id)?.tokenExpiresAt?.toISOString()).toBe('2026-03-02T10:00:00.000Z');
  });

  it('carries no token_expires_at, as GitLab\'s RunnerDetails entity has none', async () => {
    const { sim, api } = await started({ tokenLifetimeSeconds: 86_400 });
    const { id } = sim.addRunner();
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    const body = (await (await api.get(`/runners/${id}`, asAccessToken(reader))).json()) as Record<string, unknown>;

    expect(body.id).toBe(id);
    expect('token_expires_at' in body).toBe(false);
  });

  it('reports never_contacted, offline after two hours and stale after seven days', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();
    const reader = sim.addAccessToken({ scopes: ['read_api'] });
    const status = async (): Promise<unknown> => ((await (await api.get(`/runners/${id}`, asAccessToken(reader))).json()) as { status: unknown }).status;

    expect(await status()).toBe('never_contacted');
    await api.post('/jobs/request', { token, system_id: 's_host1' });
    clock.advance(2 * HOUR + 1000);
    expect(await status()).toBe('offline');
    clock.advance(7 * DAY);
    expect(await status()).toBe('stale');
  });
});

describe('GET /runners/all and GET /runners', () => {
  it('pages through 45 runners in three pages with GitLab\'s headers and Link', async () => {
    const { sim, api } = await started();
    for (let index = 0; index < 45; index++) sim.addRunner({ description: `runner ${index + 1}` });
    const admin = sim.addAccessToken({ scopes: ['read_api'], admin: true });
    const base = `${sim.url}/api/v4/runners/all`;

    const pages = [];
    for (const page of [1, 2, 3]) pages.push(await api.get(`/runners/all?page=${page}`, asAccessToken(admin)));

    const headers = pages.map((response) => ({
      page: response.headers.get('x-page'),
      perPage: response.headers.get('x-per-page'),
      total: response.headers.get('x-total'),
      totalPages: response.headers.get('x-total-pages'),
      next: response.headers.get('x-next-page'),
      prev: response.headers.get('x-prev-page'),
    }));
    expect(headers).toEqual([
      { page: '1', perPage: '20', total: '45', totalPages: '3', next: '2', prev: '' },
      { page: '2', perPage: '20', total: '45', totalPages: '3', next: '3', prev: '1' },
      { page: '3', perPage: '20', total: '45', totalPages: '3', next: '', prev: '2' },
    ]);
    expect(pages[1]?.headers.get('link')).toBe(
      `<${base}?page=1&per_page=20>; rel="prev", <${base}?page=3&per_page=20>; rel="next", ` +
        `<${base}?page=1&per_page=20>; rel="first", <${base}?page=3&per_page=20>; rel="last"`,
    );
    expect(pages[0]?.headers.get('link')).not.toContain('rel="prev"');
    expect(pages[2]?.headers.get('link')).not.toContain('rel="next"');
    const bodies = (await Promise.all(pages.map((response) => response.json()))) as Array<Array<{ id: number }>>;
    expect(bodies.map((body) => body.length)).toEqual([20, 20, 5]);
    expect(new Set(bodies.flat().map((runner) => runner.id)).size).toBe(45);
    expect(bodies[0]?.[0]).toEqual({
      id: 45,
      description: 'runner 45',
      ip_address: null,
      active: true,
      paused: false,
      is_shared: true,
      runner_type: 'instance_type',
      name: null,
      online: false,
      status: 'never_contacted',
    });
  });

  it('caps per_page at 100 and keeps other query parameters in Link', async () => {
    const { sim, api } = await started();
    for (let index = 0; index < 150; index++) sim.addRunner({ tagList: ['linux'] });
    const admin = sim.addAccessToken({ scopes: ['api'], admin: true });

    const response = await api.get('/runners/all?per_page=500&tag_list=linux', asAccessToken(admin));

    expect(response.headers.get('x-per-page')).toBe('100');
    expect(((await response.json()) as unknown[]).length).toBe(100);
    expect(response.headers.get('link')).toContain('tag_list=linux&page=2&per_page=100>; rel="next"');
  });

  it('filters by type, paused and tag_list', async () => {
    const { sim, api } = await started();
    const group = sim.addRunner({ runnerType: 'group_type', groupId: 1, tagList: ['docker', 'linux'] });
    const paused = sim.addRunner({ paused: true, tagList: ['docker'] });
    sim.addRunner({ tagList: ['windows'] });
    const reader = sim.addAccessToken({ scopes: ['read_api'] });
    const ids = async (query: string): Promise<number[]> =>
      ((await (await api.get(`/runners?${query}`, asAccessToken(reader))).json()) as Array<{ id: number }>).map((runner) => runner.id);

    expect(await ids('type=group_type')).toEqual([group.id]);
    expect(await ids('paused=true')).toEqual([paused.id]);
    expect(await ids('tag_list=docker')).toEqual([paused.id, group.id]);
    expect(await ids('tag_list=docker,linux')).toEqual([group.id]);
  });

  it('keeps /runners/all for admins (403 otherwise) while /runners takes any reading token', async () => {
    const { sim, api } = await started();
    sim.addRunner();
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    expect((await api.get('/runners/all', asAccessToken(reader))).status).toBe(403);
    expect((await api.get('/runners', asAccessToken(reader))).status).toBe(200);
    expect((await api.get('/runners')).status).toBe(401);
  });
});

describe('POST /user/runners', () => {
  it('answers 400 when a group runner has no group_id or the runner_type is missing', async () => {
    const { sim, api } = await started();
    const creator = sim.addAccessToken({ scopes: ['create_runner'] });

    const noGroup = await api.post('/user/runners', { runner_type: 'group_type' }, asAccessToken(creator));
    const noType = await api.post('/user/runners', { description: 'x' }, asAccessToken(creator));
    const noProject = await api.post('/user/runners', { runner_type: 'project_type' }, asAccessToken(creator));

    expect(noGroup.status).toBe(400);
    expect(await noGroup.json()).toEqual({ error: 'group_id is missing' });
    expect(noType.status).toBe(400);
    expect(noProject.status).toBe(400);
  });

  it('creates a runner with 201 {id, token, token_expires_at} and the settings it was given', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now, tokenLifetimeSeconds: 7200 });
    sim.addRunner();
    const creator = sim.addAccessToken({ scopes: ['create_runner'] });

    const response = await api.postForm(
      '/user/runners',
      { runner_type: 'group_type', group_id: '12', description: 'new fleet', tag_list: 'a, b', paused: 'true', maximum_timeout: '3600' },
      asAccessToken(creator),
    );

    expect(response.status).toBe(201);
    const body = (await response.json()) as { id: number; token: string; token_expires_at: string };
    expect(body).toEqual({ id: 2, token: expect.stringMatching(GLRT), token_expires_at: '2026-03-01T12:00:00.000Z' });
    expect(sim.runner(body.id)).toMatchObject({ runnerType: 'group_type', groupId: 12, description: 'new fleet', tagList: ['a', 'b'], paused: true, maximumTimeout: 3600 });
    expect(sim.accepts(body.token)).toBe(true);
  });

  it('lets only an administrator create an instance runner', async () => {
    const { sim, api } = await started();
    const owner = sim.addAccessToken({ scopes: ['create_runner'] });
    const admin = sim.addAccessToken({ scopes: ['create_runner'], admin: true });

    const refused = await api.post('/user/runners', { runner_type: 'instance_type' }, asAccessToken(owner));

    expect(refused.status).toBe(403);
    expect(sim.runnerCount).toBe(0);
    expect((await api.post('/user/runners', { runner_type: 'instance_type' }, asAccessToken(admin))).status).toBe(201);
  });

  it('answers 403 to a token without create_runner', async () => {
    const { sim, api } = await started();
    const reader = sim.addAccessToken({ scopes: ['read_api', 'manage_runner'] });

    const response = await api.post('/user/runners', { runner_type: 'instance_type' }, asAccessToken(reader));

    expect(response.status).toBe(403);
  });
});

describe('DELETE /runners/:id and DELETE /runners', () => {
  it('removes a runner by id with 204, after which it is 404 and its token dead', async () => {
    const { sim, api } = await started();
    const { id, token } = sim.addRunner();
    const manager = sim.addAccessToken({ scopes: ['manage_runner'] });

    const response = await api.delete(`/runners/${id}`, undefined, asAccessToken(manager));

    expect(response.status).toBe(204);
    expect(sim.runner(id)).toBeUndefined();
    expect(sim.accepts(token)).toBe(false);
    expect((await api.delete(`/runners/${id}`, undefined, asAccessToken(manager))).status).toBe(404);
  });

  it('answers 403 to a read-only token deleting by id', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner();
    const reader = sim.addAccessToken({ scopes: ['read_api'] });

    expect((await api.delete(`/runners/${id}`, undefined, asAccessToken(reader))).status).toBe(403);
    expect(sim.runner(id)).toBeDefined();
  });

  it('answers 403 "Runner associated with more than one project" to a non-admin deleting a project runner of two projects', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner({ runnerType: 'project_type', projectIds: [11, 12] });
    const maintainer = sim.addAccessToken({ scopes: ['manage_runner'] });
    const admin = sim.addAccessToken({ scopes: ['api'], admin: true });

    const refused = await api.delete(`/runners/${id}`, undefined, asAccessToken(maintainer));

    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ message: '403 Forbidden - Runner associated with more than one project' });
    expect(sim.runner(id)).toBeDefined();
    expect((await api.delete(`/runners/${id}`, undefined, asAccessToken(admin))).status).toBe(204);
  });

  it('lets a non-admin delete a project runner of one project', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner({ runnerType: 'project_type', projectIds: [11], locked: true });
    const maintainer = sim.addAccessToken({ scopes: ['manage_runner'] });

    expect((await api.delete(`/runners/${id}`, undefined, asAccessToken(maintainer))).status).toBe(204);
  });

  it('unregisters a runner with its own token (204) and refuses an unknown one (403)', async () => {
    const { sim, api } = await started();
    const { id, token } = sim.addRunner();

    expect((await api.delete('/runners', { token: 'glrt-nobodynobodynobody123' })).status).toBe(403);
    expect((await api.delete('/runners', { token })).status).toBe(204);
    expect(sim.runner(id)).toBeUndefined();
  });
});

describe('POST /projects/:id/runners', () => {
  it('answers 403 "Runner is locked" to a non-admin enabling a locked project runner, and lets an admin', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner({ runnerType: 'project_type', projectIds: [11], locked: true });
    const maintainer = sim.addAccessToken({ scopes: ['manage_runner'] });
    const admin = sim.addAccessToken({ scopes: ['api'], admin: true });

    const refused = await api.post('/projects/12/runners', { runner_id: id }, asAccessToken(maintainer));

    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ message: '403 Forbidden - Runner is locked' });
    expect(sim.runner(id)?.projectIds).toEqual([11]);
    expect((await api.post('/projects/12/runners', { runner_id: id }, asAccessToken(admin))).status).toBe(201);
    expect(sim.runner(id)?.projectIds).toEqual([11, 12]);
  });

  it('lets a non-admin enable an unlocked project runner', async () => {
    const { sim, api } = await started();
    const { id } = sim.addRunner({ runnerType: 'project_type', projectIds: [11], locked: false });
    const maintainer = sim.addAccessToken({ scopes: ['manage_runner'] });

    expect((await api.post('/projects/12/runners', { runner_id: id }, asAccessToken(maintainer))).status).toBe(201);
  });
});

describe('GET /user', () => {
  it('says is_admin only for an administrator, as GitLab presents UserWithAdmin only to admins', async () => {
    const { sim, api } = await started();
    const admin = sim.addAccessToken({ scopes: ['read_api'], admin: true });
    const maintainer = sim.addAccessToken({ scopes: ['manage_runner'] });

    expect(await (await api.get('/user', asAccessToken(admin))).json()).toMatchObject({ is_admin: true });
    expect('is_admin' in ((await (await api.get('/user', asAccessToken(maintainer))).json()) as object)).toBe(false);
    expect((await api.get('/user')).status).toBe(401);
  });
});

describe('POST /runners (legacy registration)', () => {
  it('answers 410 "runner registration disallowed" by default', async () => {
    const { api } = await started({ registrationToken: 'GR1348941secret' });

    const response = await api.post('/runners', { token: 'GR1348941secret', description: 'old' });

    expect(response.status).toBe(410);
    expect(await response.json()).toEqual({ message: '410 Gone - runner registration disallowed' });
  });

  it('registers a runner with a legacy-shaped token when enabled, and refuses a wrong registration token', async () => {
    const { sim, api } = await started({ legacyRegistrationEnabled: true, registrationToken: 'GR1348941secret' });

    const wrong = await api.post('/runners', { token: 'GR1348941wrong' });
    const right = await api.postForm('/runners', { token: 'GR1348941secret', description: 'old host', tag_list: 'shell' });

    expect(wrong.status).toBe(403);
    expect(right.status).toBe(201);
    const body = (await right.json()) as { id: number; token: string; token_expires_at: null };
    expect(body).toEqual({ id: 1, token: expect.stringMatching(/^[A-Za-z0-9_-]{20}$/), token_expires_at: null });
    expect(sim.runner(1)).toMatchObject({ description: 'old host', tagList: ['shell'], legacyToken: true });
    expect(sim.accepts(body.token)).toBe(true);
  });
});

describe('GET /version', () => {
  it('answers the configured version to any valid access token, 401 otherwise', async () => {
    const { sim, api } = await started({ version: '16.11.2' });
    const creator = sim.addAccessToken({ scopes: ['create_runner'] });

    const ok = await api.get('/version', asAccessToken(creator));

    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ version: '16.11.2', revision: expect.any(String) });
    expect((await api.get('/version')).status).toBe(401);
  });
});

describe('token expiry on the simulated clock', () => {
  it('accepts a token until the clock passes its token_expires_at, then answers 403', async () => {
    const clock = new TestClock({ start: START });
    const { sim, api } = await started({ now: clock.now, tokenLifetimeSeconds: 7200 });
    const { id, token } = sim.addRunner();

    clock.advance(2 * HOUR - 1000);
    expect((await api.post('/runners/verify', { token, system_id: 's_a' })).status).toBe(200);
    clock.advance(1000);
    expect((await api.post('/runners/verify', { token, system_id: 's_a' })).status).toBe(403);
    expect((await api.post('/runners/reset_authentication_token', { token })).status).toBe(403);
    expect(sim.runnerIdForToken(token)).toBeUndefined();
    expect(sim.runner(id)?.tokenExpiresAt?.toISOString()).toBe('2026-03-01T12:00:00.000Z');
  });

  it('takes an explicit expiry and obtained-at from addRunner', async () => {
    const clock = new TestClock({ start: START });
    const { sim } = await started({ now: clock.now, tokenLifetimeSeconds: 7200 });
    const { id } = sim.addRunner({ tokenExpiresAt: null, tokenObtainedAt: new Date('2025-01-01T00:00:00Z') });

    clock.advance(365 * DAY);

    expect(sim.runner(id)).toMatchObject({ tokenExpiresAt: null, tokenObtainedAt: new Date('2025-01-01T00:00:00Z') });
    expect(sim.accepts(sim.runner(id)?.token ?? '')).toBe(true);
  });

  it('revokes a token the way a lost reset does: the runner holds a token nobody was told', async () => {
    const { sim } = await started();
    const { id, token } = sim.addRunner();

    sim.revokeToken(id);

    expect(sim.accepts(token)).toBe(false);
    expect(sim.runner(id)?.token).not.toBe(token);
  });

  it('expires a token one second before now', async () => {
    const clock = new TestClock({ start: START });
    const { sim } = await started({ now: clock.now });
    const { id, token } = sim.addRunner();

    sim.expireToken(id);

    expect(sim.runner(id)?.tokenExpiresAt?.toISOString()).toBe('2026-03-01T09:59:59.000Z');
    expect(sim.accepts(token)).toBe(false);
  });
});
