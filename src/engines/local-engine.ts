import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { FileRotationLedger } from '../adapters/file-rotation-ledger.ts';
import { FileSecretStore } from '../adapters/file-secret-store.ts';
import { GitLabAdapter } from '../adapters/gitlab.ts';
import { LocalFleet } from '../adapters/local-fleet.ts';
import { readTextIfExists } from '../adapters/state-files.ts';
import { systemClock } from '../adapters/system-clock.ts';
import type { LocalFleetConfig } from '../config/fleet-config.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { Clock, RotationEvents } from '../core/ports.ts';
import type { RotateNowDeps } from '../core/rotate-now.ts';

export interface LocalEngine {
  config: LocalFleetConfig;
  deps: RotateNowDeps;
  store: FileSecretStore;
  ledger: FileRotationLedger;
  gitlab: GitLabAdapter;
}

export interface LocalEngineOptions {
  events: RotationEvents;
  clock?: Clock;
  gitlab?: GitLabAdapter;
}

/**
 * Wires the core to the local adapters: a file secret store and ledger in the fleet's state folder,
 * GitLab over HTTP, and a fleet that runs the host updater on this machine.
 */
export function createLocalEngine(config: LocalFleetConfig, options: LocalEngineOptions): LocalEngine {
  const clock = options.clock ?? systemClock;
  const store = new FileSecretStore({ dir: join(config.stateDir, 'secrets'), now: () => clock.now() });
  const ledger = new FileRotationLedger(join(config.stateDir, 'ledger'));
  const gitlab = options.gitlab ?? new GitLabAdapter({ sleep: (ms) => clock.sleep(ms) });
  const runners = new Map(config.runners.map((r) => [r.secretId, r]));
  const deps: RotateNowDeps = {
    secrets: store,
    ledger,
    gitlab,
    fleet: new LocalFleet({ secrets: store, clock }),
    clock,
    events: options.events,
    runnerFor: (secretId) => runners.get(secretId),
    adminToken: () => readAdminToken(config.adminTokenFile),
    starter: store,
    newVersionId: () => randomUUID(),
  };
  return { config, deps, store, ledger, gitlab };
}

/** The admin access token for reset-by-id: one line in a file only root can read, read when needed. */
async function readAdminToken(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new InvalidInputError(path, 'admin token file must hold one access token on one line');
  return token;
}
