/** Runs the real host updater with bash on temp copies, for the property tests. */
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { fakeToken, writeWorkspace, type UpdaterResult, type UpdaterWorkspace } from '../support/host-updater.ts';

export { linesOf, runUpdater } from '../support/host-updater.ts';


/** Fixed so a failure replays; override with PROPERTY_SEED=… to explore. */
export const SEED = Number(process.env.PROPERTY_SEED ?? 20_250_611);

/** Multiplies every property's run count (PROPERTY_RUNS_SCALE=10 for a long exploration). */
export const runs = (n: number): number => Math.max(1, Math.round(n * Number(process.env.PROPERTY_RUNS_SCALE ?? 1)));

export type RunResult = UpdaterResult;

export const newToken = (): string => fakeToken('NEW');

export type Workspace = UpdaterWorkspace;

/** A parent folder for one test file's workspaces (one folder each); `dispose` removes them all. */
export async function workspaces(prefix: string): Promise<{ create(text: string, mode: number): Promise<Workspace>; dispose(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  let n = 0;
  return {
    async create(text, mode) {
      const dir = join(root, String(n++));
      await mkdir(dir);
      return writeWorkspace(dir, text, mode, newToken());
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


