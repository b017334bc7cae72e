/**
 * `rotator doctor`: why is this runner offline? Reads one host's config.toml and its gitlab-runner's
 * version (`gitlab-runner --version`, or --gitlab-runner PATH), asks GitLab what it may ask without
 * changing anything but this host's own contacted_at (see src/doctor/gather.ts), and prints
 * one finding per problem with its evidence and fix (src/doctor/render.ts for the formats).
 *
 * `rotator doctor --aws RUNNER`: the same host checks on every host of a runner of the AWS fleet file,
 * through the deployed read-only doctor document (src/doctor/fleet-doctor.ts), as one table
 * HOST | CODE | SEVERITY | RUNNER | EVIDENCE (src/doctor/fleet-report.ts). It uses the operator's own
 * AWS credentials (ssm:SendCommand on the document and the hosts, ssm:ListCommands,
 * ssm:ListCommandInvocations, ssm:GetCommandInvocation).
 *
 * Exit codes: 0 nothing wrong (info findings only), 1 warnings, 2 errors (also bad arguments, as the
 * rest of the CLI; and, with --aws, a host that did not run the doctor). Checks that could not run are
 * listed and do not change the exit code.
 */
import { readFile } from 'node:fs/promises';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Command } from 'commander';
import { doctorCommandParameters, doctorDocumentName } from '../adapters/aws/doctor-document.ts';
import { ssmClient } from '../adapters/aws/sdk-clients.ts';
import { gitlabBaseUrl } from '../adapters/gitlab/gitlab.ts';
import { systemClock } from '../adapters/local/system-clock.ts';
import { parseAwsFleetConfig } from '../config/aws-fleet-config.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import { runChecks } from '../doctor/checks.ts';
import { exitCodeFor } from '../doctor/finding.ts';
import { runFleetDoctor } from '../doctor/fleet-doctor.ts';
import { buildFleetReport, fleetExitCode, fleetReportJson, formatFleetNotRun, formatFleetReport } from '../doctor/fleet-report.ts';
import { DEFAULT_EXPIRING_DAYS, DEFAULT_GITLAB_RUNNER, DEFAULT_TIMEOUT_MS, gatherFacts, type GatherOptions } from '../doctor/gather.ts';
import { renderJson, renderText } from '../doctor/render.ts';
import type { Output } from './output.ts';

export interface DoctorCliOptions {
  config: string;
  gitlabUrl?: string;
  json?: boolean;
  accessTokenFile?: string;
  shared?: boolean;
  expiringDays: string;
  timeoutSeconds: string;
  /** The gitlab-runner program whose `--version` the doctor reads; default `gitlab-runner` on PATH. */
  gitlabRunner?: string;
}

export interface AwsDoctorCliOptions {
  /** The runner's name in the AWS fleet file. */
  aws: string;
  /** The AWS fleet file. */
  fleet: string;
  /** The doctor document; default doctorDocumentName() (the stack's DoctorDocumentName output). */
  document?: string;
  json?: boolean;
  shared?: boolean;
  /** false with --no-probe. */
  probe: boolean;
  expiringDays: string;
  timeoutSeconds: string;
  waitSeconds: string;
}

/** What `doctor --aws` reaches AWS with; tests pass a mocked client and a short poll. */
export interface DoctorAwsDeps {
  ssm?: () => SSMClient;
  clock?: Clock;
  pollIntervalMs?: number;
}

export const DEFAULT_CONFIG_PATH = '/etc/gitlab-runner/config.toml';
/** How long `doctor --aws` waits for the hosts by default: the document's 120 s on a host, plus delivery. */
export const DEFAULT_WAIT_SECONDS = 300;

interface DoctorCommandOptions extends DoctorCliOptions {
  aws?: string;
  fleet?: string;
  document?: string;
  probe: boolean;
  waitSeconds: string;
}

export function registerDoctorCommand(program: Command, output: Output, setExitCode: (code: number) => void, deps: DoctorAwsDeps = {}): void {
  program
    .command('doctor')
    .description("why is this runner offline? checks this host's config.toml and what GitLab says about its tokens (read-only); with --aws, every host of a runner through SSM")
    .option('--config <path>', "gitlab-runner's config.toml", DEFAULT_CONFIG_PATH)
    .option('--gitlab-url <url>', 'the GitLab that knows the runner (compared with the url in config.toml)')
    .option('--access-token-file <path>', 'a file holding an access token (read_api or manage_runner; admin for the registration setting): enables manager.stale, sharing and registration checks')
    .option('--shared', 'the runners of this config.toml are shared by several hosts (when no access token can tell)')
    .option('--expiring-days <days>', 'token.expiring fires this many days before expiry', String(DEFAULT_EXPIRING_DAYS))
    .option('--timeout-seconds <seconds>', 'per GitLab request', String(DEFAULT_TIMEOUT_MS / 1000))
    .option('--gitlab-runner <path>', `the gitlab-runner program whose --version is read for runner.version-too-old (default: ${DEFAULT_GITLAB_RUNNER} on PATH)`)
    .option('--json', 'one JSON object per finding (per host and finding with --aws), then one {"notRun": [...]} object')
    .option('--aws <runner>', "run the host checks on every host of this runner of the AWS fleet file, with the deployed doctor document (SSM Run Command)")
    .option('--fleet <path>', 'with --aws: the AWS fleet file (default: the global --fleet, env ROTATOR_FLEET)')
    .option('--document <name>', `with --aws: the doctor document (default <the fleet file's stackName>-RunnerDoctor, the stack's DoctorDocumentName output)`)
    .option('--wait-seconds <seconds>', 'with --aws: how long to wait for the hosts', String(DEFAULT_WAIT_SECONDS))
    .option('--no-probe', 'with --aws: no GET /version from the hosts (no network, TLS or clock checks)')
    .action(async (opts: DoctorCommandOptions, command: Command) => {
      const given = (name: string): boolean => command.getOptionValueSource(name) !== undefined && command.getOptionValueSource(name) !== 'default';
      if (opts.aws === undefined) {
        for (const [name, flag] of [['fleet', '--fleet'], ['document', '--document'], ['waitSeconds', '--wait-seconds'], ['probe', '--no-probe']] as const) {
          if (given(name)) throw new InvalidInputError(flag, 'only goes with --aws RUNNER');
        }
        setExitCode(await runDoctor(opts, output));
        return;
      }
      for (const [name, flag] of [['config', '--config'], ['gitlabUrl', '--gitlab-url'], ['accessTokenFile', '--access-token-file'], ['gitlabRunner', '--gitlab-runner']] as const) {
        if (given(name)) throw new InvalidInputError(flag, "does not go with --aws: the hosts' config path comes from the runner's fleet entry, each host runs its own gitlab-runner --version, and the document sends nothing to GitLab but GET /version");
      }
      const fleet = opts.fleet ?? command.optsWithGlobals<{ fleet?: string }>().fleet;
      if (fleet === undefined) throw new InvalidInputError('--fleet', 'name the AWS fleet file with --aws');
      setExitCode(await runAwsDoctor({ ...opts, aws: opts.aws, fleet }, output, deps));
    });
}

/**
 * Sends the doctor document to the runner's hosts, waits, prints the per-host table (or JSON) and
 * returns the exit code of the worst row. Bad arguments throw InvalidInputError (exit 2 in main).
 */
export async function runAwsDoctor(opts: AwsDoctorCliOptions, output: Output, deps: DoctorAwsDeps = {}): Promise<number> {
  const waitSeconds = Number(opts.waitSeconds);
  if (!(Number.isInteger(waitSeconds) && waitSeconds >= 1 && waitSeconds <= 86_400)) throw new InvalidInputError('--wait-seconds', `must be a whole number of seconds from 1 to 86400, got "${opts.waitSeconds}"`);
  if (!/^[0-9]{1,4}$/.test(opts.expiringDays)) throw new InvalidInputError('--expiring-days', `must be a whole number of days (0-9999) with --aws, got "${opts.expiringDays}"`);
  if (!/^[1-9][0-9]{0,2}$/.test(opts.timeoutSeconds)) throw new InvalidInputError('--timeout-seconds', `must be a whole number of seconds (1-999) with --aws, got "${opts.timeoutSeconds}"`);
  if (opts.document !== undefined && !/^(arn:[\w+=/,.@:-]+|[a-zA-Z0-9_.-]{3,128})$/.test(opts.document)) throw new InvalidInputError('--document', `"${opts.document}" is not an SSM document name or ARN`);

  let fleetText: string;
  try {
    fleetText = await readFile(opts.fleet, 'utf8');
  } catch (error) {
    throw new InvalidInputError('--fleet', `cannot read the AWS fleet file ${opts.fleet} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const fleet = parseAwsFleetConfig(fleetText, opts.fleet);
  // The stack names its doctor document after itself: the fleet file's stackName says which stack.
  const documentName = opts.document ?? doctorDocumentName(fleet.stackName);
  const runner = fleet.runners.find((r) => r.name === opts.aws);
  if (!runner) throw new InvalidInputError(`runner "${opts.aws}"`, `not in the AWS fleet config (known: ${fleet.runners.map((r) => r.name).join(', ')})`);
  if (runner.hosts.kind === 'config-files') throw new InvalidInputError(`runner "${opts.aws}"`, 'has no SSM hosts');

  const parameters = doctorCommandParameters({
    ConfigPath: runner.hosts.configPath,
    ExpiringDays: opts.expiringDays,
    Shared: opts.shared === true ? 'yes' : 'no',
    Probe: opts.probe ? 'yes' : 'no',
    ProbeTimeout: opts.timeoutSeconds,
  });
  const run = await runFleetDoctor({
    ssm: deps.ssm?.() ?? ssmClient(),
    clock: deps.clock ?? systemClock,
    documentName,
    runner,
    parameters,
    waitMs: waitSeconds * 1000,
    maxConcurrency: fleet.ssm.maxConcurrency,
    pollIntervalMs: deps.pollIntervalMs,
  });
  if (run.waitedOut.length > 0) {
    output.err(
      `rotator doctor: timed out after ${waitSeconds} s (--wait-seconds) waiting for ${run.waitedOut.length} host${run.waitedOut.length === 1 ? '' : 's'} of runner ${runner.name}: ${run.waitedOut.join(', ')}; they are listed as doctor.did-not-run (the command may still finish: ${run.commandIds.join(', ')})`,
    );
  }
  const report = buildFleetReport(run.invocations);
  if (opts.json) {
    for (const line of fleetReportJson(report)) output.out(line);
  } else {
    for (const line of formatFleetReport(report)) output.out(line);
    const notRun = formatFleetNotRun(report);
    if (notRun.length > 0) output.out('');
    for (const line of notRun) output.out(line);
  }
  return fleetExitCode(report);
}

/** Gathers, checks, prints; returns the exit code. Bad arguments throw InvalidInputError (exit 2 in main). */
export async function runDoctor(opts: DoctorCliOptions, output: Output, gather: (o: GatherOptions) => ReturnType<typeof gatherFacts> = gatherFacts): Promise<number> {
  const expiringDays = Number(opts.expiringDays);
  if (!(expiringDays >= 0)) throw new InvalidInputError('--expiring-days', `must be a number of days, 0 or more, got "${opts.expiringDays}"`);
  const timeoutSeconds = Number(opts.timeoutSeconds);
  if (!(timeoutSeconds > 0)) throw new InvalidInputError('--timeout-seconds', `must be a number of seconds above 0, got "${opts.timeoutSeconds}"`);
  if (opts.gitlabUrl !== undefined) checkGitLabUrl(opts.gitlabUrl);
  if (opts.gitlabRunner !== undefined && opts.gitlabRunner.trim() === '') throw new InvalidInputError('--gitlab-runner', 'must name the gitlab-runner program (a path, or a name on PATH)');
  const accessToken = opts.accessTokenFile === undefined ? null : await readAccessToken(opts.accessTokenFile);

  const facts = await gather({
    configPath: opts.config,
    gitlabUrl: opts.gitlabUrl ?? null,
    accessToken,
    shared: opts.shared === true,
    expiringDays,
    timeoutMs: Math.round(timeoutSeconds * 1000),
    gitlabRunner: opts.gitlabRunner,
  });
  const report = runChecks(facts, new Date());
  for (const line of opts.json ? renderJson(report) : renderText(report)) output.out(line);
  return exitCodeFor(report.findings);
}

function checkGitLabUrl(url: string): void {
  gitlabBaseUrl(url, '--gitlab-url');
  const parsed = new URL(url);
  // The host's runner token goes there when the config url rejects it: never in clear text across a network.
  if (parsed.protocol === 'http:' && !LOOPBACK.has(parsed.hostname)) {
    throw new InvalidInputError('--gitlab-url', `must be https:// (http:// only for this machine): the runner token would be sent to ${parsed.host} in clear text`);
  }
}

const LOOPBACK: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The first line of the file, trimmed. The error names the file, never its content. */
async function readAccessToken(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError('--access-token-file', `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const token = text.split('\n')[0]?.trim() ?? '';
  if (token === '' || /\s/.test(token)) throw new InvalidInputError('--access-token-file', `${path} must hold one access token on its first line`);
  return token;
}
