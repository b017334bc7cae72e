import { chmod, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateLocal } from '../../src/cli/migrate-command.ts';
import { rotateRunners } from '../../src/cli/rotate-command.ts';
import { scanLocalFleet } from '../../src/cli/scan-command.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { RotationError } from '../../src/core/errors.ts';
import { outageWindow } from '../../src/core/outage-window.ts';
import { rotateNow } from '../../src/core/rotate-now.ts';
import { runRotationStep } from '../../src/core/rotation-steps.ts';
import { retireReplacedRunner } from '../../src/core/replace-steps.ts';
import { ROTATOR_SYSTEM_ID } from '../../src/core/rotator-identity.ts';
import { parseSecretValue, serializeSecretValue } from '../../src/core/secret-value.ts';
import { checkHosts, managedRunnerIds, pollForJobs } from '../../src/simulator/simulated-fleet.ts';
import { failingPuts } from '../support/failing-store.ts';
import { startHarness, type Harness } from '../support/rotation-harness.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const BUDGET_MS = 60_000;
const SIX_HOURS = 6 * 3_600_000;

const currentRunnerId = async (h: Harness): Promise<number> => (await h.current()).runnerId;

/** The ids of the managed runners' [[runners]] tables on each host. */
const tableIds = (h: Harness): Promise<number[][]> => Promise.all(h.fleet.hosts.map(managedRunnerIds));

/** Polls since `mark` in which a host could take no job (no runner of it accepted). */
function offlineSince(h: Harness, mark: number): number {
  return h.daemons!.offlineSince(mark).offline;
}

describe('the replace strategy', () => {
  it('creates a runner with the old settings, runs it on every host, then removes the old table and deletes the old runner, with no host ever without a working runner', async () => {
    harness = await startHarness({
      replace: {},
      runnerSettings: { tagList: ['docker', 'linux'], runUntagged: false, locked: true, accessLevel: 'ref_protected', maximumTimeout: 3600, maintenanceNote: 'platform team' },
    });
    const h = harness;
    const oldId = h.runner.runnerId;
    const pollsBefore = h.daemons!.mark();

    const result = await rotateNow(h.deps, h.runner.secretId, BUDGET_MS);

    const newId = await currentRunnerId(h);
    expect(newId).not.toBe(oldId);
    expect(h.simulator.runner(oldId)).toBeUndefined();
    const created = h.simulator.runner(newId)!;
    expect(created).toMatchObject({ description: 'runner-a', runnerType: 'instance_type', tagList: ['docker', 'linux'], runUntagged: false, locked: true, accessLevel: 'ref_protected', maximumTimeout: 3600, paused: false, maintenanceNote: 'platform team' });
    expect(created.managers.map((m) => m.systemId).sort()).toEqual(h.fleet.hosts.map((host) => host.systemId).sort());
    expect(await tableIds(h)).toEqual(h.fleet.hosts.map(() => [newId]));
    for (const check of await checkHosts(h.fleet.hosts, h.fleet.url, () => newId)) expect(check.accepted && check.selfRotationDisabled).toBe(true);
    expect(offlineSince(h, pollsBefore)).toBe(0);
    expect(h.simulator.stats.byRoute['POST /runners/reset_authentication_token']).toBeUndefined();
    expect(result.record).toMatchObject({ strategy: 'replace', replacedRunnerId: oldId, runnerId: newId });
    expect(outageWindow(result.record!)).toEqual({ ms: 0, complete: true, hostsMissed: 0 });
    expect(h.events.filter((e) => e.kind === 'host-confirmed')).toHaveLength(h.fleet.hosts.length);
    expectNoTokens(JSON.stringify(h.events), await h.knownTokens());
  });

  it('enables the replacement of a project runner on every project the old one served, with an administrator\'s token', async () => {
    harness = await startHarness({ replace: { admin: true }, runnerSettings: { runnerType: 'project_type', projectIds: [41, 42, 43], locked: true } });
    await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);

    const created = harness.simulator.runner(await currentRunnerId(harness))!;
    expect(created).toMatchObject({ runnerType: 'project_type', projectIds: [41, 42, 43] });
    expect(harness.simulator.stats.byRoute['POST /projects/:id/runners']).toBe(2);
    expect(harness.events.find((e) => e.kind === 'runner-created')).toMatchObject({ projects: [41, 42, 43] });
  });

  it('replaces right after a reset by token and retires the old runner in the same rotation: the reset left no manager record taken for a host', async () => {
    harness = await startHarness({ replace: { strategy: false } });
    const oldId = await currentRunnerId(harness);
    await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);
    // GitLab filed the reset under the rotator's own system_id: no <legacy> record, no host's record touched.
    const managers = harness.simulator.runner(oldId)!.managers.map((m) => m.systemId);
    expect(managers).toContain(ROTATOR_SYSTEM_ID);
    expect(managers).not.toContain('<legacy>');

    const output = recordingOutput();
    expect(await migrateLocal(harness.engine, harness.runner.name, { dryRun: false, force: true }, output, new Date())).toBe(0);

    expect(harness.simulator.runner(oldId)).toBeUndefined();
    expect(await currentRunnerId(harness)).not.toBe(oldId);
    expect(harness.events.filter((e) => e.kind === 'warning').map((e) => (e as { message: string }).message).join('\n')).not.toMatch(/unknown host|system_id gitlab-runner-token-rotator/);
  });

  it('refuses, before creating anything, to replace a project runner of several projects with a Maintainer\'s token, naming the permission', async () => {
    harness = await startHarness({ replace: { admin: false }, runnerSettings: { runnerType: 'project_type', projectIds: [41, 42], locked: true } });
    const runnersBefore = [...harness.simulator.runnerIds()];
    const tokenBefore = await harness.tokenAt({ stage: 'AWSCURRENT' });

    const error = await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'RotationError', code: 'replace-needs-access-token', step: 'createSecret' });
    expect((error as Error).message).toContain("needs an administrator's access token");
    expect((error as Error).message).toContain('Runner associated with more than one project');
    expect(harness.simulator.stats.byRoute['POST /user/runners'] ?? 0).toBe(0);
    expect([...harness.simulator.runnerIds()]).toEqual(runnersBefore);
    expect(await harness.tokenAt({ stage: 'AWSCURRENT' })).toBe(tokenBefore);
    expect(harness.simulator.accepts(tokenBefore!)).toBe(true);
  });

  it('replaces a locked project runner of one project with a Maintainer\'s token: created in its project, nothing to enable, the old one deleted', async () => {
    harness = await startHarness({ replace: { admin: false }, runnerSettings: { runnerType: 'project_type', projectIds: [41], locked: true } });
    const oldId = await currentRunnerId(harness);

    await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);

    const newId = await currentRunnerId(harness);
    expect(newId).not.toBe(oldId);
    expect(harness.simulator.runner(newId)).toMatchObject({ runnerType: 'project_type', projectIds: [41], locked: true });
    expect(harness.simulator.runner(oldId)).toBeUndefined();
  });

  it('keeps the old runner on every host and names the host that never runs the new one in an alert; the next rotation resumes and finishes with the same new runner', async () => {
    harness = await startHarness({ replace: { confirmWithinMs: 1_500 } });
    const h = harness;
    const oldId = h.runner.runnerId;
    const silent = h.fleet.hosts[1]!;
    h.daemons!.stop(silent.name);
    const pollsBefore = h.daemons!.mark();
    const output = recordingOutput();

    const [failed] = await rotateRunners(h.engine, [h.runner], output);

    expect(failed?.error).toBeInstanceOf(RotationError);
    expect(failed?.error).toMatchObject({ code: 'replacement-unconfirmed', step: 'testSecret' });
    expect(failed?.error?.message).toContain(silent.name);
    expect(await currentRunnerId(h)).toBe(oldId);
    expect(h.simulator.runner(oldId)).toBeDefined();
    const pendingId = parseSecretValue((await h.engine.store.getValue(h.runner.secretId, { stage: 'AWSPENDING' }))!, 'test').runnerId;
    expect(await tableIds(h)).toEqual(h.fleet.hosts.map(() => [oldId, pendingId]));
    for (const check of await checkHosts(h.fleet.hosts, h.fleet.url, () => oldId)) expect(check.accepted).toBe(true);
    expect(offlineSince(h, pollsBefore)).toBe(0);
    const alert = h.alertLines.join('\n');
    expect(alert).toContain('replacement-stalled');
    expect(alert).toContain(silent.name);
    expect(alert).toContain('did not contact GitLab as runner');

    h.daemons!.resume(silent.name);
    const [finished] = await rotateRunners(h.engine, [h.runner], output);

    expect(finished?.error).toBeUndefined();
    expect(finished?.result?.resumed).toBe(true);
    expect(await currentRunnerId(h)).toBe(pendingId);
    expect(h.simulator.runner(oldId)).toBeUndefined();
    expect(h.simulator.stats.byRoute['POST /user/runners']).toBe(1);
    expect(await tableIds(h)).toEqual(h.fleet.hosts.map(() => [pendingId]));
    expect(offlineSince(h, pollsBefore)).toBe(0);
    expectNoTokens([output.lines.join('\n'), h.alertLines.join('\n')].join('\n'), await h.knownTokens());
  });

  it('fails fast naming a host whose updater refused the new runner, and leaves that host on the old one', async () => {
    harness = await startHarness({ replace: {} });
    const h = harness;
    const oldId = h.runner.runnerId;
    const broken = h.fleet.hosts[2]!;
    await writeFile(broken.configPath, '[[runners]\nthis is not toml\n');
    await chmod(broken.configPath, 0o600);

    const error = await rotateNow(h.deps, h.runner.secretId, BUDGET_MS).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(RotationError);
    expect(error).toMatchObject({ code: 'replacement-unconfirmed' });
    expect((error as RotationError).hosts.map((host) => [host.host, host.status])).toEqual([[broken.name, 'failed']]);
    expect((error as RotationError).hosts[0]?.detail).toMatch(/exit 4/);
    expect(await currentRunnerId(h)).toBe(oldId);
    expect(h.simulator.runner(oldId)).toBeDefined();
    expect(h.events.some((e) => e.kind === 'host-confirmed')).toBe(false);
  });

  it('leaves the new runner current when deleting the old one fails, says how to finish, and a retried finishSecret deletes it', async () => {
    harness = await startHarness({ replace: {}, gitlabOptions: { maxAttempts: 1 } });
    const h = harness;
    const oldId = h.runner.runnerId;
    const { versionId } = await h.engine.store.beginRotation(h.runner.secretId, '0f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b');
    const deadline = new Date(Date.now() + BUDGET_MS);
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await runRotationStep(h.deps, { step, secretId: h.runner.secretId, versionId, deadline });
    h.simulator.faults.failNext(1, { status: 500, path: `/runners/${oldId}`, method: 'DELETE' });

    const error = await runRotationStep(h.deps, { step: 'finishSecret', secretId: h.runner.secretId, versionId, deadline }).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toMatchObject({ code: 'replaced-runner-not-deleted', step: 'finishSecret' });
    expect((error as RotationError).fix).toContain(`DELETE /runners/${oldId}`);
    const newId = await currentRunnerId(h);
    expect(newId).not.toBe(oldId);
    expect(await tableIds(h)).toEqual(h.fleet.hosts.map(() => [newId]));
    expect(h.simulator.runner(oldId)).toBeDefined();

    const retried = await runRotationStep(h.deps, { step: 'finishSecret', secretId: h.runner.secretId, versionId, deadline });

    expect(retried.skipped).toContain('already AWSCURRENT');
    expect(h.simulator.runner(oldId)).toBeUndefined();
    expect(h.events.filter((e) => e.kind === 'runner-deleted')).toEqual([{ kind: 'runner-deleted', secretId: h.runner.secretId, runnerId: oldId, alreadyGone: false }]);
  });

  it('deletes the runner it created when its token cannot be stored, so the old runner stays the only one', async () => {
    harness = await startHarness({ replace: {}, wrapStore: failingPuts(1_000, 'InternalServiceError: the secret store is unavailable (injected)') });
    const h = harness;
    const runnersBefore = h.simulator.runnerCount;
    const { versionId } = await h.engine.store.beginRotation(h.runner.secretId, '1f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b');

    const error = await runRotationStep(h.deps, { step: 'createSecret', secretId: h.runner.secretId, versionId, deadline: new Date(Date.now() + 400) }).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toMatchObject({ code: 'store-failed', step: 'createSecret' });
    expect((error as Error).message).toContain(`runner ${h.runner.runnerId} keeps working`);
    expect(h.simulator.stats.byRoute['POST /user/runners']).toBe(1);
    expect(h.simulator.runnerCount).toBe(runnersBefore);
    expect(h.simulator.accepts((await h.tokenAt({ stage: 'AWSCURRENT' }))!)).toBe(true);
  });

  it('after dying between the promotion and retiring the old runner, leaves every host working, and the next scan retires it', async () => {
    harness = await startHarness({ replace: {} });
    const h = harness;
    const oldId = h.runner.runnerId;
    const fleet = h.deps.fleet;
    const dying = { ...h.deps, fleet: { push: fleet.push.bind(fleet), remove: () => Promise.reject(new Error('the Lambda was killed (injected)')) } };

    await expect(rotateNow(dying, h.runner.secretId, BUDGET_MS)).rejects.toThrow('killed');

    const newId = await currentRunnerId(h);
    expect(newId).not.toBe(oldId);
    expect(await tableIds(h)).toEqual(h.fleet.hosts.map(() => [oldId, newId]));
    for (const check of await checkHosts(h.fleet.hosts, h.fleet.url, () => newId)) expect(check.accepted).toBe(true);
    expect(h.simulator.runner(oldId)).toBeDefined();
    expect((await h.engine.ledger.lastRotation(h.runner.secretId))?.replacedRunnerRetiredAt).toBeUndefined();

    await scanLocalFleet(h.engine, recordingOutput(), SIX_HOURS);

    expect(h.simulator.runner(oldId)).toBeUndefined();
    expect(await tableIds(h)).toEqual(h.fleet.hosts.map(() => [newId]));
    expect((await h.engine.ledger.lastRotation(h.runner.secretId))?.replacedRunnerRetiredAt).toBeDefined();
    const getsBefore = h.simulator.stats.byRoute['GET /runners/:id'] ?? 0;

    await scanLocalFleet(h.engine, recordingOutput(), SIX_HOURS);

    expect(h.simulator.stats.byRoute['GET /runners/:id'] ?? 0).toBe(getsBefore);
  });

  it('does not retire the old runner once AWSCURRENT no longer names the replacement (its token was adopted again)', async () => {
    harness = await startHarness({ replace: {} });
    const h = harness;
    const oldId = h.runner.runnerId;
    const oldValue = (await h.engine.store.getValue(h.runner.secretId, { stage: 'AWSCURRENT' }))!;
    const fleet = h.deps.fleet;
    const dying = { ...h.deps, fleet: { push: fleet.push.bind(fleet), remove: () => Promise.reject(new Error('the Lambda was killed (injected)')) } };
    await expect(rotateNow(dying, h.runner.secretId, BUDGET_MS)).rejects.toThrow('killed');
    // The operator adopts the old runner's token again (fresh, so the scan does not rotate it).
    const now = new Date();
    const readopted = serializeSecretValue({ ...parseSecretValue(oldValue, 'test'), tokenObtainedAt: now.toISOString(), tokenExpiresAt: new Date(now.getTime() + 30 * 86_400_000).toISOString() });
    await h.engine.store.adoptCurrent(h.runner.secretId, '2f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b', readopted);

    await scanLocalFleet(h.engine, recordingOutput(), SIX_HOURS);
    await retireReplacedRunner(h.deps, (await h.engine.ledger.lastRotation(h.runner.secretId))!, h.fleet.url);

    expect(h.simulator.runner(oldId)).toBeDefined();
    expect(h.simulator.accepts(parseSecretValue(oldValue, 'test').token)).toBe(true);
    expect(h.events.some((e) => e.kind === 'warning' && e.message.includes(`runner ${oldId} is not retired`))).toBe(true);
  });

  it('keeps the old runner when a host the rotation did not know still runs it, naming that host', async () => {
    harness = await startHarness({ replace: {} });
    const h = harness;
    const oldId = h.runner.runnerId;
    const oldToken = (await h.tokenAt({ stage: 'AWSCURRENT' }))!;
    // An instance that came up with the old token after the hosts were listed: it polls, GitLab records it.
    const stranger = setInterval(() => void pollForJobs(h.fleet.url, oldToken, 's_0000stranger0'), 20);
    let error: unknown;
    try {
      error = await rotateNow(h.deps, h.runner.secretId, BUDGET_MS).then(
        () => undefined,
        (e: unknown) => e,
      );
    } finally {
      clearInterval(stranger);
    }

    expect(error).toMatchObject({ code: 'replacement-unconfirmed', step: 'finishSecret' });
    expect((error as RotationError).hosts.map((host) => host.systemId)).toEqual(['s_0000stranger0']);
    expect(h.simulator.accepts(oldToken)).toBe(true);
    expect(await currentRunnerId(h)).not.toBe(oldId);
  });

  it('refuses a project runner whose projects the access token cannot see, before creating anything', async () => {
    harness = await startHarness({ replace: {}, runnerSettings: { runnerType: 'project_type', projectIds: [] } });
    const h = harness;
    const oldToken = await h.tokenAt({ stage: 'AWSCURRENT' });

    const error = await rotateNow(h.deps, h.runner.secretId, BUDGET_MS).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'RotationError', step: 'createSecret' });
    expect((error as Error).message).toContain('is a project runner but GitLab shows no project of it');
    expect(h.simulator.stats.byRoute['POST /user/runners']).toBeUndefined();
    expect(h.simulator.accepts(oldToken!)).toBe(true);
  });

  it('stops with the GitLab error, creating nothing, when the access token may not create runners', async () => {
    harness = await startHarness({ replace: {} });
    const h = harness;
    const readOnly = h.simulator.addAccessToken({ scopes: ['read_api'] });
    const oldToken = await h.tokenAt({ stage: 'AWSCURRENT' });

    const error = await rotateNow({ ...h.deps, adminToken: async () => readOnly }, h.runner.secretId, BUDGET_MS).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'GitLabForbiddenError', endpoint: 'POST /user/runners' });
    expect(h.simulator.runnerCount).toBe(2);
    expect(h.simulator.accepts(oldToken!)).toBe(true);
    expect(await h.engine.store.getValue(h.runner.secretId, { stage: 'AWSPENDING' })).toBeUndefined();
    expectNoTokens(captured(error), [...(await h.knownTokens()), readOnly]);
  });

  it('refuses to start without an access token that may create runners, and changes nothing', async () => {
    harness = await startHarness({ replace: {} });
    const h = harness;
    const oldToken = await h.tokenAt({ stage: 'AWSCURRENT' });

    const error = await rotateNow({ ...h.deps, adminToken: async () => undefined }, h.runner.secretId, BUDGET_MS).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toMatchObject({ code: 'replace-needs-access-token', step: 'createSecret' });
    expect(await h.tokenAt({ stage: 'AWSCURRENT' })).toBe(oldToken);
    expect(h.simulator.accepts(oldToken!)).toBe(true);
    expect(h.simulator.stats.byRoute['POST /user/runners']).toBeUndefined();
    expect(await h.engine.store.getValue(h.runner.secretId, { stage: 'AWSPENDING' })).toBeUndefined();
  });
});
