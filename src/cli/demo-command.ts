import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseFleetConfig } from '../config/fleet-config.ts';
import { outageWindow } from '../core/outage-window.ts';
import { parseSecretValue } from '../core/secret-value.ts';
import type { RotationStrategy } from '../core/types.ts';
import { GitLabSimulator } from '../simulator/gitlab-simulator.ts';
import { RunnerDaemons } from '../simulator/runner-daemons.ts';
import { checkHosts, createSimulatedFleet, isManagedTable } from '../simulator/simulated-fleet.ts';
import { adoptRunner, findCurrentToken } from './adopt-command.ts';
import { createLocalEngine } from '../engines/local-engine.ts';
import type { Output } from './output.ts';
import { progressPrinter } from './progress.ts';
import { printRotationReport, rotateRunners, selectRunners } from './rotate-command.ts';
import { collectStatus, printStatus } from './status-command.ts';
import { formatTable } from './table.ts';

const DAY_MS = 86_400_000;
/** The simulated gitlab-runners poll this often; the replace strategy reads the managers as often. */
const POLL_MS = 50;

export interface DemoOptions {
  output: Output;
  /** Keep the demo's files in this folder instead of a temp folder that is removed at the end. */
  keepDir?: string;
  /** Default `reset`. */
  strategy?: RotationStrategy;
}

export interface DemoResult {
  exitCode: number;
  /** Every runner token the demo saw, old and new, so tests can check that none was printed. */
  tokensSeen: string[];
  /** Per runner: the outage window of its rotation (null where it did not finish). */
  outageWindowsMs: Record<string, number | null>;
  /** Polls (one per host every 50 ms) in which a host's gitlab-runner had no table GitLab accepted, while the rotations ran. */
  offlinePolls: number;
}

/**
 * `npm run demo`: a whole rotation on this machine against the built-in GitLab simulator, no network.
 * Three runners 27 days into a 30-day token lifetime, 2-3 hosts (config.toml files) each, and a
 * gitlab-runner on each host polling GitLab every 50 ms with what its config.toml holds: adopt, scan,
 * rotate, then check that every host's config.toml holds a token GitLab accepts, and print the outage
 * window per runner and in how many polls a host could take no job meanwhile. `strategy: 'replace'` rotates
 * by replacement (with an `api` access token as the admin token): the window must then be 0 for every
 * runner, no poll without a working runner, and no host left with the old runner. Exit code 1 on any mismatch.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { output } = options;
  const strategy = options.strategy ?? 'reset';
  // Absolute, so the kept fleet.json's paths name the same files from any working folder.
  const workDir = options.keepDir !== undefined ? resolve(options.keepDir) : await mkdtemp(join(tmpdir(), 'rotator-demo-'));
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  const url = await simulator.start();
  let daemons: RunnerDaemons | undefined;
  try {
    output.out(`GitLab simulator on ${url} (runner tokens live 30 days); strategy ${strategy}; demo files in ${workDir}`);
    const now = Date.now();
    const fleet = await createSimulatedFleet(simulator, workDir, [
      { name: 'docker-builders', hosts: 3, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
      { name: 'shell-deployers', hosts: 2, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
      { name: 'arm64-builders', hosts: 3, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
    ]);
    const tokensSeen = [...fleet.tokens];
    const fleetFile = fleet.fleetFile('state') as Record<string, unknown>;
    if (strategy === 'replace') {
      // Replacing needs an access token that may read, create and delete runners: the demo's runners are
      // instance runners, which only an administrator may create (as in GitLab).
      const accessToken = simulator.addAccessToken({ scopes: ['api'], admin: true });
      tokensSeen.push(accessToken);
      await writeFile(join(workDir, 'admin-token'), `${accessToken}\n`, { mode: 0o600 });
      Object.assign(fleetFile, { adminTokenFile: 'admin-token', defaults: { ...(fleetFile.defaults as Record<string, unknown>), strategy: 'replace' } });
    }
    const fleetPath = join(workDir, 'fleet.json');
    await writeFile(fleetPath, JSON.stringify(fleetFile, null, 2), { mode: 0o600 });
    const config = parseFleetConfig(await readFile(fleetPath, 'utf8'), fleetPath);
    const engine = createLocalEngine(config, { events: progressPrinter(output), alertLines: output.out, replace: { confirmWithinMs: 30_000, pollMs: POLL_MS } });
    daemons = new RunnerDaemons(url, fleet.hosts, { intervalMs: POLL_MS, counts: isManagedTable }).start();

    output.out("\n== Adopt: store each runner's current token (from its first host's config.toml) as AWSCURRENT");
    for (const runner of config.runners) {
      const found = await findCurrentToken(runner, undefined);
      await adoptRunner(engine, runner, found, new Date());
      output.out(`[${runner.name}] adopted from ${found.source}`);
    }
    output.out('\n== Before');
    printStatus(await collectStatus(engine, new Date()), output);

    output.out('\n== Scan: which tokens are due?');
    const due = await selectRunners(engine, undefined, true, new Date());
    output.out(`due: ${due.map((r) => r.name).join(', ') || 'none'}`);

    output.out(`\n== Rotate (${strategy})`);
    const mark = daemons.mark();
    const runs = await rotateRunners(engine, due, output);
    const problems = printRotationReport(runs, output);
    const currentIds = new Map<string, number>();
    for (const runner of config.runners) {
      const current = await engine.store.getValue(runner.secretId, { stage: 'AWSCURRENT' });
      if (!current) continue;
      const value = parseSecretValue(current, runner.secretId);
      tokensSeen.push(value.token);
      currentIds.set(runner.name, value.runnerId);
    }
    await daemons.stopAll();
    const { offline, ticks } = daemons.offlineSince(mark);
    output.out(`gitlab-runner polls in which a host could take no job while the rotation ran: ${offline} of ${ticks}`);

    output.out('\n== After');
    printStatus(await collectStatus(engine, new Date()), output);

    output.out("\n== Check: every host's config.toml, read with a TOML parser, polled against GitLab");
    const checks = await checkHosts(fleet.hosts, url, (host) => currentIds.get(host.runner) ?? host.runnerId);
    const rows = checks.map((c) => [
      c.host.name,
      c.host.systemId,
      String(c.runnerId),
      c.accepted ? 'accepted (204)' : `REJECTED (${c.status})`,
      c.selfRotationDisabled ? 'true' : 'MISSING',
      c.leftoverRunnerIds.length === 0 ? '-' : `LEFT BEHIND: ${c.leftoverRunnerIds.join(', ')}`,
    ]);
    for (const line of formatTable(['HOST', 'SYSTEM ID', 'RUNNER', 'GITLAB SAYS', 'FF_DISABLE_AUTOMATIC_TOKEN_ROTATION', 'OTHER TABLES'], rows)) output.out(line);
    const good = checks.filter((c) => c.accepted && c.selfRotationDisabled && c.leftoverRunnerIds.length === 0).length;

    const outageWindowsMs = Object.fromEntries(runs.map((run) => [run.runner.name, run.result?.record ? outageWindow(run.result.record).ms : null]));
    const replacedLeft = strategy === 'replace' ? fleet.runners.filter((r) => simulator.runner(r.id) !== undefined).map((r) => r.id) : [];
    if (strategy === 'replace') output.out(`replaced runners still in GitLab: ${replacedLeft.length === 0 ? 'none' : replacedLeft.join(', ')}`);
    const zeroOutage = strategy !== 'replace' || (Object.values(outageWindowsMs).every((ms) => ms === 0) && offline === 0 && replacedLeft.length === 0);
    const ok = problems === 0 && good === checks.length && runs.length === config.runners.length && zeroOutage;
    output.out(`\ndemo: ${runs.length}/${config.runners.length} runners rotated (${strategy}), ${good}/${checks.length} hosts hold a token GitLab accepts, ${problems} problems`);
    if (!ok) output.err('demo: FAILED (see the lines above)');
    return { exitCode: ok ? 0 : 1, tokensSeen, outageWindowsMs, offlinePolls: offline };
  } finally {
    await daemons?.stopAll();
    await simulator.stop();
    if (!options.keepDir) await rm(workDir, { recursive: true, force: true });
  }
}
