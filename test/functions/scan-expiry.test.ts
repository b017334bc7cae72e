import { afterEach, describe, expect, it } from 'vitest';
import { createHandler as createRotationHandler } from '../../functions/rotate-secret.ts';
import { createHandler } from '../../functions/scan-expiry.ts';
import { runnerTags, RUNNER_TAG } from '../../src/config/runner-tags.ts';
import { hostHoldsVersion } from '../../src/core/types.ts';
import { FLEET_METRICS } from '../../src/engines/fleet-metrics.ts';
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

interface EmfLine {
  _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
  [key: string]: unknown;
}

const emf = (h: AwsHarness) =>
  h.logLines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as EmfLine);

/** Every metric of every EMF line, with the dimensions it is published under. */
const metricsOf = (h: AwsHarness) =>
  emf(h).flatMap((line) =>
    line._aws.CloudWatchMetrics.flatMap((directive) => directive.Metrics.map((m) => ({ name: m.Name, dimensions: directive.Dimensions.flat(), value: line[m.Name] }))),
  );

const logRecords = (h: AwsHarness) =>
  h.logLines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.startsWith('{') && !l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the expiry scan', () => {
  it('starts a rotation for a runner that is due, and logs its days to expiry in its scan line', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const results = await createHandler(() => harness!.scanEngine, harness.telemetry)(scheduleEvent, harness.context);
    await Promise.all(harness.secretsManager.rotations);
    expect(results.map((r) => [r.runner, r.rotationStarted])).toEqual([[RUNNER, true]]);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).every((c) => c.accepted)).toBe(true);
    const line = logRecords(harness).find((r) => r.message === 'runner scanned');
    expect(line).toMatchObject({ runner: RUNNER, due: true, rotationStarted: true });
    expect(line?.daysLeft).toBeGreaterThanOrEqual(2.9);
    expect(line?.daysLeft).toBeLessThan(3.1);
  });

  it('emits the fleet\'s metrics once per scan, and no metric with a per-runner dimension', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    await createHandler(() => harness!.scanEngine, harness.telemetry)(scheduleEvent, harness.context);
    await Promise.all(harness.secretsManager.rotations);

    const metrics = metricsOf(harness);
    const scanMetrics = [FLEET_METRICS.runnersScanned, FLEET_METRICS.runnersDue, FLEET_METRICS.runnersExpiringSoon, FLEET_METRICS.minDaysToExpiry, FLEET_METRICS.scanFailures];
    for (const name of scanMetrics) expect(metrics.filter((m) => m.name === name), name).toHaveLength(1);
    const value = (name: string) => metrics.find((m) => m.name === name)?.value;
    expect([value('RunnersScanned'), value('RunnersDue'), value('RunnersExpiringSoon'), value('ScanFailures')]).toEqual([1, 1, 1, 0]);
    expect(value('MinDaysToExpiry')).toBeGreaterThanOrEqual(2.9);
    expect(value('MinDaysToExpiry')).toBeLessThan(3.1);
    // The hook's metrics came through the same lines: nothing anywhere is published per runner.
    expect(metrics.map((m) => m.name)).toContain('HostsUpdated');
    expect(metrics.map((m) => m.name)).not.toContain('DaysToExpiry');
    for (const metric of metrics) expect(metric.dimensions, metric.name).toEqual(['service']);
  });

  it('fails the scan of a runner whose secret\'s tags are broken, naming the tag, and still scans the others', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    // A second managed secret, its policy tag edited by hand into something that is no policy.
    const broken = { ...harness.runner, name: 'broken', secretId: 'gitlab-runner-rotator/broken' };
    harness.secretsManager.createSecret(broken.secretId, { tags: { ...runnerTags(broken), [RUNNER_TAG.policy]: 'half/7' } });

    const results = await createHandler(() => harness!.scanEngine, harness.telemetry)(scheduleEvent, harness.context);

    expect(results.map((r) => r.runner)).toEqual([RUNNER]);
    const failed = logRecords(harness).find((r) => r.message === 'scan of runner failed');
    expect(failed).toMatchObject({ level: 'ERROR', runner: 'broken', secretName: 'gitlab-runner-rotator/broken', error: { name: 'InvalidInputError' } });
    expect(String((failed?.error as { message?: string }).message)).toContain(`secret gitlab-runner-rotator/broken: tag ${RUNNER_TAG.policy}`);
    expect(logRecords(harness).find((r) => r.message === 'runner scanned')).toMatchObject({ runner: RUNNER });
    const value = (name: string) => metricsOf(harness!).find((m) => m.name === name)?.value;
    expect([value('RunnersScanned'), value('ScanFailures'), value('RunnersDue')]).toEqual([2, 1, 0]);
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
