import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fleetFromRunnerConfig } from '../config/fleet-from-runner-config.ts';
import { InvalidInputError } from '../core/errors.ts';
import { GitLabSimulator } from '../simulator/gitlab-simulator.ts';
import { writeTrialHost } from '../simulator/trial-host.ts';
import type { Output } from './output.ts';

const DAY_MS = 86_400_000;
/** The simulator's runner_token_expiration_interval: a rotated token lives 30 days. */
const LIFETIME_DAYS = 30;

export interface SimulatorCommandOptions {
  /** An empty (or new) folder for config.toml, fleet.json and the state; default a new temp folder. */
  dir?: string;
  /** A config.toml to copy into the folder (tokens replaced by the simulator's); default one shell runner. */
  config?: string;
  /** 0: any free port. */
  port: number;
  /** The trial tokens expire this many days from now (default 3: due at once). */
  expiresInDays: number;
}

/**
 * `rotator simulator`: the built-in GitLab simulator on 127.0.0.1, with a host to try the local engine on:
 * `DIR/config.toml` (a copy of `--config`, or one shell runner) whose tokens the simulator issued 27 days
 * into a 30-day lifetime, and `DIR/fleet.json` for it, written as `rotator init` writes one, with
 * `reload: none` (no gitlab-runner here to reload; an operator's real one is never signalled) and the
 * state in `DIR/state`. Prints the url, the fleet file and the commands to run, then serves until
 * `stopped` settles (SIGINT or SIGTERM in the CLI). The folder is kept. Returns the exit code.
 */
export async function runSimulatorCommand(options: SimulatorCommandOptions, output: Output, stopped: Promise<unknown>): Promise<number> {
  if (!(Number.isFinite(options.expiresInDays) && options.expiresInDays > 0 && options.expiresInDays < LIFETIME_DAYS)) {
    throw new InvalidInputError('--expires-in-days', `must be a number of days above 0 and below ${LIFETIME_DAYS} (the simulator's token lifetime)`);
  }
  const dir = options.dir === undefined ? await mkdtemp(join(tmpdir(), 'rotator-simulator-')) : resolve(options.dir);
  // Both files or neither: an operator's real config.toml or fleet.json is never overwritten.
  for (const file of ['config.toml', 'fleet.json']) {
    if (existsSync(join(dir, file))) throw new InvalidInputError(join(dir, file), 'is already here: name an empty or new folder with --dir');
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: LIFETIME_DAYS * 86_400 });
  let url: string;
  try {
    url = await simulator.start(options.port);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') throw new InvalidInputError('--port', `cannot listen on 127.0.0.1:${options.port} (${code}): pick another port, or 0 for any`, { cause: error });
    throw error;
  }
  try {
    const now = Date.now();
    const host = await writeTrialHost(simulator, dir, {
      fromConfig: options.config === undefined ? undefined : resolve(options.config),
      tokenExpiresAt: new Date(now + options.expiresInDays * DAY_MS),
      tokenObtainedAt: new Date(now + (options.expiresInDays - LIFETIME_DAYS) * DAY_MS),
    });
    const fleetPath = join(dir, 'fleet.json');
    const fleet = fleetFromRunnerConfig(await readFile(host.configPath, 'utf8'), { configPath: host.configPath, fleetPath, stateDir: join(dir, 'state'), hostName: 'trial-host', reload: 'none' });
    await writeFile(fleetPath, `${JSON.stringify(fleet, null, 2)}\n`, { mode: 0o644, flag: 'wx' });

    const names = fleet.runners.map((r) => r.name);
    output.out(`GitLab simulator on ${url} (runner tokens live ${LIFETIME_DAYS} days; this one's expire in ${options.expiresInDays} days)`);
    output.out(`a runner host to try it on: ${host.configPath}${options.config === undefined ? '' : ` (a copy of ${resolve(options.config)}, with the simulator's runners and tokens)`}`);
    output.out(`its fleet file, ${fleetPath}:`);
    for (const line of JSON.stringify(fleet, null, 2).split('\n')) output.out(`  ${line}`);
    output.out('\nIn another terminal (`npm run -s rotator --` where rotator is not installed):');
    output.out(`  export ROTATOR_FLEET=${fleetPath}`);
    output.out(`  rotator adopt ${names[0]}            # store its token, rotate at once`);
    output.out('  rotator status                 # expiry and days left, per runner');
    output.out('  rotator rotate --due           # what the timer runs');
    output.out('\nStop with Ctrl-C. The folder is kept.');
    await stopped;
    output.out(`simulator stopped; files kept in ${dir}`);
    return 0;
  } finally {
    await simulator.stop();
  }
}
