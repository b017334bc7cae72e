import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { rotateNow } from '../../src/core/rotate-now.ts';
import { runRotationStep } from '../../src/core/rotation-steps.ts';
import { repushCurrent, scanRunner, type ScanDeps } from '../../src/core/scan-runner.ts';
import { hostHoldsVersion } from '../../src/core/types.ts';
import { checkHosts } from '../../src/simulator/simulated-fleet.ts';
import { startHarness, type Harness } from '../support/rotation-harness.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const SIX_HOURS = 6 * 3_600_000;
let harness: Harness | undefined;
afterEach(async () => {
  if (harness) {
    expectNoTokens(captured(harness.events), await harness.knownTokens());
    await harness.close();
  }
  harness = undefined;
});

const scanDeps = (h: Harness): ScanDeps => ({
  ...h.deps,
  startRotation: async (_runner, secretId) => {
    await rotateNow(h.deps, secretId, 60_000);
  },
});

describe('scanRunner converging every host', () => {
  it('puts AWSCURRENT back on a host restored from its backup, without a rotation and without an admin token', async () => {
    harness = await startHarness();
    const h = harness;
    await rotateNow(h.deps, h.runner.secretId, 60_000);
    const current = await h.tokenAt({ stage: 'AWSCURRENT' });
    const restored = h.fleet.hosts[1]!;
    // The host goes back to the file it had before the rotation: the old, dead token.
    await writeFile(restored.configPath, await readFile(`${restored.configPath}.bak`));
    const resetsBefore = h.simulator.runner(h.runner.runnerId)?.tokenResets;

    const result = await scanRunner({ ...scanDeps(h), convergeEveryHost: true }, h.runner, h.runner.secretId, SIX_HOURS);

    expect(result.rotationStarted).toBe(false);
    expect(result.repushed.map((r) => [r.host, r.status]).sort()).toEqual(
      h.fleet.hosts.map((host) => [host.name, host === restored ? 'updated' : 'already-current']).sort(),
    );
    expect(h.simulator.runner(h.runner.runnerId)?.tokenResets).toBe(resetsBefore);
    const checks = await checkHosts(h.fleet.hosts, h.fleet.url);
    expect(checks.map((c) => c.token === current && c.accepted)).toEqual(h.fleet.hosts.map(() => true));
  });

  it('pushes nothing when a rotation opened after the scan read the secret: the hosts keep its new token', async () => {
    harness = await startHarness();
    const h = harness;
    // A rotation that Secrets Manager's schedule (or an operator) started meanwhile: reset, stored, pushed.
    const versionId = 'b9f1c0de-0000-4000-8000-000000000001';
    await h.deps.starter.beginRotation(h.runner.secretId, versionId);
    const deadline = new Date(h.clock.now().getTime() + 60_000);
    for (const step of ['createSecret', 'setSecret'] as const) await runRotationStep(h.deps, { step, secretId: h.runner.secretId, versionId, deadline });
    const pending = await h.tokenAt({ versionId });

    const results = await repushCurrent(h.deps, h.runner, h.runner.secretId, h.fleet.hosts.map((host) => host.name));

    expect(results).toEqual([]);
    const checks = await checkHosts(h.fleet.hosts, h.fleet.url);
    expect(checks.map((c) => c.token === pending && c.accepted)).toEqual(h.fleet.hosts.map(() => true));
  });

  it('leaves the hosts alone without convergence when the ledger says each took the current token', async () => {
    harness = await startHarness();
    const h = harness;
    await rotateNow(h.deps, h.runner.secretId, 60_000);
    const restored = h.fleet.hosts[1]!;
    await writeFile(restored.configPath, await readFile(`${restored.configPath}.bak`));

    const result = await scanRunner(scanDeps(h), h.runner, h.runner.secretId, SIX_HOURS);

    expect(result.repushed).toEqual([]);
  });
});

describe('scanRunner', () => {
  it('rotates a runner whose token is due', async () => {
    harness = await startHarness();
    const before = await harness.tokenAt({ stage: 'AWSCURRENT' });
    const result = await scanRunner(scanDeps(harness), harness.runner, harness.runner.secretId, SIX_HOURS);
    expect(result.rotationStarted).toBe(true);
    expect(await harness.tokenAt({ stage: 'AWSCURRENT' })).not.toBe(before);
  });

  it('repairs a host that missed the last rotation without rotating again', async () => {
    harness = await startHarness();
    const broken = harness.fleet.hosts[2];
    if (!broken) throw new Error('harness has three hosts');
    const original = await readFile(broken.configPath, 'utf8');
    await writeFile(broken.configPath, `${original}\n[[runners]\n`);
    await rotateNow(harness.deps, harness.runner.secretId, 60_000);
    const rotated = await harness.tokenAt({ stage: 'AWSCURRENT' });
    const missed = (await harness.engine.ledger.lastRotation(harness.runner.secretId))?.hosts.find((h) => h.host === broken.name);
    expect(missed?.status).toBe('failed');

    await writeFile(broken.configPath, original);
    const result = await scanRunner(scanDeps(harness), harness.runner, harness.runner.secretId, SIX_HOURS);
    expect(result.rotationStarted).toBe(false);
    expect(result.repushed.map((h) => [h.host, h.status])).toEqual([[broken.name, 'updated']]);
    expect(await harness.tokenAt({ stage: 'AWSCURRENT' })).toBe(rotated);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).map((c) => c.accepted)).toEqual(harness.fleet.hosts.map(() => true));
    expect((await harness.engine.ledger.lastRotation(harness.runner.secretId))?.hosts.map(hostHoldsVersion)).toEqual(harness.fleet.hosts.map(() => true));

    const again = await scanRunner(scanDeps(harness), harness.runner, harness.runner.secretId, SIX_HOURS);
    expect(again.repushed).toEqual([]);
  });

  it('re-pushes to a host whose manager went silent after the rotation (read with the admin token)', async () => {
    harness = await startHarness({ adminToken: true });
    await rotateNow(harness.deps, harness.runner.secretId, 60_000);
    harness.clock.sleptMs.length = 0;
    await harness.clock.sleep(20 * 60_000);
    const result = await scanRunner(scanDeps(harness), harness.runner, harness.runner.secretId, SIX_HOURS);
    // No host has polled GitLab since the rotation: all three are silent and get the token again.
    expect(result.repushed.map((h) => h.status)).toEqual(['already-current', 'already-current', 'already-current']);
  });
});
