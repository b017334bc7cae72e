import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ConsoleAlertSink } from '../adapters/alerts/console-alert-sink.ts';
import { FileAlertLedger } from '../adapters/local/file-alert-ledger.ts';
import { FileRotationLedger } from '../adapters/local/file-rotation-ledger.ts';
import { SlackWebhook } from '../adapters/alerts/slack-webhook.ts';
import { FileSecretStore } from '../adapters/local/file-secret-store.ts';
import { GitLabAdapter } from '../adapters/gitlab/gitlab.ts';
import { LocalFleet } from '../adapters/local/local-fleet.ts';
import { readTextIfExists } from '../adapters/local/state-files.ts';
import { systemClock } from '../adapters/local/system-clock.ts';
import type { LocalFleetConfig } from '../config/fleet-config.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { Clock, ReplaceTiming, RotationEvents } from '../core/ports.ts';
import type { AlertDeps } from '../core/raise-alert.ts';
import type { RotateNowDeps } from '../core/rotate-now.ts';

export interface LocalEngine {
  config: LocalFleetConfig;
  deps: RotateNowDeps;
  store: FileSecretStore;
  ledger: FileRotationLedger;
  gitlab: GitLabAdapter;
  /** Alerts to stdout (and the Slack webhook when configured), de-duplicated in `<stateDir>/alerts`. */
  alerts: AlertDeps;
}

export interface LocalEngineOptions {
  events: RotationEvents;
  /** Where alert text goes: the CLI's stdout. */
  alertLines: (line: string) => void;
  clock?: Clock;
  gitlab?: GitLabAdapter;
  /** How the `replace` strategy waits for hosts (default: core/replace-steps.ts DEFAULT_REPLACE_TIMING). */
  replace?: ReplaceTiming;
}

/**
 * Wires the core to the local adapters: a file secret store and ledger in the fleet's state folder,
 * GitLab over HTTP, and a fleet that runs the host updater on this machine.
 */
export function createLocalEngine(config: LocalFleetConfig, options: LocalEngineOptions): LocalEngine {
  const clock = options.clock ?? systemClock;
  const store = new FileSecretStore({ dir: join(config.stateDir, 'secrets'), now: () => clock.now() });
  const ledger = new FileRotationLedger(join(config.stateDir, 'ledger'));
  const gitlab = options.gitlab ?? new GitLabAdapter({ sleep: (ms) => clock.sleep(ms), now: () => clock.now().getTime(), pacing: { fromHeaders: true } });
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
    ...(options.replace ? { replace: options.replace } : {}),
  };
  return { config, deps, store, ledger, gitlab, alerts: localAlerts(config, options.alertLines, clock) };
}

function localAlerts(config: LocalFleetConfig, alertLines: (line: string) => void, clock: Clock): AlertDeps {
  const console = new ConsoleAlertSink(alertLines);
  const urlFile = config.alerts.slackWebhookUrlFile;
  const slack = urlFile === undefined ? undefined : new SlackWebhook({ webhookUrl: () => readWebhookUrl(urlFile) });
  return {
    engine: 'local',
    ledger: new FileAlertLedger(join(config.stateDir, 'alerts'), { now: () => clock.now() }),
    clock,
    reminderMs: config.alerts.reminderHours * 3_600_000,
    sink: {
      publish: async (alert) => {
        await console.publish(alert);
        await slack?.publish(alert);
      },
    },
  };
}

async function readWebhookUrl(path: string): Promise<string> {
  const text = await readTextIfExists(path);
  if (text === undefined || text.trim() === '') throw new InvalidInputError(path, 'Slack webhook URL file is missing or empty');
  return text.trim();
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
