import { parse } from 'smol-toml';
import { InvalidInputError, type InputProblem } from '../core/errors.ts';
import { redactSecrets } from '../core/redact.ts';
import type { ReloadMode } from '../core/types.ts';
import { parseFleetConfig } from './fleet-config.ts';

/** What `rotator init` needs besides config.toml's text. */
export interface FleetFromConfigOptions {
  /** The config.toml read (absolute): the one host each runner gets, and where errors point. */
  configPath: string;
  /** Where the fleet file goes: its own checks name it. */
  fleetPath: string;
  stateDir: string;
  /** The name of this host in status and alerts. */
  hostName: string;
  /** Omitted: the fleet file's default (`sighup`). */
  reload?: ReloadMode;
}

/** A local fleet file (as JSON-ready data) for the runners of one config.toml: names, urls and ids, never tokens. */
export interface FleetFileData {
  stateDir: string;
  defaults?: { reload: ReloadMode };
  runners: Array<{ name: string; gitlabUrl: string; runnerId: number; hosts: Array<{ name: string; config: string }> }>;
}

/**
 * The local engine's fleet file for every `[[runners]]` table of a config.toml: each runner's name from
 * the table's `name` (made a valid, unique runner name), `url` without its trailing slash and `id` (which
 * gitlab-runner writes since 14.x/15.x beside the token). Tokens are never read out of the tables.
 * Every table without a usable url or id is reported at once, and the result is checked as the fleet
 * file would be, so that nothing is written that the engine would refuse.
 */
export function fleetFromRunnerConfig(text: string, options: FleetFromConfigOptions): FleetFileData {
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    // The parser's message quotes the offending lines, which may hold a token: its first line only, redacted.
    throw new InvalidInputError(options.configPath, `not valid TOML (${redactSecrets((error as Error).message.split('\n')[0] ?? '')})`);
  }
  const tables = Array.isArray(document.runners) ? (document.runners as Array<Record<string, unknown>>) : [];
  if (tables.length === 0) throw new InvalidInputError(options.configPath, 'has no [[runners]] table: register a runner first (gitlab-runner register)');
  const problems: InputProblem[] = [];
  const used = new Set<string>();
  const runners: FleetFileData['runners'] = [];
  tables.forEach((table, index) => {
    const where = `[[runners]] #${index + 1}${typeof table.name === 'string' ? ` ("${table.name}")` : ''}`;
    const url = typeof table.url === 'string' ? table.url.trim().replace(/\/+$/, '') : '';
    const id = typeof table.id === 'number' || typeof table.id === 'bigint' ? Number(table.id) : NaN;
    if (url === '') problems.push({ where: `${options.configPath}: ${where}: url`, problem: 'missing' });
    if (!Number.isSafeInteger(id) || id <= 0) {
      problems.push({
        where: `${options.configPath}: ${where}: id`,
        problem: `${table.id === undefined ? 'missing' : `"${String(table.id)}" is not a runner id`} (gitlab-runner 15+ writes it; else find the id under Admin → Runners and add "id = N")`,
      });
    }
    if (url === '' || !Number.isSafeInteger(id) || id <= 0) return;
    const name = uniqueName(typeof table.name === 'string' ? table.name : '', id, used);
    runners.push({ name, gitlabUrl: url, runnerId: id, hosts: [{ name: options.hostName, config: options.configPath }] });
  });
  InvalidInputError.throwIfAny(problems);
  const data: FleetFileData = {
    stateDir: options.stateDir,
    ...(options.reload === undefined ? {} : { defaults: { reload: options.reload } }),
    runners,
  };
  // The checks the engine will make (url form, duplicates): refused now, with nothing written.
  parseFleetConfig(JSON.stringify(data), options.fleetPath);
  return data;
}

/**
 * A runner name from gitlab-runner's `name` (often the host name): characters a runner name may not hold
 * become "-", and a name that is empty or already taken gets the runner id (`build-42`), which is unique.
 */
function uniqueName(raw: string, id: number, used: Set<string>): string {
  const cleaned = raw
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 50)
    .replace(/[.]+$/, '');
  let name = cleaned === '' ? `runner-${id}` : cleaned;
  if (used.has(name)) name = `${name}-${id}`;
  used.add(name);
  return name;
}
