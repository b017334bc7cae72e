import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fleetFromRunnerConfig, type FleetFileData } from '../config/fleet-from-runner-config.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { ReloadMode } from '../core/types.ts';

export interface InitOptions {
  configPath: string;
  fleetPath: string;
  stateDir: string;
  /** Overwrite an existing fleet file (default: refuse). */
  force?: boolean;
  reload?: ReloadMode;
  hostName?: string;
}

/**
 * `rotator init`: writes the local engine's fleet file for the runners of this host's config.toml.
 * It never copies a token (the engine reads it from config.toml when it adopts), and refuses to replace
 * a fleet file that exists unless `force`. The file holds no secret (paths and ids), but only root reads it:
 * 0600, in a 0700 folder when init makes the folder (docs/install.md).
 */
export async function initFleetFile(options: InitOptions): Promise<FleetFileData> {
  const configPath = resolve(options.configPath);
  const fleetPath = resolve(options.fleetPath);
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT' ? 'no runner config here: name it with --config FILE'
      : code === 'EACCES' ? 'cannot read it (EACCES): run init as root, as gitlab-runner writes config.toml 0600 root'
      : `cannot read it (${code ?? (error as Error).message})`;
    throw new InvalidInputError(configPath, problem, { cause: error });
  }
  const data = fleetFromRunnerConfig(text, {
    configPath,
    fleetPath,
    stateDir: resolve(options.stateDir),
    hostName: options.hostName ?? hostname(),
    reload: options.reload,
  });
  await mkdir(dirname(fleetPath), { recursive: true, mode: 0o700 });
  try {
    await writeFile(fleetPath, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: options.force ? 'w' : 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    throw new InvalidInputError(fleetPath, 'a fleet file is already here: pass --force to replace it, or name another with --fleet FILE', { cause: error });
  }
  return data;
}
