import { afterEach, describe, expect, it } from 'vitest';
import { createHandler as createRotationHandler } from '../../functions/rotate-secret.ts';
import { createHandler as createWorker } from '../../functions/scan-runners.ts';
import { runnerTags, RUNNER_TAG } from '../../src/config/runner-tags.ts';
import { hostHoldsVersion } from '../../src/core/types.ts';
import { FLEET_METRICS } from '../../src/engines/fleet-metrics.ts';
import { checkHosts } from '../../src/simulator/simulated-fleet.ts';
import { RUNNER, startAwsHarness, type AwsHarness, closeCheckingLogs } from '../support/aws-harness.ts';

let harness: AwsHarness | undefined;

afterEach(async () => {
  await closeCheckingLogs(harness);
  harness = undefined;
});

/** The next scheduled scan: the fleet file's scanEveryHours (6) later on the harness clock. */
async function nextScan(h: AwsHarness) {
  await h.clock.sleep(6 * 3_600_000);
  return h.scan();
}

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

/** The "runner scanned" lines of the workers, in order. */
const scanned = (h: AwsHarness) => logRecords(h).filter((r) => r.message === 'runner scanned');

describe('the expiry scan (dispatcher and workers over the scan queue)', () => {
  it('starts a rotation for a runner that is due, and logs its days to expiry in its scan line', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const { dispatched } = await harness.scan();
    await Promise.all(harness.secretsManager.rotations);
    expect(dispatched).toMatchObject({ runners: 1, messages: 1 });
    expect(scanned(harness).map((r) => [r.runner, r.rotationStarted])).toEqual([[RUNNER, true]]);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).every((c) => c.accepted)).toBe(true);
    const line = scanned(harness)[0];
    expect(line).toMatchObject({ runner: RUNNER, due: true, rotationStarted: true });
    expect(line?.daysLeft).toBeGreaterThanOrEqual(2.9);
    expect(line?.daysLeft).toBeLessThan(3.1);
  });

  it('emits the fleet\'s metrics once per batch, and no metric with a per-runner dimension', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    await harness.scan();
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

  it("emits DaysToExpiry per runner, under a Runner dimension, when the fleet file's metrics.perRunnerDaysToExpiry is on", async () => {
    harness = await startAwsHarness({ expiresInDays: 3, perRunnerDaysToExpiry: true });
    wireRotationHook(harness);
    await harness.scan();
    await Promise.all(harness.secretsManager.rotations);
    const perRunner = metricsOf(harness).filter((m) => m.name === FLEET_METRICS.daysToExpiry);
    expect(perRunner).toHaveLength(1);
    expect(perRunner[0]?.dimensions.sort()).toEqual(['Runner', 'service']);
    expect(perRunner[0]?.value).toBeGreaterThanOrEqual(2.9);
    expect(perRunner[0]?.value).toBeLessThan(3.1);
    const line = emf(harness).find((l) => FLEET_METRICS.daysToExpiry in l);
    expect(line?.Runner).toBe(RUNNER);
    // The fleet metrics keep their one dimension: the per-runner one is a line of its own.
    for (const metric of metricsOf(harness).filter((m) => m.name !== FLEET_METRICS.daysToExpiry)) expect(metric.dimensions, metric.name).toEqual(['service']);
  });

  it('fails the scan of a runner whose secret\'s tags are broken, naming the tag, and still scans the others', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    // A second managed secret, its policy tag edited by hand into something that is no policy.
    const broken = { ...harness.runner, name: 'broken', secretId: 'gitlab-runner-rotator/broken' };
    harness.secretsManager.createSecret(broken.secretId, { tags: { ...runnerTags(broken), [RUNNER_TAG.policy]: 'half/7' } });

    await harness.scan();

    expect(scanned(harness).map((r) => r.runner)).toEqual([RUNNER]);
    const failed = logRecords(harness).find((r) => r.message === 'scan of runner failed');
    expect(failed).toMatchObject({ level: 'ERROR', runner: 'broken', error: { name: 'InvalidInputError' } });
    expect(String(failed?.secretId)).toMatch(/:secret:gitlab-runner-rotator\/broken-/);
    expect(String((failed?.error as { message?: string }).message)).toContain(`secret gitlab-runner-rotator/broken: tag ${RUNNER_TAG.policy}`);
    expect(logRecords(harness).find((r) => r.message === 'runner scanned')).toMatchObject({ runner: RUNNER });
    const value = (name: string) => metricsOf(harness!).find((m) => m.name === name)?.value;
    expect([value('RunnersScanned'), value('ScanFailures'), value('RunnersDue')]).toEqual([2, 1, 0]);
  });

  it('leaves a runner that is not due alone', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    await harness.scan();
    expect(scanned(harness)[0]).toMatchObject({ rotationStarted: false, repushed: [] });
    expect(harness.ssm.commands).toHaveLength(0);
  });

  it('re-pushes AWSCURRENT to the host that missed the last rotation, without rotating again', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const offline = harness.instances[2]?.instanceId ?? '';
    harness.ssm.offline.add(offline);
    await harness.scan();
    await Promise.all(harness.secretsManager.rotations);
    const before = await harness.ledger.lastRotation(harness.secretArn);
    expect(before?.hosts.find((h) => h.host === offline)?.status).toBe('undeliverable');

    harness.ssm.offline.delete(offline);
    await nextScan(harness);
    const second = scanned(harness)[1] as { rotationStarted: boolean; repushed: Array<{ host: string; status: string }> };
    expect(second.rotationStarted).toBe(false);
    expect(second.repushed.map((h) => [h.host, h.status])).toEqual([[offline, 'updated']]);
    expect(harness.ssm.commands.at(-1)?.instanceIds).toEqual([offline]);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).map((c) => c.accepted)).toEqual(harness.fleet.hosts.map(() => true));
    expect((await harness.ledger.lastRotation(harness.secretArn))?.hosts.map(hostHoldsVersion)).toEqual(harness.fleet.hosts.map(() => true));
  });

  it('alerts once about a host that stays offline across repeated scans, and not again once it is repaired', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const offline = harness.instances[0]?.instanceId ?? '';
    harness.ssm.offline.add(offline);
    await harness.scan();
    await Promise.all(harness.secretsManager.rotations);
    for (let i = 0; i < 3; i += 1) await nextScan(harness);
    expect(harness.published.map((a) => a.kind)).toEqual(['host-missed']);
    expect(harness.published[0]?.hosts.map((h) => h.host)).toEqual([offline]);

    harness.ssm.offline.delete(offline);
    await nextScan(harness);
    expect((await checkHosts(harness.fleet.hosts, harness.fleet.url)).every((c) => c.accepted)).toBe(true);
    expect(harness.published).toHaveLength(1);
  });

  it('alerts once that a due runner is stuck and near expiry, however often it is scanned', async () => {
    harness = await startAwsHarness({ expiresInDays: 2 });
    await harness.store.startRotation(harness.secretArn);
    await harness.scan();
    for (let i = 0; i < 2; i += 1) await nextScan(harness);
    expect(harness.published.map((a) => a.kind).sort()).toEqual(['near-expiry', 'rotation-stuck']);
  });

  it('warns, and does not call RotateSecret again, while a rotation is stuck in progress', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    await harness.store.startRotation(harness.secretArn);
    await harness.scan();
    expect(scanned(harness)[0]?.rotationStarted).toBe(false);
    expect(rotateSecretCalls(harness)).toHaveLength(0);
    expect(harness.logLines.join('')).toContain('rotation is still in progress');
  });
});

describe('the scan fan-out', () => {
  /** `count` more managed runners' secrets beside the harness's own (not due: 25 days left). */
  const addRunners = (h: AwsHarness, count: number) => {
    for (let i = 0; i < count; i += 1) {
      const runner = { ...h.runner, name: `extra-${i}`, secretId: `gitlab-runner-rotator/extra-${i}` };
      h.secretsManager.createSecret(runner.secretId, { tags: runnerTags(runner) });
    }
  };

  it('queues the managed secrets in batches of scanBatchSize, by ARN only', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    addRunners(harness, 30);
    const { dispatched } = await harness.scan();
    // 31 runners, 25 a message (the fleet file's default scanBatchSize).
    expect(dispatched).toMatchObject({ runners: 31, messages: 2 });
    const bodies = harness.queue.sent.map((b) => JSON.parse(b) as { scanId: string; secretIds: string[] });
    expect(bodies.map((b) => b.secretIds.length)).toEqual([25, 6]);
    expect(new Set(bodies.map((b) => b.scanId))).toEqual(new Set([dispatched.scanId]));
    for (const id of bodies.flatMap((b) => b.secretIds)) expect(id).toMatch(/^arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator\//);
    expect(Object.keys(bodies[0]!).sort()).toEqual(['scanId', 'secretIds']);
  });

  it('queues no secret whose rotation is off (a runner that left the fleet keeps its secret), and names it', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    const gone = { ...harness.runner, name: 'gone', secretId: 'gitlab-runner-rotator/gone' };
    harness.secretsManager.createSecret(gone.secretId, { tags: runnerTags(gone), rotationEnabled: false });
    const { dispatched } = await harness.scan();
    expect(dispatched.runners).toBe(1);
    expect(harness.queue.sent.join()).not.toContain('gitlab-runner-rotator/gone');
    expect(logRecords(harness).find((r) => r.message === 'managed secrets with rotation off are not scanned')).toMatchObject({ secrets: ['gitlab-runner-rotator/gone'] });
  });

  it('scans a runner once when two scans overlap, and says the second left it alone', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    // The previous scan's message is still queued when the next scan queues the runner again.
    const first = await harness.scan();
    await Promise.all(harness.secretsManager.rotations);
    const again = await harness.scan();
    expect(first.dispatched.scanId).not.toBe(again.dispatched.scanId);
    expect(rotateSecretCalls(harness)).toHaveLength(1);
    expect(scanned(harness)).toHaveLength(1);
    const finished = logRecords(harness).filter((r) => r.message === 'scan batch finished');
    expect(finished.map((r) => [r.runnersScanned, r.skipped])).toEqual([
      [1, 0],
      [0, 1],
    ]);
  });

  it('scans a runner once when SQS delivers one message to two workers at once: one RotateSecret, no alert of a stuck rotation', async () => {
    harness = await startAwsHarness({ expiresInDays: 3 });
    wireRotationHook(harness);
    const worker = createWorker(() => harness!.workerEngine, harness.telemetry);
    const record = sqsRecord('m-dup', JSON.stringify({ scanId: 'scan-dup', secretIds: [harness.secretArn] }));
    // At-least-once delivery: the same message, in two invocations at the same time.
    const replies = await Promise.all([worker({ Records: [record] }, harness.context), worker({ Records: [record] }, harness.context)]);
    await Promise.all(harness.secretsManager.rotations);
    expect(replies).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(rotateSecretCalls(harness)).toHaveLength(1);
    expect(scanned(harness)).toHaveLength(1);
    expect(harness.published.map((a) => a.kind)).not.toContain('rotation-stuck');
    const finished = logRecords(harness).filter((r) => r.message === 'scan batch finished');
    expect(finished.map((r) => r.skipped).sort()).toEqual([0, 1]);
  });

  it('hands on the runners it cannot start before its deadline, in a message of the same scan, and scans nothing', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    const worker = createWorker(() => harness!.workerEngine, harness.telemetry);
    const body = JSON.stringify({ scanId: 'scan-1', secretIds: [harness.secretArn] });
    // 40 s left: less the 30 s margin, under the 15 s a runner is started with.
    const reply = await worker({ Records: [sqsRecord('m-1', body)] }, { ...harness.context, getRemainingTimeInMillis: () => 40_000 });
    expect(reply).toEqual({ batchItemFailures: [] });
    expect(scanned(harness)).toHaveLength(0);
    expect(harness.queue.sent.map((b) => JSON.parse(b))).toEqual([{ scanId: 'scan-1', secretIds: [harness.secretArn] }]);
  });

  it('drops a message the dispatcher would not write, without a retry, and names what is wrong', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    const worker = createWorker(() => harness!.workerEngine, harness.telemetry);
    const reply = await worker({ Records: [sqsRecord('m-2', JSON.stringify({ scanId: 'scan-1', secretIds: [] }))] }, harness.context);
    expect(reply).toEqual({ batchItemFailures: [] });
    const dropped = logRecords(harness).find((r) => r.message === 'scan message dropped: not one the scan dispatcher writes');
    expect(String((dropped?.error as { message?: string }).message)).toContain('scan message m-2: secretIds');
  });

  it('reports a batch it could not hand on as failed, so that SQS delivers it again rather than lose its runners', async () => {
    harness = await startAwsHarness({ expiresInDays: 25 });
    const worker = createWorker(() => harness!.workerEngine, harness.telemetry);
    harness.queue.refuseSends = true;
    const record = sqsRecord('m-3', JSON.stringify({ scanId: 'scan-1', secretIds: [harness.secretArn] }));
    // No time to scan, and the hand-on is refused: the runner must not be lost.
    const reply = await worker({ Records: [record] }, { ...harness.context, getRemainingTimeInMillis: () => 40_000 });
    expect(reply).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-3' }] });
    expect(logRecords(harness).find((r) => r.message === 'scan batch failed: SQS delivers it again')).toMatchObject({ messageId: 'm-3' });
  });
});

/** RotateSecret calls made through the engines (any role). */
function rotateSecretCalls(h: AwsHarness) {
  return h.recorder.calls.filter((c) => c.command === 'RotateSecretCommand');
}

function sqsRecord(messageId: string, body: string) {
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'AROAEXAMPLE', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:scan',
    awsRegion: 'eu-west-1',
  };
}
