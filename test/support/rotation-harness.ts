import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitLabAdapter, type GitLabAdapterOptions } from '../../src/adapters/gitlab/gitlab.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import type { RotationEvent, SecretStore } from '../../src/core/ports.ts';
import type { RotateNowDeps } from '../../src/core/rotate-now.ts';
import { parseSecretValue } from '../../src/core/secret-value.ts';
import type { ManagedRunner, RunnerSecretValue } from '../../src/core/types.ts';
import { adoptRunner, findCurrentToken } from '../../src/cli/adopt-command.ts';
import { createLocalEngine, type LocalEngine } from '../../src/engines/local-engine.ts';
import { GitLabSimulator, type AddRunnerInit } from '../../src/simulator/gitlab-simulator.ts';
import { RunnerDaemons } from '../../src/simulator/runner-daemons.ts';
import { createSimulatedFleet, isManagedTable, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { followDaemons, TestClock } from './test-clock.ts';

const DAY_MS = 86_400_000;

export interface HarnessOptions {
  hosts?: number;
  /** Configure an admin access token (a file named in the fleet file), for reset by id. */
  adminToken?: boolean;
  /** Replace the secret store the core sees (fault injection), keeping the real one underneath. */
  wrapStore?: (store: SecretStore) => SecretStore;
  /**
   * GitLab adapter options (e.g. a short requestTimeoutMs). With them, the adapter's pacing also reads the
   * harness clock (`now`); its sleep is always the harness clock's.
   */
  gitlabOptions?: Omit<GitLabAdapterOptions, 'sleep' | 'now'>;
  /** Run the simulator on the harness clock, so that waiting out a rate-limit window passes at once. */
  simulatorOnHarnessClock?: boolean;
  /** The managed runner holds a legacy token (no glrt- prefix), as one registered with a registration token. */
  legacyToken?: boolean;
  /** Settings of the managed runner in GitLab (type, projects, tags…): what a replacement must copy. */
  runnerSettings?: AddRunnerInit;
  /**
   * Ready to rotate by replacement: an `api`-scope admin token, a gitlab-runner polling on every host
   * (`daemons`, followed by the clock: time moves only after a host polled again), and strategy `replace` in the
   * fleet file unless `strategy` is false (`rotator migrate` asks for a replacement itself).
   */
  /**
   * Rotate by replacement, with an access token of the `api` scope: an administrator's unless `admin` is
   * false (a Maintainer's or Owner's: GitLab lets only an admin create an instance runner, enable a locked
   * project runner elsewhere, or delete a project runner of several projects).
   */
  replace?: { confirmWithinMs?: number; strategy?: boolean; admin?: boolean };
}

export interface Harness {
  dir: string;
  simulator: GitLabSimulator;
  fleet: SimulatedFleet;
  engine: LocalEngine;
  deps: RotateNowDeps;
  runner: ManagedRunner;
  events: RotationEvent[];
  /** The text of every alert the local engine printed. */
  alertLines: string[];
  clock: TestClock;
  adminToken: string | undefined;
  /** With `replace`: the hosts' gitlab-runners. */
  daemons: RunnerDaemons | undefined;
  /** The value AWSCURRENT holds now (runner id and token). */
  current(): Promise<RunnerSecretValue>;
  /** The token the given stage or version holds now. */
  tokenAt(ref: { stage: 'AWSCURRENT' | 'AWSPENDING' | 'AWSPREVIOUS' } | { versionId: string }): Promise<string | undefined>;
  /** Every token the run has seen: the fleet's first tokens, every stored version, the admin token. */
  knownTokens(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A runner with 3 hosts (config.toml files) on the GitLab simulator, adopted into a local engine whose
 * parts are all real: GitLab over HTTP, file secret store and ledger, host updater in bash.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'rotation-'));
  const clock = new TestClock();
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400, ...(options.simulatorOnHarnessClock ? { now: () => clock.now() } : {}) });
  await simulator.start();
  const now = Date.now();
  const settings: AddRunnerInit = { ...options.runnerSettings, ...(options.legacyToken ? { legacyToken: true } : {}) };
  const fleet = await withRunnerInit(simulator, 'runner-a', settings, () =>
    createSimulatedFleet(simulator, dir, [
      { name: 'runner-a', hosts: options.hosts ?? 3, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
    ]),
  );
  const adminToken = options.replace
    ? simulator.addAccessToken({ scopes: ['api'], admin: options.replace.admin !== false })
    : options.adminToken
      ? simulator.addAccessToken({ scopes: ['manage_runner'], admin: true })
      : undefined;
  const fleetFile: Record<string, unknown> = { ...fleet.fleetFile(join(dir, 'state'), 'none') };
  if (options.replace && options.replace.strategy !== false) fleetFile.defaults = { ...(fleetFile.defaults as Record<string, unknown>), strategy: 'replace' };
  if (adminToken) {
    await writeFile(join(dir, 'admin-token'), `${adminToken}\n`, { mode: 0o600 });
    fleetFile.adminTokenFile = join(dir, 'admin-token');
  }
  const config = parseFleetConfig(JSON.stringify(fleetFile), join(dir, 'fleet.json'));
  const events: RotationEvent[] = [];
  const alertLines: string[] = [];
  const gitlab = new GitLabAdapter({ ...(options.gitlabOptions ? { ...options.gitlabOptions, now: () => clock.now().getTime() } : {}), sleep: (ms) => clock.sleep(ms) });
  const replace = options.replace ? { confirmWithinMs: options.replace.confirmWithinMs ?? 10_000, pollMs: 20 } : undefined;
  const engine = createLocalEngine(config, { events: (e) => events.push(e), alertLines: (line) => alertLines.push(line), clock, gitlab, replace });
  const daemons = options.replace ? followDaemons(clock, new RunnerDaemons(simulator.url, fleet.hosts, { intervalMs: 20, counts: isManagedTable }).start()) : undefined;
  const deps: RotateNowDeps = options.wrapStore ? { ...engine.deps, secrets: options.wrapStore(engine.store) } : engine.deps;
  const runner = config.runners[0] as ManagedRunner;
  await adoptRunner(engine, runner, await findCurrentToken(runner, undefined), new Date());
  clock.startAfterSetup();

  const tokenAt: Harness['tokenAt'] = async (ref) => {
    const raw = await engine.store.getValue(runner.secretId, ref);
    return raw === undefined ? undefined : parseSecretValue(raw, 'test').token;
  };
  return {
    dir,
    simulator,
    fleet,
    engine,
    deps,
    runner,
    events,
    alertLines,
    clock,
    adminToken,
    daemons,
    tokenAt,
    current: async () => parseSecretValue((await engine.store.getValue(runner.secretId, { stage: 'AWSCURRENT' })) ?? '', 'AWSCURRENT'),
    knownTokens: async () => {
      const stored = await Promise.all((await engine.store.describe(runner.secretId)).versions.map((v) => tokenAt({ versionId: v.versionId })));
      return [...fleet.tokens, ...stored.filter((t): t is string => t !== undefined), ...(adminToken ? [adminToken] : [])];
    },
    close: async () => {
      await daemons?.stopAll();
      await simulator.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `build` (which adds the fleet's runners) with `init` applied to the runner described `name`
 * (a legacy token, a project runner…), as createSimulatedFleet has no option for it.
 */
export async function withRunnerInit<T>(simulator: GitLabSimulator, name: string, init: AddRunnerInit, build: () => Promise<T>): Promise<T> {
  const addRunner = simulator.addRunner.bind(simulator);
  simulator.addRunner = (given) => addRunner(given?.description === name ? { ...given, ...init } : given);
  try {
    return await build();
  } finally {
    simulator.addRunner = addRunner;
  }
}

/** Runs `build` with the runner described `legacyName` on a legacy token; without a name, just runs `build`. */
export async function withLegacyToken<T>(simulator: GitLabSimulator, legacyName: string | undefined, build: () => Promise<T>): Promise<T> {
  return legacyName === undefined ? build() : withRunnerInit(simulator, legacyName, { legacyToken: true }, build);
}

