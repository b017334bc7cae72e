import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import { InvalidInputError } from '../core/errors.ts';
import { redactSecrets } from '../core/redact.ts';
import type { GitLabSimulator } from './gitlab-simulator.ts';
import { pollForJobs } from './simulated-fleet.ts';

/** A runner host to try the local engine on: a folder with config.toml and .runner_system_id, whose runners live in the simulator. */
export interface TrialHost {
  configPath: string;
  /** The simulator's runner behind each `[[runners]]` table, in file order. */
  runners: Array<{ id: number; description: string }>;
  /** The simulator's tokens written into config.toml (tests look for them in captured output). */
  tokens: string[];
}

export interface TrialHostOptions {
  /** A config.toml to copy (e.g. this host's own): every table keeps its settings and gets a simulator runner. */
  fromConfig?: string;
  tokenObtainedAt: Date;
  tokenExpiresAt: Date;
}

/**
 * Writes `dir/config.toml` for the simulator's runners, as gitlab-runner would after registering there:
 * from a copy of `fromConfig` when given (each `[[runners]]` table keeps its name, executor and other
 * settings; its url, id and token become a new simulator runner's; the copy is normalized by the TOML
 * writer, so comments are dropped), else one shell runner. The file is written only when none is there
 * (an operator's real config.toml is never overwritten), 0600 like gitlab-runner's. Each runner then polls
 * the simulator once with its token and the host's system_id, as a running gitlab-runner would have.
 */
export async function writeTrialHost(simulator: GitLabSimulator, dir: string, options: TrialHostOptions): Promise<TrialHost> {
  const url = simulator.url;
  const document = options.fromConfig === undefined ? { concurrent: 1, check_interval: 0, runners: [{ name: 'my-runner', executor: 'shell' }] } : await readRunnerConfig(options.fromConfig);
  const tables = document.runners as Array<Record<string, unknown>>;
  const runners: TrialHost['runners'] = [];
  const tokens: string[] = [];
  for (const table of tables) {
    const description = typeof table.name === 'string' ? table.name : 'runner';
    const { id, token } = simulator.addRunner({ description, tokenObtainedAt: options.tokenObtainedAt, tokenExpiresAt: options.tokenExpiresAt });
    Object.assign(table, { url: `${url}/`, id, token, token_obtained_at: options.tokenObtainedAt, token_expires_at: options.tokenExpiresAt });
    runners.push({ id, description });
    tokens.push(token);
  }
  const configPath = join(dir, 'config.toml');
  try {
    await writeFile(configPath, stringify(document), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    throw new InvalidInputError(configPath, 'a config.toml is already here: name an empty folder with --dir', { cause: error });
  }
  const systemId = `s_${randomBytes(6).toString('hex')}`;
  await writeFile(join(dir, '.runner_system_id'), `${systemId}\n`, { mode: 0o600 });
  for (const token of tokens) await pollForJobs(url, token, systemId);
  return { configPath, runners, tokens };
}

async function readRunnerConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError(path, `cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    // The parser's message quotes the offending lines, which may hold a token: its first line only, redacted, and no cause.
    throw new InvalidInputError(path, `not valid TOML (${redactSecrets((error as Error).message.split('\n')[0] ?? '')})`);
  }
  if (!Array.isArray(document.runners) || document.runners.length === 0) throw new InvalidInputError(path, 'has no [[runners]] table to copy');
  return document;
}
