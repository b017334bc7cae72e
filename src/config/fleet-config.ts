import { dirname, resolve } from 'node:path';
import * as z from 'zod/mini';
import type { ManagedRunner } from '../core/types.ts';
import { InvalidInputError } from '../core/errors.ts';
import { checkJsonWith, duplicateRunnerProblems, isRecord, replaceWithoutTokenProblems, runnerBasics, runnerDefaultsShape, runnerEntries, runnerShape } from './config-schema.ts';

const text = () => z.string().check(z.minLength(1));

const hostSchema = z.strictObject({
  name: z.optional(text()),
  config: text(),
});

const fleetSchema = z.strictObject({
  stateDir: text(),
  adminTokenFile: z.optional(text()),
  alerts: z.optional(
    z.strictObject({
      slackWebhookUrlFile: z.optional(text()),
      nearExpiryDays: z.optional(z.number().check(z.gte(0), z.lte(365))),
      reminderHours: z.optional(z.number().check(z.gte(1), z.lte(24 * 30))),
    }),
  ),
  defaults: z.optional(z.strictObject(runnerDefaultsShape)),
  runners: z
    .array(
      z.strictObject({
        ...runnerShape,
        hosts: z.array(hostSchema).check(z.minLength(1, 'list at least one host')),
      }),
    )
    .check(z.minLength(1, 'list at least one runner')),
});

export interface LocalFleetConfig {
  /** Absolute path of the folder that holds the secret store and ledger. */
  stateDir: string;
  adminTokenFile: string | undefined;
  alerts: {
    /** A 0600 file holding a Slack incoming-webhook URL; alerts always go to stdout as well. */
    slackWebhookUrlFile: string | undefined;
    /** Alert when a token expires within this many days and was not rotated. Default 3. */
    nearExpiryDays: number;
    /** Remind of a condition that persists at most this often. Default 24. */
    reminderHours: number;
  };
  runners: ManagedRunner[];
}

/**
 * The local engine's fleet file (JSON), checked in full before anything runs: every problem at once, in one
 * InvalidInputError (one `file: field: problem` line each), the cross-field checks with the schema's. Relative paths are
 * resolved against the file's own folder. Each runner's secret id is its name.
 */
export function parseFleetConfig(text: string, path: string): LocalFleetConfig {
  const { data: fleet, raw, problems } = checkJsonWith(fleetSchema, text, path);
  const entries = runnerEntries(raw);
  const hasAdminToken = isRecord(raw) && typeof raw.adminTokenFile === 'string' && raw.adminTokenFile !== '';
  problems.push(...duplicateRunnerProblems(entries, path), ...replaceWithoutTokenProblems(entries, () => hasAdminToken, path, 'set adminTokenFile'));
  InvalidInputError.throwIfAny(problems);
  if (fleet === undefined) throw new InvalidInputError(path, 'invalid');
  const base = dirname(resolve(path));
  const runners = fleet.runners.map(
    (runner, index): ManagedRunner => ({
      ...runnerBasics(runner, fleet.defaults, `${path}: runners[${index}]`),
      secretId: runner.name,
      hosts: {
        kind: 'config-files',
        files: runner.hosts.map((host) => {
          const configPath = resolve(base, host.config);
          return { name: host.name ?? configPath, configPath };
        }),
      },
    }),
  );
  return {
    stateDir: resolve(base, fleet.stateDir),
    adminTokenFile: fleet.adminTokenFile === undefined ? undefined : resolve(base, fleet.adminTokenFile),
    alerts: {
      slackWebhookUrlFile: fleet.alerts?.slackWebhookUrlFile === undefined ? undefined : resolve(base, fleet.alerts.slackWebhookUrlFile),
      nearExpiryDays: fleet.alerts?.nearExpiryDays ?? 3,
      reminderHours: fleet.alerts?.reminderHours ?? 24,
    },
    runners,
  };
}
