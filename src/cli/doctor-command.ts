/**
 * `rotator doctor`: why is this runner offline? Reads one host's config.toml, asks GitLab what it may
 * ask without changing anything but this host's own contacted_at (see src/doctor/gather.ts), and prints
 * one finding per problem with its evidence and fix (src/doctor/render.ts for the formats).
 *
 * Exit codes: 0 nothing wrong (info findings only), 1 warnings, 2 errors (also bad arguments, as the
 * rest of the CLI). Checks that could not run are listed and do not change the exit code.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../core/errors.ts';
import { runChecks } from '../doctor/checks.ts';
import { exitCodeFor } from '../doctor/finding.ts';
import { DEFAULT_EXPIRING_DAYS, DEFAULT_TIMEOUT_MS, gatherFacts, type GatherOptions } from '../doctor/gather.ts';
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
}

export const DEFAULT_CONFIG_PATH = '/etc/gitlab-runner/config.toml';

export function registerDoctorCommand(program: Command, output: Output, setExitCode: (code: number) => void): void {
  program
    .command('doctor')
    .description("why is this runner offline? checks this host's config.toml and what GitLab says about its tokens (read-only)")
    .option('--config <path>', "gitlab-runner's config.toml", DEFAULT_CONFIG_PATH)
    .option('--gitlab-url <url>', 'the GitLab that knows the runner (compared with the url in config.toml)')
    .option('--access-token-file <path>', 'a file holding an access token (read_api or manage_runner; admin for the registration setting): enables manager.stale, sharing and registration checks')
    .option('--shared', 'the runners of this config.toml are shared by several hosts (when no access token can tell)')
    .option('--expiring-days <days>', 'token.expiring fires this many days before expiry', String(DEFAULT_EXPIRING_DAYS))
    .option('--timeout-seconds <seconds>', 'per GitLab request', String(DEFAULT_TIMEOUT_MS / 1000))
    .option('--json', 'one JSON object per finding, then one {"notRun": [...]} object')
    .action(async (opts: DoctorCliOptions) => {
      setExitCode(await runDoctor(opts, output));
    });
}

/** Gathers, checks, prints; returns the exit code. Bad arguments throw InvalidInputError (exit 2 in main). */
export async function runDoctor(opts: DoctorCliOptions, output: Output, gather: (o: GatherOptions) => ReturnType<typeof gatherFacts> = gatherFacts): Promise<number> {
  const expiringDays = Number(opts.expiringDays);
  if (!(expiringDays >= 0)) throw new InvalidInputError('--expiring-days', `must be a number of days, 0 or more, got "${opts.expiringDays}"`);
  const timeoutSeconds = Number(opts.timeoutSeconds);
  if (!(timeoutSeconds > 0)) throw new InvalidInputError('--timeout-seconds', `must be a number of seconds above 0, got "${opts.timeoutSeconds}"`);
  if (opts.gitlabUrl !== undefined) checkGitLabUrl(opts.gitlabUrl);
  const accessToken = opts.accessTokenFile === undefined ? null : await readAccessToken(opts.accessTokenFile);

  const facts = await gather({
    configPath: opts.config,
    gitlabUrl: opts.gitlabUrl ?? null,
    accessToken,
    shared: opts.shared === true,
    expiringDays,
    timeoutMs: Math.round(timeoutSeconds * 1000),
  });
  const report = runChecks(facts, new Date());
  for (const line of opts.json ? renderJson(report) : renderText(report)) output.out(line);
  return exitCodeFor(report.findings);
}

function checkGitLabUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError('--gitlab-url', `"${url}" is not a url`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new InvalidInputError('--gitlab-url', 'must start with http:// or https://');
  if (parsed.username || parsed.password) throw new InvalidInputError('--gitlab-url', 'must not carry credentials');
}

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
