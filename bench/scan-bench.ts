/**
 * The fleet scan as the scan-expiry Lambda runs it: `createHandler` of functions/scan-expiry.ts over a real
 * AwsEngine (createAwsEngine: SecretsManagerStore, DynamoDbLedger, alert ledger, SNS sink, the GitLab
 * adapter with its transport and pacing), with AWS replaced at the SDK boundary by bench/lean-aws.ts and
 * GitLab by the simulator in a process of its own (bench/simulator-process.ts). The handler rather than
 * scanRunner alone: the listing, p-limit, logging, metrics, alert de-duplication and the fleet config
 * parse are part of what a scan costs.
 */
import { performance } from 'node:perf_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { createHandler } from '../functions/scan-expiry.ts';
import { systemClock } from '../src/adapters/system-clock.ts';
import { MANAGED_SECRET_TAG_KEY } from '../src/config/aws-fleet-config.ts';
import { readLambdaEnvironment } from '../src/config/lambda-environment.ts';
import { serializeSecretValue } from '../src/core/secret-value.ts';
import { createAwsEngine } from '../src/engines/aws-engine.ts';
import { LeanDynamoTable, LeanSecretsManager, leanSsmAndSns } from './lean-aws.ts';
import type { SimulatorProcess } from './simulator-process.ts';

const DAY_MS = 86_400_000;

export interface ScanCase {
  runners: number;
  concurrency: number;
  /** GitLab's limit for this run (requests per minute per token), and where in its window the run starts. */
  rateLimit?: { requestsPerMinute: number; windowEndsInMs: number };
  /** Share of runners due for rotation (they get RotateSecret, still one GitLab call each). */
  dueShare?: number;
}

export interface ScanMeasurement {
  runners: number;
  concurrency: number;
  scanned: number;
  rotationsStarted: number;
  wallMs: number;
  /** Parsing the fleet file (the `define`d JSON) into the engine's config: paid at every cold start. */
  configParseMs: number;
  gitlabCalls: number;
  callsPerRunner: number;
  rateLimited: number;
  peakRequestsPerMinute: number;
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
  const fleet = {
    scanConcurrency: spec.concurrency,
    adminTokenSecrets: { [sim.url]: adminSecret },
    runners: runners.map((r, i) => ({ name: `runner-${i}`, gitlabUrl: sim.url, runnerId: r.id, hosts: { tag: { key: 'gitlab-runner', value: `runner-${i}` } } })),
  };
  runners.forEach((r, i) => {
    const obtained = new Date(now - (r.due ? 20 : 10) * DAY_MS).toISOString();
    const expires = new Date(now + (r.due ? 10 : 20) * DAY_MS).toISOString();
    const value = serializeSecretValue({ runnerId: r.id, gitlabUrl: sim.url, token: r.token, tokenExpiresAt: expires, tokenObtainedAt: obtained });
    secretsManager.add(`gitlab-runner-rotator/runner-${i}`, value, { [MANAGED_SECRET_TAG_KEY]: `runner-${i}` });
  });

  const parseStart = performance.now();
  const env = readLambdaEnvironment({
    ROTATOR_FLEET_JSON: JSON.stringify(fleet),
    LEDGER_TABLE_NAME: 'ledger',
    HOST_DOCUMENT_NAME: 'HostUpdate',
    ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:alerts',
  });
  const configParseMs = performance.now() - parseStart;
  const engine = createAwsEngine(env, { secretsManager: secretsManager.client, ssm, sns, dynamodb: table.client }, systemClock);
  const telemetry = {
    logger: new Logger({ serviceName: 'gitlab-runner-rotator', logLevel: 'INFO' }),
    metrics: new Metrics({ namespace: 'GitLabRunnerRotator', serviceName: 'gitlab-runner-rotator' }),
    tracer: new Tracer({ enabled: false }),
  };
  const context = { functionName: 'scan-expiry', awsRequestId: 'bench', getRemainingTimeInMillis: () => 600_000 } as unknown as Context;
  const handler = createHandler(() => engine, telemetry);

  if (spec.rateLimit) await sim.setRateLimit(spec.rateLimit.requestsPerMinute, spec.rateLimit.windowEndsInMs);
  await sim.resetStats();
  globalThis.gc?.();

  // The handler logs a line per runner and an EMF metric line per runner, as in Lambda: count, do not print.
  let logLines = 0;
  let logBytes = 0;
  const originalWrite = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    logBytes += Buffer.byteLength(text);
    logLines += text.split('\n').length - 1;
    return true;
  }) as typeof process.stdout.write;

  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  let peakHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 10);
  const start = performance.now();
  let results;
  try {
    results = await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, context);
  } finally {
    clearInterval(sampler);
    process.stdout.write = originalWrite;
  }
  const wallMs = performance.now() - start;
  const stats = await sim.stats();
  if (spec.rateLimit) await sim.setRateLimit(null);

  const awsCalls = Object.fromEntries([...secretsManager.calls, ...table.calls, ...otherCalls].map(([k, v]) => [k.replace(/Command$/, ''), v]));
  const totalAws = Object.values(awsCalls).reduce((a, b) => a + b, 0);
  return {
    runners: spec.runners,
    concurrency: spec.concurrency,
    scanned: results.length,
    rotationsStarted: results.filter((r) => r.rotationStarted).length,
    wallMs,
    configParseMs,
    gitlabCalls: stats.requests,
    callsPerRunner: stats.requests / spec.runners,
    rateLimited: stats.rateLimited,
    peakRequestsPerMinute: stats.peakRequestsPerMinute ?? 0,
    awsCalls,
    awsCallsPerRunner: totalAws / spec.runners,
    peakRssMb: peakRss / 2 ** 20,
    rssBeforeMb: rssBefore / 2 ** 20,
    peakHeapMb: peakHeap / 2 ** 20,
    logLines,
    logBytes,
  };
}
