/**
 * `npm run bench` (`-- --quick` for a shorter run): what a fleet owner pays for, measured on this
 * machine and printed as a table; bench/results.json keeps every figure, the goals and pass/fail per goal.
 * Nothing here is a test: no figure fails the run, a missed goal is reported as missed.
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { runBundles, type BundleMeasurement } from './bundle-bench.ts';
import { runOutage } from './outage-bench.ts';
import { runScan } from './scan-bench.ts';
import { startSimulatorProcess } from './simulator-process.ts';
import { measureSynth } from './synth-bench.ts';
import { longLineToml, runnersForBytes, runUpdater, runUpdaterOn } from './updater-bench.ts';
import { DEFAULT_SCAN_CONCURRENCY } from '../src/config/aws-fleet-config.ts';

const quick = process.argv.includes('--quick');
/** `--scans-only`: the scans through the fan-out alone, printed, results.json left as it is. */
const scansOnly = process.argv.includes('--scans-only');
const sizes = quick
  ? { scan: 1_000, serial: 100, rateLimited: 4_500, windowEndsInMs: 8_000, rotations: 6, updaterRuns: 10, initRuns: 3 }
  : { scan: 10_000, serial: 200, rateLimited: 10_000, windowEndsInMs: 20_000, rotations: 20, updaterRuns: 30, initRuns: 7 };
const LATENCY_MS = 50;
/** GitLab.com's limit: 2,000 authenticated API requests a minute per user. */
const RATE_LIMIT = 2_000;
/**
 * The rate-limited scans run on a clock 10 times faster than real time, on both sides (simulator and
 * scanner), so minutes of GitLab's windows take seconds. The simulator's latency is real time: a tenth
 * of LATENCY_MS is the same 50 ms a call on the simulated clock.
 */
const SPEED = 10;

const log = (line: string) => process.stderr.write(`${line}\n`);
const started = Date.now();

log(`bench (${quick ? 'quick' : 'full'}): simulator at ${LATENCY_MS} ms a call, in its own process`);
const sim = await startSimulatorProcess({ latencyMs: LATENCY_MS, tokenLifetimeSeconds: 30 * 86_400 });
let scan, serial;
try {
  // A small scan first, so the measured one does not pay for loading and compiling modules.
  await runScan(sim, { runners: 100, concurrency: DEFAULT_SCAN_CONCURRENCY });
  log(`scan of ${sizes.scan} runners, 4 workers × concurrency ${DEFAULT_SCAN_CONCURRENCY} …`);
  scan = await runScan(sim, { runners: sizes.scan, concurrency: DEFAULT_SCAN_CONCURRENCY, workers: 4, dueShare: 0.01 });
  log(`scan of ${sizes.serial} runners, 2 workers × concurrency 1 …`);
  serial = await runScan(sim, { runners: sizes.serial, concurrency: 1, workers: 2 });
} finally {
  await sim.stop();
}

/**
 * A scan through the fan-out (8 workers: together they could send more than GitLab allows) under GitLab's limit, in a simulator process of its own (headers
 * are a constructor option); `budget`: the fleet file's gitlabRequestsPerMinute, else learned from a 429.
 */
async function rateLimitedScan(rateLimitHeadersOnEveryReply: boolean, budget?: number) {
  const which = rateLimitHeadersOnEveryReply ? 'RateLimit headers on every reply (instance flag)' : "RateLimit headers only with the 429 (GitLab's default)";
  log(`scan of ${sizes.rateLimited} runners by 8 workers under ${RATE_LIMIT} requests/min, ${which}, ${budget === undefined ? 'no budget set' : `budget ${budget}/min`}; clock ×${SPEED}, window ends ${sizes.windowEndsInMs / 1000} s after the start …`);
  const limitedSim = await startSimulatorProcess({ latencyMs: LATENCY_MS / SPEED, tokenLifetimeSeconds: 30 * 86_400, rateLimitHeadersOnEveryReply });
  try {
    const m = await runScan(limitedSim, {
      runners: sizes.rateLimited,
      concurrency: DEFAULT_SCAN_CONCURRENCY,
      workers: 8,
      ...(budget === undefined ? {} : { budget }),
      rateLimit: { requestsPerMinute: RATE_LIMIT, windowEndsInMs: sizes.windowEndsInMs, speed: SPEED },
    });
    log(
      `  runners ${m.runners}, requests ${m.gitlabCalls}, 429s seen ${m.rateLimited}, runners failed for rate limiting ${m.failedRateLimited} ` +
        `(otherwise ${m.failedOther}), ${(m.simulatedMs / 60_000).toFixed(2)} simulated min, ${(m.wallMs / 1000).toFixed(1)} s wall; ` +
        `${m.invocations} worker invocations, ${m.handOns} hand-ons; budget UpdateItem ${m.awsCalls.Update ?? 0}, GetItem ${m.awsCalls.Get ?? 0}; peak ${m.peakRequestsPerMinute} req/min`,
    );
    return m;
  } finally {
    await limitedSim.stop();
  }
}
const limited = await rateLimitedScan(false);
const limitedBudget = await rateLimitedScan(false, 1_800);
const limitedHeaders = await rateLimitedScan(true);
if (scansOnly) {
  log(`fan-out scan, ${scan.runners} runners, ${scan.workers} workers × ${scan.concurrency}: ${(scan.wallMs / 1000).toFixed(1)} s, ${scan.invocations} invocations, ${scan.failedOther} failed`);
  log(`fan-out scan, ${serial.runners} runners, ${serial.workers} workers × ${serial.concurrency}: ${(serial.wallMs / 1000).toFixed(1)} s`);
  process.exit(0);
}
log(`outage window: ${sizes.rotations} rotations of a runner on 10 hosts …`);
const outage = await runOutage(10, sizes.rotations);
log(`outage window, replace strategy: ${sizes.rotations} rotations of a runner on 10 hosts …`);
const replaced = await runOutage(10, sizes.rotations, 'replace');
log(`host updater on a config.toml of 200 runners, ${sizes.updaterRuns} runs …`);
const updater = await runUpdater(200, sizes.updaterRuns);
// The updater must be linear in the file's size: a config of about 1 MB, and one line of 400 KB.
const updaterBigRuns = quick ? 3 : 10;
const bigRunners = runnersForBytes(1_000_000);
log(`host updater on a config.toml of about 1 MB (${bigRunners} runners), ${updaterBigRuns} runs …`);
const updaterBig = await runUpdater(bigRunners, updaterBigRuns);
const longLine = longLineToml(400_000);
log(`host updater on a config.toml with one line of 400 KB, ${updaterBigRuns} runs …`);
const updaterLongLine = await runUpdaterOn(longLine.text, longLine.runners, updaterBigRuns);
log('Lambda bundles …');
const bundles = await runBundles(sizes.initRuns);

const serialPerRunner = serial.wallMs / serial.runners;
const speedUp = (serialPerRunner * scan.runners) / scan.wallMs;
const minutes = (ms: number) => `${(ms / 60_000).toFixed(2)} min`;

interface Goal {
  goal: string;
  target: string;
  measured: string;
  pass: boolean;
}
const maxBundle = Math.max(...bundles.map((b) => b.bytes));
const maxInit = Math.max(...bundles.map((b) => b.initP50Ms));
const scanSecondsAt10k = (scan.wallMs / 1000) * (10_000 / scan.runners);
log(`cdk synth of generated fleets (${quick ? '1,000' : '1,000 and 10,000'} runners, cdk-nag included) …`);
const synths = (quick ? [1_000] : [1_000, 10_000]).map((runners) => measureSynth(runners, true));

const goals: Goal[] = [
  { goal: 'scan wall time at 10,000 runners', target: '≤ 60 s', measured: `${(scan.wallMs / 1000).toFixed(1)} s at ${scan.runners}${scan.runners === 10_000 ? '' : ` (× ${10_000 / scan.runners} ≈ ${scanSecondsAt10k.toFixed(0)} s)`}`, pass: scanSecondsAt10k <= 60 },
  { goal: 'GitLab calls per runner', target: '≤ 1', measured: scan.callsPerRunner.toFixed(2), pass: scan.callsPerRunner <= 1 },
  {
    goal: `runners failed for rate limiting, ${limited.runners} runners at 2,000 req/min, headers only with the 429`,
    target: '0',
    measured: `${limited.failedRateLimited} (${limited.failedOther} otherwise; ${limited.rateLimited} × 429 seen)`,
    pass: limited.failedRateLimited === 0 && limited.failedOther === 0 && limited.scanned === limited.runners,
  },
  {
    goal: `same scan: time, against GitLab's own bound (${limited.runners} calls at ${RATE_LIMIT}/min)`,
    target: `≤ ${minutes(((limited.runners / RATE_LIMIT) * 60_000) * 1.5)}`,
    measured: `${minutes(limited.simulatedMs)} in ${limited.invocations} worker invocations (${limited.handOns} hand-ons)`,
    pass: limited.simulatedMs <= (limited.runners / RATE_LIMIT) * 60_000 * 1.5,
  },
  {
    goal: `same scan with gitlabRequestsPerMinute 1,800 shared by the workers`,
    target: '0 429s, 0 failed',
    measured: `${limitedBudget.rateLimited} 429s, ${limitedBudget.failedRateLimited + limitedBudget.failedOther} failed, ${minutes(limitedBudget.simulatedMs)}`,
    pass: limitedBudget.rateLimited === 0 && limitedBudget.failedRateLimited + limitedBudget.failedOther === 0 && limitedBudget.scanned === limitedBudget.runners,
  },
  {
    goal: '429s under 2,000 req/min, RateLimit headers on every reply',
    target: '0 429s',
    measured: `${limitedHeaders.rateLimited} 429s, ${limitedHeaders.failedRateLimited + limitedHeaders.failedOther} failed`,
    pass: limitedHeaders.rateLimited === 0 && limitedHeaders.failedRateLimited + limitedHeaders.failedOther === 0,
  },
  { goal: 'outage window p50 (10 hosts)', target: '≤ 1,000 ms', measured: `${outage.p50Ms.toFixed(0)} ms`, pass: outage.p50Ms <= 1_000 },
  {
    goal: 'replace: outage window, host polls offline',
    target: '0 ms, 0',
    measured: `max ${replaced.maxMs.toFixed(0)} ms, ${replaced.offlinePolls} offline`,
    pass: replaced.maxMs === 0 && replaced.offlinePolls === 0 && replaced.allHostsAccepted,
  },
  { goal: 'host updater, 200 runners', target: '≤ 100 ms', measured: `${updater.meanMs.toFixed(0)} ms mean`, pass: updater.meanMs <= 100 },
  { goal: 'host updater, config.toml of 1 MB', target: '≤ 1 s', measured: `${(updaterBig.meanMs / 1000).toFixed(2)} s mean`, pass: updaterBig.meanMs <= 1_000 },
  ...synths.map((m) => ({
    goal: `cdk synth, ${m.runners.toLocaleString('en-US')} runners: resources per template`,
    target: '≤ 500',
    measured: `root ${m.rootResources}, fullest nested ${m.largestNestedResources}`,
    pass: m.rootResources <= 500 && m.largestNestedResources <= 500 && m.nagViolations === 0,
  })),
  { goal: 'largest Lambda bundle', target: '≤ 1 MB', measured: `${(maxBundle / 1e6).toFixed(2)} MB`, pass: maxBundle <= 1_000_000 },
  { goal: 'slowest module init (p50)', target: '≤ 150 ms', measured: `${maxInit.toFixed(0)} ms`, pass: maxInit <= 150 },
];

const kb = (b: number) => `${(b / 1000).toFixed(0)} KB`;
const rows: string[][] = [
  ['case', 'result'],
  [`fan-out scan, ${scan.runners} runners, ${scan.workers} workers × concurrency ${scan.concurrency}`, `${(scan.wallMs / 1000).toFixed(1)} s; ${scan.gitlabCalls} GitLab calls (${scan.callsPerRunner.toFixed(2)}/runner); ${scan.awsCallsPerRunner.toFixed(2)} AWS calls/runner; peak RSS ${scan.peakRssMb.toFixed(0)} MB (${scan.rssBeforeMb.toFixed(0)} before), heap ${scan.peakHeapMb.toFixed(0)} MB; fleet parse ${scan.configParseMs.toFixed(0)} ms`],
  [`fan-out scan, ${serial.runners} runners, 2 workers × concurrency 1`, `${(serial.wallMs / 1000).toFixed(1)} s (${serialPerRunner.toFixed(1)} ms/runner) → speed-up ×${speedUp.toFixed(1)}`],
  ...[limited, limitedBudget, limitedHeaders].map((m, i) => [
    `fan-out scan, ${m.runners} runners, ${m.workers} workers, GitLab ${RATE_LIMIT} req/min, ${['headers only with the 429, no budget set', 'headers only with the 429, budget 1,800/min', 'headers on every reply, no budget set'][i]}`,
    `${minutes(m.simulatedMs)} simulated (${(m.wallMs / 1000).toFixed(1)} s wall at ×${m.speed}); ${m.gitlabCalls} requests; ${m.rateLimited} × 429; failed for rate limiting ${m.failedRateLimited}, otherwise ${m.failedOther}; peak ${m.peakRequestsPerMinute} req/min; ${m.invocations} invocations, ${m.handOns} hand-ons; budget writes ${m.awsCalls.Update ?? 0}`,
  ]),
  [
    `outage window, 10 hosts × ${outage.rotations}`,
    `p50 ${outage.p50Ms.toFixed(0)} ms, p95 ${outage.p95Ms.toFixed(0)} ms, max ${outage.maxMs.toFixed(0)} ms (whole rotation p50 ${outage.rotationP50Ms.toFixed(0)} ms); offline in ${outage.offlinePolls} of ${outage.polls} host polls`,
  ],
  [
    `replace, 10 hosts × ${replaced.rotations}`,
    `outage max ${replaced.maxMs.toFixed(0)} ms; offline in ${replaced.offlinePolls} of ${replaced.polls} host polls; whole rotation p50 ${replaced.rotationP50Ms.toFixed(0)} ms; hosts on the new runner only: ${replaced.allHostsAccepted ? 'yes' : 'NO'}`,
  ],
  [`host updater, ${updater.runnersInConfig} runners (${kb(updater.configBytes)})`, `mean ${updater.meanMs.toFixed(0)} ms, p50 ${updater.p50Ms.toFixed(0)}, p95 ${updater.p95Ms.toFixed(0)} (bash spawn included); already current p50 ${updater.alreadyCurrentP50Ms.toFixed(0)} ms`],
  ...[updaterBig, updaterLongLine].map((m, i) => [
    `host updater, ${i === 0 ? `${m.runnersInConfig} runners` : 'one line of 400 KB'} (${kb(m.configBytes)})`,
    `mean ${m.meanMs.toFixed(0)} ms, p50 ${m.p50Ms.toFixed(0)}, p95 ${m.p95Ms.toFixed(0)} (${m.runs} runs); already current p50 ${m.alreadyCurrentP50Ms.toFixed(0)} ms`,
  ]),
  ...synths.map((m) => [
    `cdk synth, ${m.runners.toLocaleString('en-US')} runners (no bundling)`,
    `${(m.synthMs / 1000).toFixed(1)} s + cdk-nag ${((m.nagMs ?? 0) / 1000).toFixed(1)} s (${m.nagViolations} findings); ${m.templates} templates: root ${m.rootResources} resources, fullest nested stack ${m.largestNestedResources}; largest template ${kb(m.largestTemplateBytes)}; heap ${m.heapUsedMb.toFixed(0)} MB`,
  ]),
  ...bundles.map((b: BundleMeasurement) => [`bundle ${b.entry}`, `${kb(b.bytes)} (+ ${kb(b.sourceMapBytes)} map); init p50 ${b.initP50Ms.toFixed(0)} ms, max ${b.initMaxMs.toFixed(0)} ms`]),
];
const goalRows = [['goal', 'target', 'measured', ''], ...goals.map((g) => [g.goal, g.target, g.measured, g.pass ? 'pass' : 'MISSED'])];

function table(data: string[][]): string {
  const widths = data[0]!.map((_, i) => Math.max(...data.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(data[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...data.slice(1).map(line)].join('\n');
}

const machine = `${availableParallelism()} × ${cpus()[0]?.model.trim() ?? 'cpu'}, node ${process.version}, load average at the end ${loadavg()[0]!.toFixed(1)}`;
process.stdout.write(`\n${quick ? 'Quick' : 'Full'} run on ${machine}\n\n${table(rows)}\n\n${table(goalRows)}\n\n(total ${((Date.now() - started) / 1000).toFixed(0)} s)\n`);

await writeFile(
  new URL('results.json', import.meta.url),
  `${JSON.stringify(
    {
      mode: quick ? 'quick' : 'full',
      at: new Date().toISOString(),
      machine,
      simulator: { latencyMs: LATENCY_MS, rateLimitRequestsPerMinute: RATE_LIMIT, rateLimitedClockSpeed: SPEED },
      scan,
      scanSerial: { ...serial, msPerRunner: serialPerRunner, speedUp },
      scanRateLimited: { ...limited, windowEndsInMs: sizes.windowEndsInMs, rateLimitHeadersOnEveryReply: false },
      scanRateLimitedWithBudget: { ...limitedBudget, windowEndsInMs: sizes.windowEndsInMs, rateLimitHeadersOnEveryReply: false },
      scanRateLimitedHeadersOnEveryReply: { ...limitedHeaders, windowEndsInMs: sizes.windowEndsInMs, rateLimitHeadersOnEveryReply: true },
      outage,
      replaced,
      updater,
      updaterBig,
      updaterLongLine,
      bundles,
      synths,
      goals,
      totalSeconds: (Date.now() - started) / 1000,
    },
    null,
    2,
  )}\n`,
);
