import { afterEach, describe, expect, it } from 'vitest';
import { RotationError, RotationInProgressError } from '../../src/core/errors.ts';
import { rotateNow } from '../../src/core/rotate-now.ts';
import { runRotationStep } from '../../src/core/rotation-steps.ts';
import { ROTATION_STEPS } from '../../src/core/types.ts';
import { checkHosts } from '../../src/simulator/simulated-fleet.ts';
import { startHarness, type Harness } from '../support/rotation-harness.ts';
import { failingPuts } from '../support/failing-store.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const RESETS = /reset_authentication_token/;
const BUDGET_MS = 60_000;

let harness: Harness | undefined;
afterEach(async () => {
  if (harness) {
    expectNoTokens(captured(harness.events), await harness.knownTokens());
    await harness.close();
  }
  harness = undefined;
});

const resetCount = (h: Harness) => Object.entries(h.simulator.stats.byRoute).filter(([route]) => RESETS.test(route)).reduce((n, [, c]) => n + c, 0);
const deadline = () => new Date(Date.now() + BUDGET_MS);

async function expectEveryHostAccepted(h: Harness): Promise<void> {
  const current = await h.tokenAt({ stage: 'AWSCURRENT' });
  const checks = await checkHosts(h.fleet.hosts, h.fleet.url);
  for (const check of checks) {
    expect(check.token, `${check.host.name} holds AWSCURRENT`).toBe(current);
    expect(check.accepted, `${check.host.name} is accepted by GitLab`).toBe(true);
    expect(check.selfRotationDisabled).toBe(true);
  }
}

describe('a rotation through the four steps', () => {
  it('leaves AWSCURRENT and every host holding the one token GitLab accepts', async () => {
    harness = await startHarness();
    const before = await harness.tokenAt({ stage: 'AWSCURRENT' });
    const result = await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);
    const after = await harness.tokenAt({ stage: 'AWSCURRENT' });
    expect(after).not.toBe(before);
    expect(harness.simulator.accepts(after as string)).toBe(true);
    expect(harness.simulator.accepts(before as string)).toBe(false);
    expect(await harness.tokenAt({ stage: 'AWSPREVIOUS' })).toBe(before);
    expect(result.record?.hosts.map((h) => h.status)).toEqual(['updated', 'updated', 'updated']);
    expect(result.record?.hosts.every((h) => /^s_[0-9a-f]{12}$/.test(h.systemId ?? ''))).toBe(true);
    await expectEveryHostAccepted(harness);
    expect(harness.events).toContainEqual(expect.objectContaining({ kind: 'token-verified', verified: true }));
    expect(await harness.engine.ledger.lastRotation(harness.runner.secretId)).toEqual(result.record);
  });

  it('mints one token when every step runs twice', async () => {
    harness = await startHarness();
    const { secretId } = harness.runner;
    const { versionId } = await harness.engine.store.beginRotation(secretId, 'version-twice');
    for (const step of ROTATION_STEPS) {
      await runRotationStep(harness.deps, { step, secretId, versionId, deadline: deadline() });
      const again = await runRotationStep(harness.deps, { step, secretId, versionId, deadline: deadline() });
      if (step === 'createSecret') expect(again.skipped).toContain('already holds a token');
      if (step === 'finishSecret') expect(again.skipped).toContain('already AWSCURRENT');
      if (step === 'setSecret') expect(again.hosts?.map((h) => h.status)).toEqual(['already-current', 'already-current', 'already-current']);
    }
    expect(resetCount(harness)).toBe(1);
    expect(await harness.tokenAt({ stage: 'AWSCURRENT' })).toBe(await harness.tokenAt({ versionId }));
    await expectEveryHostAccepted(harness);
  });

  it('tests a version that holds no value without touching anything', async () => {
    harness = await startHarness();
    const { secretId } = harness.runner;
    const { versionId } = await harness.engine.store.beginRotation(secretId, 'version-empty');
    const outcome = await runRotationStep(harness.deps, { step: 'testSecret', secretId, versionId, deadline: deadline() });
    expect(outcome.skipped).toContain('holds no token');
    expect(harness.simulator.stats.requests).toBe(harness.fleet.hosts.length);
  });
});

describe('when GitLab rejects the current token', () => {
  it('recovers by id with the admin token', async () => {
    harness = await startHarness({ adminToken: true });
    harness.simulator.revokeToken(harness.runner.runnerId);
    await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);
    expect(harness.events).toContainEqual(expect.objectContaining({ kind: 'token-reset', via: 'admin-token' }));
    await expectEveryHostAccepted(harness);
  });

  it('fails naming the runner and the manual fix when no admin token is configured, and stores nothing', async () => {
    harness = await startHarness();
    harness.simulator.expireToken(harness.runner.runnerId);
    const before = await harness.tokenAt({ stage: 'AWSCURRENT' });
    const error = await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RotationError);
    expect((error as RotationError).message).toContain(`runner ${harness.runner.runnerId}`);
    expect((error as RotationError).fix).toContain(`/runners/${harness.runner.runnerId}/reset_authentication_token`);
    expect(await harness.tokenAt({ stage: 'AWSCURRENT' })).toBe(before);
    expect(await harness.tokenAt({ stage: 'AWSPENDING' })).toBeUndefined();
    expectNoTokens(captured(error), await harness.knownTokens());
  });

  it('recovers when GitLab applied a reset but its reply was lost', async () => {
    harness = await startHarness({ adminToken: true });
    harness.simulator.faults.dropNextReset();
    await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);
    expect(harness.events).toContainEqual(expect.objectContaining({ kind: 'token-reset', via: 'admin-token' }));
    await expectEveryHostAccepted(harness);
  });
});


describe('storing the new token', () => {
  it('retries the store with back-off until it lands', async () => {
    harness = await startHarness({ wrapStore: failingPuts(3) });
    await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);
    expect(harness.events).toContainEqual(expect.objectContaining({ kind: 'token-stored', attempts: 4 }));
    expect(harness.clock.sleptMs).toEqual([100, 200, 400]);
    await expectEveryHostAccepted(harness);
  });

  it('says loudly, without the token, when the store never lands; the next attempt recovers by id', async () => {
    harness = await startHarness({ adminToken: true, wrapStore: failingPuts(1_000) });
    const { secretId } = harness.runner;
    const { versionId } = await harness.engine.store.beginRotation(secretId, 'version-lost');
    const error = await runRotationStep(harness.deps, { step: 'createSecret', secretId, versionId, deadline: new Date(Date.now() + 2_000) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RotationError);
    expect((error as Error).message).toContain('the old token is dead');
    expectNoTokens(captured(error), await harness.knownTokens());

    const healed = { ...harness.deps, secrets: harness.engine.store };
    for (const step of ROTATION_STEPS) await runRotationStep(healed, { step, secretId, versionId, deadline: deadline() });
    expect(harness.events).toContainEqual(expect.objectContaining({ kind: 'token-reset', via: 'admin-token' }));
    await expectEveryHostAccepted(harness);
  });

  it('says store-failed at once, without retrying, when the version already holds another token', async () => {
    harness = await startHarness();
    const h = harness;
    const store = h.engine.store;
    let puts = 0;
    const conflicting = {
      ...h.deps,
      secrets: {
        describe: (id: string) => store.describe(id),
        getValue: (id: string, ref: Parameters<typeof store.getValue>[1]) => store.getValue(id, ref),
        promote: (id: string, to: string, from: string | null) => store.promote(id, to, from),
        putPendingValue: async (id: string) => {
          puts += 1;
          throw new RotationInProgressError(`version of ${id} already holds a different value (injected)`, { secretId: id, step: 'createSecret' });
        },
      },
    };
    const { versionId } = await store.beginRotation(h.runner.secretId, 'version-conflict');

    const error = await runRotationStep(conflicting, { step: 'createSecret', secretId: h.runner.secretId, versionId, deadline: deadline() }).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'RotationError', code: 'store-failed', step: 'createSecret' });
    expect((error as Error).cause).toBeInstanceOf(RotationInProgressError);
    expect(puts).toBe(1);
    expect(h.clock.sleptMs).toEqual([]);
  });
});

describe('testSecret', () => {
  it('fails with pending-token-rejected, and promotes nothing, when someone reset the token after createSecret', async () => {
    harness = await startHarness();
    const h = harness;
    const { secretId } = h.runner;
    const { versionId } = await h.engine.store.beginRotation(secretId, 'version-reset-behind');
    for (const step of ['createSecret', 'setSecret'] as const) await runRotationStep(h.deps, { step, secretId, versionId, deadline: deadline() });
    const current = await h.tokenAt({ stage: 'AWSCURRENT' });
    h.simulator.revokeToken(h.runner.runnerId);

    const error = await runRotationStep(h.deps, { step: 'testSecret', secretId, versionId, deadline: deadline() }).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'RotationError', code: 'pending-token-rejected', step: 'testSecret' });
    expect((error as RotationError).fix).toContain('Cancel the rotation');
    expect(await h.tokenAt({ stage: 'AWSCURRENT' })).toBe(current);
    expect((await h.engine.store.describe(secretId)).versions.find((v) => v.versionId === versionId)?.stages).toEqual(['AWSPENDING']);
  });
});

describe('hosts', () => {
  it('records a host that misses the token, still promotes, and names the host', async () => {
    harness = await startHarness();
    const broken = harness.fleet.hosts[1];
    await import('node:fs/promises').then((fs) => fs.appendFile(broken?.configPath as string, '\n[[runners]\nname = "half a table"\n'));
    const result = await rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS);
    expect(result.record?.hosts.map((h) => h.status)).toEqual(['updated', 'failed', 'updated']);
    expect(result.record?.hosts[1]?.detail).toContain('malformed TOML');
    expect(harness.simulator.accepts((await harness.tokenAt({ stage: 'AWSCURRENT' })) as string)).toBe(true);
    expect(harness.events).toContainEqual(expect.objectContaining({ kind: 'warning', message: expect.stringContaining(broken?.name as string) }));
  });

  it('never lets two rotations of one runner interleave', async () => {
    harness = await startHarness();
    const results = await Promise.allSettled([
      rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS),
      rotateNow(harness.deps, harness.runner.secretId, BUDGET_MS),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(RotationInProgressError);
    expect(resetCount(harness)).toBe(1);
    await expectEveryHostAccepted(harness);
  });
});
