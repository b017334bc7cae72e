import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { parseFleetConfig } from '../config/fleet-config.ts';
import { readCliEnvironment } from '../config/environment.ts';
import { adoptRunner, findCurrentToken } from './adopt-command.ts';
import { adoptAws, createAwsCli, migrateThroughStack, rotateAws, type AwsCli } from './aws-commands.ts';
import { runDemo } from './demo-command.ts';
import { initFleetFile } from './init-command.ts';
import { runSimulatorCommand } from './simulator-command.ts';
import { registerDoctorCommand } from './doctor-command.ts';
import { migrateLocal } from './migrate-command.ts';
import { awsSetupError } from '../adapters/aws/sdk-clients.ts';
import { createLocalEngine, type LocalEngine } from '../engines/local-engine.ts';
import { InvalidInputError } from '../core/errors.ts';
import { runnerAsStored } from '../core/runner-as-stored.ts';
import { atRunnerId, type ManagedRunner, type RotationStrategy } from '../core/types.ts';
import { rotationJson, statusJson } from './json-lines.ts';
import { consoleOutput, stderrOnly, type Output } from './output.ts';
import { progressPrinter } from './progress.ts';
import { printRotationReport, rotateRunners, rotationProblems, selectDueRunners, selectRunners, type RotationRun } from './rotate-command.ts';
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

  /** The local engine; with --json its progress and alert lines go to stderr, and stdout holds JSON alone. */
  const engine = async (json = false): Promise<LocalEngine> => {
    const path = program.opts<{ fleet: string }>().fleet;
    const config = parseFleetConfig(await readFleetFile(path), path);
    const said = json ? stderrOnly(output) : output;
    return createLocalEngine(config, { events: progressPrinter(said), alertLines: said.out });
  };
  const refuseJsonWithAws = (opts: { json?: boolean; aws?: boolean }, command: string) => {
    if (opts.json && opts.aws) throw new InvalidInputError(`${command} --aws`, '--json is for the local engine; the stack reports each rotation in its ledger and alerts');
  };
  const printRotations = (runs: RotationRun[], json: boolean | undefined): number => {
    if (!json) return printRotationReport(runs, output);
    for (const run of runs) output.out(JSON.stringify(rotationJson(run)));
    return rotationProblems(runs);
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
        for (const r of rows) output.out(JSON.stringify(statusJson(r)));
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
    .option('--json', 'one JSON object per runner rotated (progress on stderr)')
    .action(async (name: string | undefined, opts: { due?: boolean; aws?: boolean; json?: boolean }) => {
      refuseJsonWithAws(opts, 'rotate');
      if (opts.aws) {
        if (name === undefined) throw new InvalidInputError('rotate --aws', 'name the runner to rotate');
        return rotateAws(await awsCli(), name, output);
      }
      const e = await engine(opts.json);
      let unreadable: RunnerStatus[] = [];
      let runners: ManagedRunner[];
      if (name === undefined && opts.due === true) ({ runners, unreadable } = await selectDueRunners(e, new Date()));
      else runners = await selectRunners(e, name, opts.due === true, new Date());
      // A runner whose state cannot be read may be due: say so and fail, whatever the others do.
      for (const row of unreadable) output.err(`[${row.runner.name}] cannot tell whether it is due: ${row.problem}`);
      if (unreadable.length > 0) exitCode = 1;
      if (runners.length === 0) {
        (opts.json ? output.err : output.out)(unreadable.length > 0 ? 'No other runner is due.' : 'No runner is due.');
        return;
      }
      if (printRotations(await rotateRunners(e, runners, output), opts.json) > 0) exitCode = 1;
    });

  program
    .command('scan')
    .description('rotate every runner that is due and re-push the current token to hosts that missed the last rotation')
    .option('--every-hours <hours>', 'how often this scan runs (cron, timer): warns when a token lives less than two intervals', '6')
    .option('--json', 'one JSON object per runner (what the scan did; progress on stderr)')
    .action(async (opts: { everyHours: string; json?: boolean }) => {
      const hours = Number(opts.everyHours);
      if (!(hours > 0)) throw new InvalidInputError('--every-hours', `must be a number of hours above 0, got "${opts.everyHours}"`);
      if ((await scanLocalFleet(await engine(opts.json), output, hours * 3_600_000, { json: opts.json })) > 0) exitCode = 1;
    });

  program
    .command('adopt')
    .description("store a runner's current token (from its first host's config.toml, or --token-file) and rotate at once")
    .argument('<runner>', 'runner name from the fleet file')
    .option('--token-file <path>', 'read the current token from this file instead of config.toml')
    .option('--no-rotate', 'only store the token, once GitLab confirmed its runner and told its expiry; do not rotate now')
    .option('--aws', "store it in the deployed stack's secret (needs --token-file); --fleet names the AWS fleet file")
    .option('--runner-id <id>', "the GitLab runner id the token belongs to (default: the id the runner's secret holds, else the fleet file's)", parseRunnerIdOption)
    .option('--json', 'one JSON object: where the token came from, and the rotation as `rotate --json` prints it (progress on stderr)')
    .action(async (name: string, opts: { tokenFile?: string; rotate: boolean; aws?: boolean; runnerId?: number; json?: boolean }) => {
      refuseJsonWithAws(opts, 'adopt');
      if (opts.aws) return adoptAws(await awsCli(), name, opts.tokenFile, opts.rotate, output, new Date(), opts.runnerId);
      const e = await engine(opts.json);
      const [selected] = await selectRunners(e, name, false, new Date());
      if (!selected) return;
      // After a replacement the secret, not the fleet file, knows the runner id the hosts run.
      const runner = opts.runnerId === undefined ? await runnerAsStored(e.store, selected) : atRunnerId(selected, opts.runnerId);
      let found = await findCurrentToken(runner, opts.tokenFile);
      if (!opts.rotate) {
        // Nothing else would check a token that is only stored, and its expiry would read "never": GitLab
        // says whose it is and when it expires (POST /runners/verify as the rotator, never as a host:
        // invariant 7). A rotation (the default) finds both out by itself.
        const checked = await e.gitlab.verify(runner.gitlabUrl, found.token);
        if (checked.runnerId !== runner.runnerId) {
          throw new InvalidInputError(`runner "${runner.name}"`, `GitLab says the token belongs to runner ${checked.runnerId}, not ${runner.runnerId}: set runnerId in the fleet file, or pass --runner-id ${checked.runnerId}`);
        }
        found = { ...found, tokenExpiresAt: checked.tokenExpiresAt };
      }
      await adoptRunner(e, runner, found, new Date());
      (opts.json ? output.err : output.out)(`[${runner.name}] adopted the token from ${found.source} as AWSCURRENT (runner ${runner.runnerId})`);
      const runs = opts.rotate ? await rotateRunners(e, [runner], output) : [];
      if (opts.json) {
        output.out(JSON.stringify({ runner: runner.name, runnerId: runner.runnerId, adoptedFrom: found.source, rotation: runs[0] ? rotationJson(runs[0]) : null }));
        if (rotationProblems(runs) > 0) exitCode = 1;
      } else if (opts.rotate && printRotationReport(runs, output) > 0) exitCode = 1;
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

  program
    .command('init')
    .description("write the fleet file (--fleet) for the runners of this host's config.toml: names, urls and ids, never tokens")
    .option('--config <file>', "gitlab-runner's config.toml", '/etc/gitlab-runner/config.toml')
    .option('--state-dir <dir>', 'where the engine keeps its secrets and ledger (0700)', '/var/lib/gitlab-runner-rotator')
    .option('--force', 'replace a fleet file that is already there')
    .action(async (opts: { config: string; stateDir: string; force?: boolean }) => {
      const fleetPath = program.opts<{ fleet: string }>().fleet;
      const fleet = await initFleetFile({ configPath: opts.config, fleetPath, stateDir: opts.stateDir, force: opts.force === true });
      output.out(`wrote ${fleetPath}: ${fleet.runners.map((r) => `${r.name} (runner ${r.runnerId} of ${r.gitlabUrl})`).join(', ')}`);
      output.out(`next: rotator${fleetPath === env.fleetPath ? '' : ` --fleet ${fleetPath}`} adopt ${fleet.runners[0]?.name ?? 'NAME'}   # stores its token from config.toml and rotates at once`);
    });

  program
    .command('simulator')
    .description('serve the built-in GitLab simulator on 127.0.0.1 with a runner host and fleet.json to try the local engine on, until Ctrl-C')
    .option('--dir <dir>', 'an empty or new folder for config.toml, fleet.json and state (default: a new temp folder)')
    .option('--config <file>', 'copy this config.toml (e.g. /etc/gitlab-runner/config.toml): its runners, with the simulator\'s urls and tokens')
    .option('--port <port>', 'port on 127.0.0.1 (0: any free one)', '0')
    .option('--expires-in-days <days>', "the trial tokens' days left (below 30: a token is due when less than half its life is left)", '3')
    .action(async (opts: { dir?: string; config?: string; port: string; expiresInDays: string }) => {
      const port = Number(opts.port);
      if (!/^[0-9]{1,5}$/.test(opts.port) || port > 65_535) throw new InvalidInputError('--port', `"${opts.port}" is not a port (0-65535)`);
      const stopped = new Promise((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      exitCode = await runSimulatorCommand({ dir: opts.dir, config: opts.config, port, expiresInDays: Number(opts.expiresInDays) }, output, stopped);
    });

  registerDoctorCommand(program, output, (code) => {
    exitCode = code;
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (thrown) {
    const err = awsSetupError(thrown) as Error & { code?: string; exitCode?: number; fix?: string };
    if (err.code?.startsWith('commander.')) return err.exitCode === 0 ? 0 : 2;
    // One line per problem (a fleet file checked in full may have several), each naming its place.
    for (const line of err.message.split('\n')) output.err(`rotator: ${line}`);
    if (err.fix) output.err(`fix: ${err.fix}`);
    return err.name === 'InvalidInputError' || err.code === 'ENOENT' ? 2 : 1;
  }
  return exitCode;
}
