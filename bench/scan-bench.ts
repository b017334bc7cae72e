/**
 * The fleet scan as AWS runs it, through the fan-out: the dispatcher Lambda (functions/scan-expiry.ts)
 * lists the secrets and queues batches on the scan queue; `workers` simulated Lambda containers, each with
 * its own AwsEngine (createAwsEngine with the shared GitLab budget: its own GitLab adapter, pacer and
 * connection pool, as separate Lambda containers have), take one message per invocation from the queue
 * (test/support/fake-sqs.ts, as the SQS event source with MaximumConcurrency = workers does) and run the
 * worker handler (functions/scan-runners.ts) with a 10-minute invocation. Hand-ons (a batch deferred by
 * its deadline or the shared budget) come back after their delay. AWS is replaced at the SDK boundary by
 * bench/lean-aws.ts (one table shared by every worker: the budget and the claims are real conditional
 * writes) and GitLab by the simulator in a process of its own (bench/simulator-process.ts).
 *
 * A rate-limited case may run on a faster clock (`rateLimit.speed`): the simulator's clock and the
 * scanner's (its pacing waits and the scan deadline) both run `speed` times faster than real time, from
 * the same anchors, so a scan that GitLab's limit stretches over five minutes takes thirty seconds. Only
 * time is scaled: the simulator's latency is real milliseconds (pass a tenth of the simulated latency).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import type { SQSBatchResponse } from 'aws-lambda';
import { createHandler as createDispatcher } from '../functions/scan-expiry.ts';
import { createHandler as createWorker } from '../functions/scan-runners.ts';
import { FakeSqsQueue } from '../test/support/fake-sqs.ts';
import { systemClock } from '../src/adapters/local/system-clock.ts';
import { fleetSettingsText, parseAwsFleetConfig } from '../src/config/aws-fleet-config.ts';
import { runnerTags } from '../src/config/runner-tags.ts';
import { readLambdaEnvironment } from '../src/config/lambda-environment.ts';
import { serializeSecretValue } from '../src/core/secret-value.ts';
import { createAwsEngine } from '../src/engines/aws-engine.ts';
import { LeanDynamoTable, LeanSecretsManager, leanSsmAndSns } from './lean-aws.ts';
import type { Clock } from '../src/core/ports.ts';
import { scaledNow, type SimulatorProcess, type TimeScale } from './simulator-process.ts';

const DAY_MS = 86_400_000;

export interface ScanCase {
  runners: number;
  /** Runners at once in one worker (fleet file scanConcurrency). */
  concurrency: number;
  /** Workers at once (fleet file scanWorkers; default 4). */
  workers?: number;
  /** The fleet file's gitlabRequestsPerMinute (the shared budget); unset: learned from the first 429. */
  budget?: number;
  /**
   * GitLab's limit for this run (requests per minute per token), where in its window the run starts
   * (simulated ms), and how much faster than real time both clocks run (default 1: real time).
   */
  rateLimit?: { requestsPerMinute: number; windowEndsInMs: number; speed?: number };
  /** Share of runners due for rotation (they get RotateSecret, still one GitLab call each). */
  dueShare?: number;
}

export interface ScanMeasurement {
  runners: number;
  concurrency: number;
  workers: number;
  budget: number | undefined;
  /** Worker invocations, and the messages that handed runners on to a later one. */
  invocations: number;
  handOns: number;
  /** Runners claimed by another scan (none expected: one scan runs). */
  skipped: number;
  scanned: number;
  rotationsStarted: number;
  wallMs: number;
  /** Parsing the fleet file (the `define`d JSON) into the engine's config: paid at every cold start. */
  configParseMs: number;
  gitlabCalls: number;
  callsPerRunner: number;
  rateLimited: number;
  peakRequestsPerMinute: number;
  /** Runners whose scan could not read GitLab because every attempt got a 429 (GitLabRateLimitedError). */
  failedRateLimited: number;
  /** Runners whose scan failed otherwise: another GitLab failure, or no result at all. */
  failedOther: number;
  /** Time on the simulated clock (the wall time × speed; equal to wallMs at speed 1). */
  simulatedMs: number;
  speed: number;
  awsCalls: Record<string, number>;
  awsCallsPerRunner: number;
  /** Highest RSS and heap seen while scanning (sampled every 10 ms), and the RSS before it started. */
  peakRssMb: number;
  rssBeforeMb: number;
  peakHeapMb: number;
  logLines: number;
  logBytes: number;
}

export async function runScan(sim: SimulatorProcess, spec: ScanCase): Promise<ScanMeasurement> {
  const now = Date.now();
  const dueCount = Math.round(spec.runners * (spec.dueShare ?? 0));
  const healthy = await sim.addRunners(spec.runners - dueCount, new Date(now - 10 * DAY_MS), new Date(now + 20 * DAY_MS));
  const due = dueCount > 0 ? await sim.addRunners(dueCount, new Date(now - 20 * DAY_MS), new Date(now + 10 * DAY_MS)) : [];
  const adminToken = await sim.addAccessToken();

  const secretsManager = new LeanSecretsManager();
  const table = new LeanDynamoTable();
  const { ssm, sns, calls: otherCalls } = leanSsmAndSns();
  const adminSecret = 'gitlab-runner-rotator-admin/bench';
  secretsManager.add(adminSecret, adminToken);
  const runners = [...healthy.map((r) => ({ ...r, due: false })), ...due.map((r) => ({ ...r, due: true }))];
  const workers = spec.workers ?? 4;
  const fleet = {
    scanConcurrency: spec.concurrency,
    scanWorkers: workers,
    ...(spec.budget === undefined ? {} : { gitlabRequestsPerMinute: spec.budget }),
    adminTokenSecrets: { [sim.url]: adminSecret },
    runners: runners.map((r, i) => ({ name: `runner-${i}`, gitlabUrl: sim.url, runnerId: r.id, hosts: { tag: { key: 'gitlab-runner', value: `runner-${i}` } } })),
  };
  const config = parseAwsFleetConfig(JSON.stringify(fleet), 'bench fleet');
  runners.forEach((r, i) => {
    const obtained = new Date(now - (r.due ? 20 : 10) * DAY_MS).toISOString();
    const expires = new Date(now + (r.due ? 10 : 20) * DAY_MS).toISOString();
    const value = serializeSecretValue({ runnerId: r.id, gitlabUrl: sim.url, token: r.token, tokenExpiresAt: expires, tokenObtainedAt: obtained });
    // The runner's record is its secret's tags, as the stack writes them.
    secretsManager.add(`gitlab-runner-rotator/runner-${i}`, value, runnerTags(config.runners[i]!));
  });

  const parseStart = performance.now();
  const env = readLambdaEnvironment({
    ROTATOR_SETTINGS_JSON: fleetSettingsText(config),
    LEDGER_TABLE_NAME: 'ledger',
    HOST_DOCUMENT_NAME: 'HostUpdate',
    ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:alerts',
    SCAN_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/scan-queue',
  });
  const configParseMs = performance.now() - parseStart;
  // The scanner's clock: real time, or the simulator's scaled time once the case sets one.
  let scale: TimeScale | undefined;
  const clock: Clock = {
    now: () => (scale ? new Date(scaledNow(scale)) : systemClock.now()),
    sleep: (ms) => systemClock.sleep(scale ? ms / scale.speed : ms),
  };
  const queue = new FakeSqsQueue(() => clock.now().getTime(), { url: env.scanQueueUrl });
  const clients = { secretsManager: secretsManager.client, ssm, sns, dynamodb: table.client, sqs: queue.client };
  const telemetry = () => ({
    logger: new Logger({ serviceName: 'gitlab-runner-rotator', logLevel: 'INFO' }),
    metrics: new Metrics({ namespace: 'GitLabRunnerRotator', serviceName: 'gitlab-runner-rotator' }),
    tracer: new Tracer({ enabled: false }),
  });
  const dispatcher = createDispatcher(() => createAwsEngine(env, clients, clock), telemetry());
  // One Lambda container per worker: its own engine (GitLab adapter, pacer, budget share) for its whole life.
  const containers = Array.from({ length: workers }, () => {
    const engine = createAwsEngine(env, clients, clock, { sharedGitLabBudget: true });
    return createWorker(() => engine, telemetry());
  });
  const invocationMs = 600_000;
  const contextAt = (name: string) => {
    const invokedAt = clock.now().getTime();
    return { functionName: name, awsRequestId: randomUUID(), getRemainingTimeInMillis: () => invokedAt + invocationMs - clock.now().getTime() } as unknown as Context;
  };
  let invocations = 0;
  /** The event source: each container takes the next visible message while there are any; idle, it waits for a delayed one. */
  const drain = () =>
    Promise.all(
      containers.map(async (worker) => {
        for (;;) {
          const delivered = await queue.deliver(async (event) => {
            invocations += 1;
            return (await worker(event, contextAt('scan-runners'))) as SQSBatchResponse;
          });
          if (delivered) continue;
          const next = queue.nextVisibleAtMs();
          if (next === undefined) return;
          // Nothing visible: another container's message in flight, or a delayed hand-on. Poll, as the event source does.
          await clock.sleep(Math.min(1_000, Math.max(50, next - clock.now().getTime())));
        }
      }),
    );

  const speed = spec.rateLimit?.speed ?? 1;
  if (spec.rateLimit && speed === 1) await sim.setRateLimit(spec.rateLimit.requestsPerMinute, spec.rateLimit.windowEndsInMs);
  if (spec.rateLimit && speed !== 1) {
    // The simulated clock starts `windowEndsInMs` before a minute boundary near real time.
    const realAnchorMs = Date.now();
    scale = { realAnchorMs, simAnchorMs: (Math.floor(realAnchorMs / 60_000) + 2) * 60_000 - spec.rateLimit.windowEndsInMs, speed };
    await sim.setTimeScale(scale);
    await sim.setRateLimit(spec.rateLimit.requestsPerMinute);
  }
  await sim.resetStats();
  globalThis.gc?.();

  // The workers log a line per runner, as in Lambda: count them and read the outcomes, do not print.
  let logLines = 0;
  let logBytes = 0;
  const outcome = { scanned: 0, rotationsStarted: 0, failedRateLimited: 0, failedOther: 0, skipped: 0, handOns: 0 };
  const originalWrite = process.stdout.write.bind(process.stdout);
  const originalErrorWrite = process.stderr.write.bind(process.stderr);
  const capture = ((chunk: string | Uint8Array) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    logBytes += Buffer.byteLength(text);
    logLines += text.split('\n').length - 1;
    for (const line of text.split('\n')) {
      if (line.includes('"message":"runner scanned"')) {
        outcome.scanned += 1;
        if (line.includes('"rotationStarted":true')) outcome.rotationsStarted += 1;
      } else if (line.includes('"message":"scan of runner failed"')) outcome.failedOther += 1;
      else if (line.includes('"level":"WARN"') && line.includes('answered 429')) outcome.failedRateLimited += 1;
      else if (line.includes('"message":"scan batch finished"')) {
        const record = JSON.parse(line) as { skipped: number; deferred: number };
        outcome.skipped += record.skipped;
        if (record.deferred > 0) outcome.handOns += 1;
      }
    }
    return true;
  }) as typeof process.stdout.write;
  // Powertools writes INFO to stdout and WARN/ERROR to stderr (console.warn/error in Lambda).
  process.stdout.write = capture;
  process.stderr.write = capture;

  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  let peakHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 10);
  const start = performance.now();
  const simulatedStart = clock.now().getTime();
  try {
    await dispatcher({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, contextAt('scan-expiry'));
    await drain();
  } finally {
    clearInterval(sampler);
    process.stdout.write = originalWrite;
    process.stderr.write = originalErrorWrite;
  }
  const wallMs = performance.now() - start;
  const simulatedMs = clock.now().getTime() - simulatedStart;
  const stats = await sim.stats();
  if (spec.rateLimit) await sim.setRateLimit(null);
  if (scale) await sim.setTimeScale(null);
  // Runners whose managers could not be read because GitLab kept answering 429 are scanned (their expiry
  // comes from the secret) but count as rate-limited failures: the scan could not see their hosts.
  const failedRateLimited = outcome.failedRateLimited;

  const awsCalls = Object.fromEntries([...secretsManager.calls, ...table.calls, ...otherCalls].map(([k, v]) => [k.replace(/Command$/, ''), v]));
  const totalAws = Object.values(awsCalls).reduce((a, b) => a + b, 0);
  return {
    runners: spec.runners,
    concurrency: spec.concurrency,
    workers,
    budget: spec.budget,
    invocations,
    handOns: outcome.handOns,
    skipped: outcome.skipped,
    scanned: outcome.scanned - failedRateLimited,
    rotationsStarted: outcome.rotationsStarted,
    wallMs,
    configParseMs,
    gitlabCalls: stats.requests,
    callsPerRunner: stats.requests / spec.runners,
    rateLimited: stats.rateLimited,
    peakRequestsPerMinute: stats.peakRequestsPerMinute ?? 0,
    failedRateLimited,
    failedOther: outcome.failedOther + Math.max(0, spec.runners - outcome.scanned - outcome.failedOther),
    simulatedMs,
    speed,
    awsCalls,
    awsCallsPerRunner: totalAws / spec.runners,
    peakRssMb: peakRss / 2 ** 20,
    rssBeforeMb: rssBefore / 2 ** 20,
    peakHeapMb: peakHeap / 2 ** 20,
    logLines,
    logBytes,
  };
}
