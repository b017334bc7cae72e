import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitLabAdapter, type GitLabAdapterOptions } from '../../src/adapters/gitlab.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import type { RotationEvent, SecretStore } from '../../src/core/ports.ts';
import type { RotateNowDeps } from '../../src/core/rotate-now.ts';
import { parseSecretValue } from '../../src/core/secret-value.ts';
import type { ManagedRunner } from '../../src/core/types.ts';
import { adoptRunner, findCurrentToken } from '../../src/cli/adopt-command.ts';
import { createLocalEngine, type LocalEngine } from '../../src/engines/local-engine.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { createSimulatedFleet, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { manualClock } from './manual-clock.ts';

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
  clock: ReturnType<typeof manualClock>;
  adminToken: string | undefined;
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
  const clock = manualClock();
  const simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400, ...(options.simulatorOnHarnessClock ? { now: () => clock.now() } : {}) });
  await simulator.start();
  const now = Date.now();
  const fleet = await withLegacyToken(simulator, options.legacyToken ? 'runner-a' : undefined, () =>
    createSimulatedFleet(simulator, dir, [
      { name: 'runner-a', hosts: options.hosts ?? 3, tokenObtainedAt: new Date(now - 27 * DAY_MS), tokenExpiresAt: new Date(now + 3 * DAY_MS) },
    ]),
  );
  const adminToken = options.adminToken ? simulator.addAccessToken({ scopes: ['manage_runner'], admin: true }) : undefined;
  const fleetFile: Record<string, unknown> = { ...fleet.fleetFile(join(dir, 'state'), 'none') };
  if (adminToken) {
    await writeFile(join(dir, 'admin-token'), `${adminToken}\n`, { mode: 0o600 });
    fleetFile.adminTokenFile = join(dir, 'admin-token');
  }
  const config = parseFleetConfig(JSON.stringify(fleetFile), join(dir, 'fleet.json'));
  const events: RotationEvent[] = [];
  const alertLines: string[] = [];
  const gitlab = new GitLabAdapter({ ...(options.gitlabOptions ? { ...options.gitlabOptions, now: () => clock.now().getTime() } : {}), sleep: (ms) => clock.sleep(ms) });
  const engine = createLocalEngine(config, { events: (e) => events.push(e), alertLines: (line) => alertLines.push(line), clock, gitlab });
  const deps: RotateNowDeps = options.wrapStore ? { ...engine.deps, secrets: options.wrapStore(engine.store) } : engine.deps;
  const runner = config.runners[0] as ManagedRunner;
  await adoptRunner(engine, runner, await findCurrentToken(runner, undefined), new Date());

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
    tokenAt,
    knownTokens: async () => {
      const stored = await Promise.all((await engine.store.describe(runner.secretId)).versions.map((v) => tokenAt({ versionId: v.versionId })));
      return [...fleet.tokens, ...stored.filter((t): t is string => t !== undefined), ...(adminToken ? [adminToken] : [])];
    },
    close: async () => {
      await simulator.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `build` (which adds the fleet's runners) with the runner described `legacyName` added with a legacy
 * token (no glrt- prefix), as createSimulatedFleet has no option for it. Without a name, just runs `build`.
 */
export async function withLegacyToken<T>(simulator: GitLabSimulator, legacyName: string | undefined, build: () => Promise<T>): Promise<T> {
  if (legacyName === undefined) return build();
  const addRunner = simulator.addRunner.bind(simulator);
  simulator.addRunner = (init) => addRunner(init?.description === legacyName ? { ...init, legacyToken: true } : init);
  try {
    return await build();
  } finally {
    simulator.addRunner = addRunner;
  }
}
