import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { parseFleetConfig } from '../config/fleet-config.ts';
import { readCliEnvironment } from '../config/environment.ts';
import { adoptRunner, findCurrentToken } from './adopt-command.ts';
import { adoptAws, createAwsCli, migrateThroughStack, rotateAws, type AwsCli } from './aws-commands.ts';
import { runDemo } from './demo-command.ts';
import { registerDoctorCommand } from './doctor-command.ts';
import { migrateLocal } from './migrate-command.ts';
import { createLocalEngine, type LocalEngine } from '../engines/local-engine.ts';
import { InvalidInputError } from '../core/errors.ts';
import { runnerAsStored } from '../core/runner-as-stored.ts';
import { atRunnerId, describeHosts, type ManagedRunner, type RotationStrategy } from '../core/types.ts';
import { consoleOutput, type Output } from './output.ts';
import { progressPrinter } from './progress.ts';
import { printRotationReport, rotateRunners, selectDueRunners, selectRunners } from './rotate-command.ts';
import { scanLocalFleet } from './scan-command.ts';
import { collectStatus, printStatus, type RunnerStatus } from './status-command.ts';
import { collectAwsStatus, printAwsStatus } from './status-aws-command.ts';

function parseRunnerIdOption(text: string): number {
  const id = Number(text);
  if (!/^[1-9][0-9]{0,12}$/.test(text) || !Number.isSafeInteger(id)) throw new InvalidInputError('--runner-id', `"${text}" is not a runner id (a positive integer of at most 13 digits)`);
  return id;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The fleet file's text; a missing file says how to name or write one (exit 2, bad input). */
async function readFleetFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new InvalidInputError(path, 'no fleet file here. Name yours with --fleet FILE or ROTATOR_FLEET=FILE, or write one: README.md "Run it on one runner host" shows its fields', { cause: error });
  }
}

/** Exit codes: 0 all well, 1 a rotation or a host failed, 2 bad input (config, arguments). */
export async function main(argv: string[], output: Output = consoleOutput): Promise<number> {
  const env = readCliEnvironment();
  let exitCode = 0;
  const program = new Command('rotator')
    .description('Keeps GitLab Runner authentication tokens from expiring and every host of a runner in step.')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--fleet <path>', 'fleet file of the local engine (env ROTATOR_FLEET)', env.fleetPath)
    .exitOverride()
    .configureOutput({ writeOut: (s) => output.out(s.trimEnd()), writeErr: (s) => output.err(s.trimEnd()) });

  const engine = async (): Promise<LocalEngine> => {
    const path = program.opts<{ fleet: string }>().fleet;
    const config = parseFleetConfig(await readFleetFile(path), path);
    return createLocalEngine(config, { events: progressPrinter(output), alertLines: output.out });
  };

  const awsCli = async (): Promise<AwsCli> => {
    const path = program.opts<{ fleet: string }>().fleet;
    return createAwsCli(await readFleetFile(path), path);
  };

  program
    .command('status')
    .description('table of every managed runner: url, expiry, days left, hosts, last rotation')
    .option('--json', 'one JSON object per runner')
    .option('--aws', "the deployed stack's secrets: rotation state and recorded expiry; --fleet names the AWS fleet file")
    .action(async (opts: { json?: boolean; aws?: boolean }) => {
      if (opts.aws) {
        const cli = await awsCli();
        exitCode = printAwsStatus(await collectAwsStatus(cli.fleet, cli.secretsManager, new Date()), output, opts.json === true);
        return;
      }
      const rows = await collectStatus(await engine(), new Date());
      if (opts.json) {
        for (const r of rows) {
          output.out(JSON.stringify({ runner: r.runner.name, url: r.runner.gitlabUrl, runnerId: r.runner.runnerId, strategy: r.runner.strategy, adopted: r.adopted, expiresAt: r.expiresAt, daysLeft: r.daysLeft, due: r.due, reason: r.reason, problem: r.problem, hosts: describeHosts(r.runner.hosts), lastRotation: r.lastRotation }));
        }
      } else {
        printStatus(rows, output);
      }
    });

  program
    .command('rotate')
    .description('rotate one runner now, or every runner that is due (--due)')
    .argument('[runner]', 'runner name from the fleet file')
    .option('--due', 'rotate every adopted runner whose token is due')
    .option('--aws', 'rotate through the deployed stack (RotateSecret); --fleet names the AWS fleet file')
    .action(async (name: string | undefined, opts: { due?: boolean; aws?: boolean }) => {
      if (opts.aws) {
        if (name === undefined) throw new InvalidInputError('rotate --aws', 'name the runner to rotate');
        return rotateAws(await awsCli(), name, output);
      }
      const e = await engine();
      let unreadable: RunnerStatus[] = [];
      let runners: ManagedRunner[];
      if (name === undefined && opts.due === true) ({ runners, unreadable } = await selectDueRunners(e, new Date()));
      else runners = await selectRunners(e, name, opts.due === true, new Date());
      // A runner whose state cannot be read may be due: say so and fail, whatever the others do.
      for (const row of unreadable) output.err(`[${row.runner.name}] cannot tell whether it is due: ${row.problem}`);
      if (unreadable.length > 0) exitCode = 1;
      if (runners.length === 0) {
        output.out(unreadable.length > 0 ? 'No other runner is due.' : 'No runner is due.');
        return;
      }
      const problems = printRotationReport(await rotateRunners(e, runners, output), output);
      if (problems > 0) exitCode = 1;
    });

  program
    .command('scan')
    .description('rotate every runner that is due and re-push the current token to hosts that missed the last rotation')
    .option('--every-hours <hours>', 'how often this scan runs (cron, timer): warns when a token lives less than two intervals', '6')
    .action(async (opts: { everyHours: string }) => {
      const hours = Number(opts.everyHours);
      if (!(hours > 0)) throw new InvalidInputError('--every-hours', `must be a number of hours above 0, got "${opts.everyHours}"`);
      if ((await scanLocalFleet(await engine(), output, hours * 3_600_000)) > 0) exitCode = 1;
    });

  program
    .command('adopt')
    .description("store a runner's current token (from its first host's config.toml, or --token-file) and rotate at once")
    .argument('<runner>', 'runner name from the fleet file')
    .option('--token-file <path>', 'read the current token from this file instead of config.toml')
    .option('--no-rotate', 'only store the token; do not rotate now')
    .option('--aws', "store it in the deployed stack's secret (needs --token-file); --fleet names the AWS fleet file")
    .option('--runner-id <id>', "the GitLab runner id the token belongs to (default: the id the runner's secret holds, else the fleet file's)", parseRunnerIdOption)
    .action(async (name: string, opts: { tokenFile?: string; rotate: boolean; aws?: boolean; runnerId?: number }) => {
      if (opts.aws) return adoptAws(await awsCli(), name, opts.tokenFile, opts.rotate, output, new Date(), opts.runnerId);
      const e = await engine();
      const [selected] = await selectRunners(e, name, false, new Date());
      if (!selected) return;
      // After a replacement the secret, not the fleet file, knows the runner id the hosts run.
      const runner = opts.runnerId === undefined ? await runnerAsStored(e.store, selected) : atRunnerId(selected, opts.runnerId);
      const found = await findCurrentToken(runner, opts.tokenFile);
      await adoptRunner(e, runner, found, new Date());
      output.out(`[${runner.name}] adopted the token from ${found.source} as AWSCURRENT (runner ${runner.runnerId})`);
      if (opts.rotate) {
        const problems = printRotationReport(await rotateRunners(e, [runner], output), output);
        if (problems > 0) exitCode = 1;
      }
    });

  program
    .command('migrate')
    .description('move a runner registered with a legacy registration token to a new runner (POST /user/runners) with no outage; prints the plan first')
    .argument('<runner>', 'runner name from the fleet file')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--force', 'replace the runner even if it already has a glrt- token')
    .option('--cancel', 'withdraw a migration requested earlier (one that stalled, or that you no longer want)')
    .option('--aws', 'through the deployed stack: a replacement request in its ledger, then RotateSecret; --fleet names the AWS fleet file')
    .option('--ledger-table <name>', "with --aws: the stack's LedgerTableName output (env ROTATOR_LEDGER_TABLE)", env.ledgerTable)
    .action(async (name: string, opts: { dryRun?: boolean; force?: boolean; cancel?: boolean; aws?: boolean; ledgerTable?: string }) => {
      const options = { dryRun: opts.dryRun === true, force: opts.force === true, cancel: opts.cancel === true };
      exitCode = opts.aws
        ? await migrateThroughStack(await awsCli(), name, { ...options, ledgerTable: opts.ledgerTable }, output, new Date())
        : await migrateLocal(await engine(), name, options, output, new Date());
    });

  program
    .command('demo')
    .description('a whole rotation of 3 runners on 8 hosts against the built-in GitLab simulator (no network)')
    .addOption(new Option('--strategy <strategy>', 'reset: new token for the same runner; replace: a new runner beside the old one (no outage window)').choices(['reset', 'replace']).default('reset'))
    .option('--keep <dir>', 'keep the demo files (config.toml of each host, state) in this folder')
    .action(async (opts: { keep?: string; strategy: RotationStrategy }) => {
      exitCode = (await runDemo({ output, keepDir: opts.keep, strategy: opts.strategy })).exitCode;
    });

  registerDoctorCommand(program, output, (code) => {
    exitCode = code;
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    const err = error as Error & { code?: string; exitCode?: number; fix?: string };
    if (err.code?.startsWith('commander.')) return err.exitCode === 0 ? 0 : 2;
    output.err(`rotator: ${err.message}`);
    if (err.fix) output.err(`fix: ${err.fix}`);
    return err.name === 'InvalidInputError' || err.code === 'ENOENT' ? 2 : 1;
  }
  return exitCode;
}
