import { afterEach, describe, expect, it } from 'vitest';
import { createHandler as createRotationHandler } from '../../functions/rotate-secret.ts';
import { createHandler } from '../../functions/scan-expiry.ts';
import { hostHoldsVersion } from '../../src/core/types.ts';
import { checkHosts } from '../../src/simulator/simulated-fleet.ts';
import { RUNNER, startAwsHarness, type AwsHarness } from '../support/aws-harness.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const scheduleEvent = { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };
let harness: AwsHarness | undefined;

afterEach(async () => {
  if (harness) {
    const lines = harness.logLines.join('');
    await harness.close();
    expectNoTokens(captured(lines), harness.knownTokens());
  }
  harness = undefined;
});

/** Secrets Manager runs the hook after RotateSecret; the scan only starts it. */
function wireRotationHook(h: AwsHarness): void {
  const rotate = createRotationHandler(() => h.engine, h.telemetry);
  h.secretsManager.rotationHook = (event) => rotate(event, h.context);
}

const emf = (h: AwsHarness) =>
  h.logLines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the expiry scan', () => {
  it('starts a rotation for a runner that is due and emits its days to expiry', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const results = await createHandler(() => harness!.scanEngine, harness.telemetry)(scheduleEvent, harness.context);
    await Promise.all(harness.secretsManager.rotations);
    expect(results.map((r) => [r.runner, r.rotationStarted])).toEqual([[RUNNER, true]]);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).every((c) => c.accepted)).toBe(true);
    const days = emf(harness).find((m) => 'DaysToExpiry' in m);
    expect(days).toMatchObject({ runner: RUNNER });
    expect(days?.DaysToExpiry).toBeGreaterThanOrEqual(2.9);
    expect(days?.DaysToExpiry).toBeLessThan(3.1);
  });

  it('leaves a runner that is not due alone', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    const results = await createHandler(() => harness!.scanEngine, harness.telemetry)(scheduleEvent, harness.context);
    expect(results[0]).toMatchObject({ rotationStarted: false, repushed: [] });
    expect(harness.ssm.commands).toHaveLength(0);
  });

  it('re-pushes AWSCURRENT to the host that missed the last rotation, without rotating again', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const offline = harness.instances[2]?.instanceId ?? '';
    harness.ssm.offline.add(offline);
    const scan = createHandler(() => harness!.scanEngine, harness.telemetry);
    await scan(scheduleEvent, harness.context);
    await Promise.all(harness.secretsManager.rotations);
    const before = await harness.ledger.lastRotation(harness.secretArn);
    expect(before?.hosts.find((h) => h.host === offline)?.status).toBe('undeliverable');

    harness.ssm.offline.delete(offline);
    const results = await scan(scheduleEvent, harness.context);
    expect(results[0]?.rotationStarted).toBe(false);
    expect(results[0]?.repushed.map((h) => [h.host, h.status])).toEqual([[offline, 'updated']]);
    expect(harness.ssm.commands.at(-1)?.instanceIds).toEqual([offline]);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).map((c) => c.accepted)).toEqual(harness.fleet.hosts.map(() => true));
    expect((await harness.ledger.lastRotation(harness.secretArn))?.hosts.map(hostHoldsVersion)).toEqual(harness.fleet.hosts.map(() => true));
  });

  it('alerts once about a host that stays offline across repeated scans, and not again once it is repaired', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const offline = harness.instances[0]?.instanceId ?? '';
    harness.ssm.offline.add(offline);
    const scan = createHandler(() => harness!.scanEngine, harness.telemetry);
    await scan(scheduleEvent, harness.context);
    await Promise.all(harness.secretsManager.rotations);
    for (let i = 0; i < 3; i += 1) await scan(scheduleEvent, harness.context);
    expect(harness.published.map((a) => a.kind)).toEqual(['host-missed']);
    expect(harness.published[0]?.hosts.map((h) => h.host)).toEqual([offline]);

    harness.ssm.offline.delete(offline);
    await scan(scheduleEvent, harness.context);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).every((c) => c.accepted)).toBe(true);
    expect(harness.published).toHaveLength(1);
  });

  it('alerts once that a due runner is stuck and near expiry, however often it is scanned', async () => {
    harness = await startAwsHarness({ expiresInDays: 2 });
    await harness.store.startRotation(harness.secretArn);
    const scan = createHandler(() => harness!.scanEngine, harness.telemetry);
    for (let i = 0; i < 3; i += 1) await scan(scheduleEvent, harness.context);
    expect(harness.published.map((a) => a.kind).sort()).toEqual(['near-expiry', 'rotation-stuck']);
  });

  it('warns, and does not call RotateSecret again, while a rotation is stuck in progress', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    await harness.store.startRotation(harness.secretArn);
    const results = await createHandler(() => harness!.scanEngine, harness.telemetry)(scheduleEvent, harness.context);
    expect(results[0]?.rotationStarted).toBe(false);
    expect(results[0]?.warnings.join()).toContain('rotation is still in progress');
    expect(harness.logLines.join('')).toContain('rotation is still in progress');
  });
});
