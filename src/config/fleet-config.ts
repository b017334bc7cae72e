import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { InvalidInputError } from '../core/errors.ts';
import { validateExpiryPolicy } from '../core/expiry-policy.ts';
import { DEFAULT_EXPIRY_POLICY } from '../core/types.ts';
import type { ExpiryPolicy, ManagedRunner } from '../core/types.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const policySchema = z
  .object({
    rotateAtRemainingShare: z.number().gt(0).lt(1),
    minDaysBeforeExpiry: z.number().min(0),
    maxAgeDaysWithoutExpiry: z.number().gt(0),
  })
  .partial()
  .strict();

const hostSchema = z
  .object({
    name: z.string().min(1).optional(),
    config: z.string().min(1),
  })
  .strict();

const runnerSchema = z
  .object({
    name: z.string().regex(NAME, 'use 1-64 letters, digits, ".", "_" or "-"'),
    gitlabUrl: z.url({ protocol: /^https?$/ }),
    runnerId: z.number().int().positive(),
    hosts: z.array(hostSchema).min(1, 'list at least one host'),
    reload: z.enum(['sighup', 'restart', 'none']).optional(),
    policy: policySchema.optional(),
  })
  .strict();

const fleetSchema = z
  .object({
    stateDir: z.string().min(1),
    adminTokenFile: z.string().min(1).optional(),
    defaults: z
      .object({
        reload: z.enum(['sighup', 'restart', 'none']).optional(),
        policy: policySchema.optional(),
      })
      .strict()
      .optional(),
    runners: z.array(runnerSchema).min(1, 'list at least one runner'),
  })
  .strict();

export interface LocalFleetConfig {
  /** Absolute path of the folder that holds the secret store and ledger. */
  stateDir: string;
  adminTokenFile: string | undefined;
  runners: ManagedRunner[];
}

/**
 * The local engine's fleet file (JSON), checked in full before anything runs. Relative paths are
 * resolved against the file's own folder. Each runner's secret id is its name.
 */
export function parseFleetConfig(text: string, path: string): LocalFleetConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError(path, `not valid JSON (${(error as Error).message})`);
  }
  const parsed = fleetSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? formatPath(issue.path) : '';
    throw new InvalidInputError(`${path}${where ? `: ${where}` : ''}`, issue?.message ?? 'invalid fleet config');
  }
  const base = dirname(resolve(path));
  const fleet = parsed.data;
  const defaultPolicy = { ...DEFAULT_EXPIRY_POLICY, ...fleet.defaults?.policy };
  const seen = new Set<string>();
  const runners = fleet.runners.map((runner, index): ManagedRunner => {
    if (seen.has(runner.name)) throw new InvalidInputError(`${path}: runners[${index}].name`, `"${runner.name}" is used twice`);
    seen.add(runner.name);
    const policy: ExpiryPolicy = validateExpiryPolicy({ ...defaultPolicy, ...runner.policy }, `${path}: runners[${index}].policy`);
    return {
      name: runner.name,
      secretId: runner.name,
      gitlabUrl: runner.gitlabUrl.replace(/\/+$/, ''),
      runnerId: runner.runnerId,
      reload: runner.reload ?? fleet.defaults?.reload ?? 'sighup',
      policy,
      hosts: {
        kind: 'config-files',
        files: runner.hosts.map((host) => {
          const configPath = resolve(base, host.config);
          return { name: host.name ?? configPath, configPath };
        }),
      },
    };
  });
  return {
    stateDir: resolve(base, fleet.stateDir),
    adminTokenFile: fleet.adminTokenFile === undefined ? undefined : resolve(base, fleet.adminTokenFile),
    runners,
  };
}

function formatPath(path: PropertyKey[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`)).join('');
}
