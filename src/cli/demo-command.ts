import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFleetConfig } from '../config/fleet-config.ts';
import { parseSecretValue } from '../core/secret-value.ts';
import { GitLabSimulator } from '../simulator/gitlab-simulator.ts';
import { checkHosts, createSimulatedFleet } from '../simulator/simulated-fleet.ts';
import { adoptRunner, findCurrentToken } from './adopt-command.ts';
import { createLocalEngine } from '../engines/local-engine.ts';
import type { Output } from './output.ts';
import { progressPrinter } from './progress.ts';
import { printRotationReport, rotateRunners, selectRunners } from './rotate-command.ts';
import { collectStatus, printStatus } from './status-command.ts';
import { formatTable } from './table.ts';

const DAY_MS = 86_400_000;

export interface DemoOptions {
  output: Output;
  /** Keep the demo's files in this folder instead of a temp folder that is removed at the end. */
  keepDir?: string;
}

export interface DemoResult {
  exitCode: number;
  /** Every runner token the demo saw, old and new, so tests can check that none was printed. */
  tokensSeen: string[];
}

/**
 * `npm run demo`: a whole rotation on this machine against the built-in GitLab simulator, no network.
 * Three runners 27 days into a 30-day token lifetime, 2-3 hosts (config.toml files) each: adopt, scan,
 * rotate, then check that every host's config.toml holds a token GitLab accepts, and print the outage
 * window per runner. Exit code 1 on any mismatch.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { output } = options;
  const workDir = options.keepDir ?? (await mkdtemp(join(tmpdir(), 'rotator-demo-')));
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  const url = await simulator.start();
  try {
    output.out(`GitLab simulator on ${url} (runner tokens live 30 days); demo files in ${workDir}`);
    const now = Date.now();
    const fleet = await createSimulatedFleet(simulator, workDir, [
      { name: 'docker-builders', hosts: 3, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
      { name: 'shell-deployers', hosts: 2, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
      { name: 'arm64-builders', hosts: 3, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
    ]);
    const tokensSeen = [...fleet.tokens];
    const fleetPath = join(workDir, 'fleet.json');
    await writeFile(fleetPath, JSON.stringify(fleet.fleetFile('state'), null, 2), { mode: 0o600 });
    const config = parseFleetConfig(await readFile(fleetPath, 'utf8'), fleetPath);
    const engine = createLocalEngine(config, { events: progressPrinter(output), alertLines: output.out });

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

    output.out('\n== Rotate');
    const runs = await rotateRunners(engine, due, output);
    const problems = printRotationReport(runs, output);
    for (const runner of config.runners) {
      const current = await engine.store.getValue(runner.secretId, { stage: 'AWSCURRENT' });
      if (current) tokensSeen.push(parseSecretValue(current, runner.secretId).token);
    }

    output.out('\n== After');
    printStatus(await collectStatus(engine, new Date()), output);

    output.out("\n== Check: every host's config.toml, read with a TOML parser, polled against GitLab");
    const checks = await checkHosts(fleet.hosts, url);
    const rows = checks.map((c) => [c.host.name, c.host.systemId, c.accepted ? 'accepted (204)' : `REJECTED (${c.status})`, c.selfRotationDisabled ? 'true' : 'MISSING']);
    for (const line of formatTable(['HOST', 'SYSTEM ID', 'GITLAB SAYS', 'FF_DISABLE_AUTOMATIC_TOKEN_ROTATION'], rows)) output.out(line);
    const good = checks.filter((c) => c.accepted && c.selfRotationDisabled).length;

    const ok = problems === 0 && good === checks.length && runs.length === config.runners.length;
    output.out(`\ndemo: ${runs.length}/${config.runners.length} runners rotated, ${good}/${checks.length} hosts hold a token GitLab accepts, ${problems} problems`);
    if (!ok) output.err('demo: FAILED (see the lines above)');
    return { exitCode: ok ? 0 : 1, tokensSeen };
  } finally {
    await simulator.stop();
    if (!options.keepDir) await rm(workDir, { recursive: true, force: true });
  }
}
