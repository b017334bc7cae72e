/** Runs the real host updater with bash on temp copies, for the property tests. */
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { fakeToken, runUpdater as runSupportUpdater, type UpdaterResult } from '../support/host-updater.ts';


/** Fixed so a failure replays; override with PROPERTY_SEED=… to explore. */
export const SEED = Number(process.env.PROPERTY_SEED ?? 20_250_611);

/** Multiplies every property's run count (PROPERTY_RUNS_SCALE=10 for a long exploration). */
export const runs = (n: number): number => Math.max(1, Math.round(n * Number(process.env.PROPERTY_RUNS_SCALE ?? 1)));

export type RunResult = UpdaterResult;

/** Runs `bash update-runner-token.sh args…`; never throws on a non-zero exit. */
export const runUpdater = (args: string[]): Promise<RunResult> => runSupportUpdater(args);

export const newToken = (): string => fakeToken('NEW');

export interface Workspace {
  dir: string;
  config: string;
  tokenFile: string;
  token: string;
  original: Buffer;
}

/** A parent folder for one test file's workspaces (one folder each); `dispose` removes them all. */
export async function workspaces(prefix: string): Promise<{ create(text: string, mode: number): Promise<Workspace>; dispose(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  let n = 0;
  return {
    async create(text, mode) {
      const dir = join(root, String(n++));
      await mkdir(dir);
      const config = join(dir, 'config.toml');
      await writeFile(config, text);
      await chmod(config, mode);
      const token = newToken();
      const tokenFile = join(dir, 'new-token');
      await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
      return { dir, config, tokenFile, token, original: await readFile(config) };
    },
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}

export const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o7777;
export const listing = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();

/** smol-toml's parse made comparable: dates become their TOML text (toJSON keeps the form written). */
export function tomlData(text: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(parse(text))) as Record<string, unknown>;
}

/** Whether smol-toml accepts the text. */
export function tomlAccepts(text: string): boolean {
  try {
    parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Lines with their terminators, so CRLF and a missing final newline are compared too. */
export const linesOf = (text: string): string[] => text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
