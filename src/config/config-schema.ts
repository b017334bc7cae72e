import * as z from 'zod/mini';
import { en } from 'zod/locales';
import { InvalidInputError } from '../core/errors.ts';
import { validateExpiryPolicy } from '../core/expiry-policy.ts';
import { DEFAULT_EXPIRY_POLICY } from '../core/types.ts';
import type { ExpiryPolicy, ReloadMode, RotationStrategy } from '../core/types.ts';

/*
 * The fleet files are checked with zod/mini, zod 4's tree-shakable build: the same checks and messages as
 * `zod` (its English messages are loaded below), at about a tenth of the bundle size (`zod` put 444 KB of
 * minified code in every Lambda bundle). Its functional API: `z.optional(s)` for `s.optional()`,
 * `z._default(s, v)` for `s.default(v)`, `z.strictObject` for `.strict()`, `.check(z.regex(…))` for `.regex(…)`.
 */
z.config(en());

/**
 * A runner name names its secret: the local engine's files `<name>.secret.json`, `<name>.lock`,
 * `<name>.ledger.json` and `<name>.alerts.json` (no ".." in them: state-files.ts
 * checkSecretId), and in AWS the secret `<secretPrefix><name>`, its tag and its construct id. So: 1-64
 * letters, digits, ".", "_" or "-", starting with a letter or digit, with no ".." and no "." at the end
 * (`a.` would make `a..secret.json`). Refused here, naming the field, rather than at the first file it names.
 */
export const RUNNER_NAME_RULE = 'use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit, with no ".." and not ending in "." (the name becomes file names such as <name>.secret.json and the secret name)';
export const runnerName = z.string().check(z.regex(/^(?!.*\.\.)[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_-])?$/, RUNNER_NAME_RULE));
/**
 * A GitLab url as every later stage takes it: the secret value, the host updater's --url and the SSM
 * document's allowedPattern. Lower-case scheme, host, optional port and path; no credentials, query or
 * fragment (refused here rather than after GitLab has already reset the token).
 */
export const gitlabUrl = z.url({ protocol: /^https?$/ }).check(
  z.regex(/^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~/-]*)?$/, 'must be http(s)://host[:port][/path] (lower-case scheme; no credentials, query or fragment)'),
);
export const runnerId = z.int().check(z.positive(), z.lte(9_999_999_999_999, 'must have at most 13 digits'));
export const reloadMode = z.enum(['sighup', 'restart', 'none']);
/** `reset` (default) or `replace` (a new runner beside the old one; needs the admin access token). */
export const rotationStrategy = z.enum(['reset', 'replace']);

export const policySchema = z.strictObject({
  rotateAtRemainingShare: z.optional(z.number().check(z.gt(0), z.lt(1))),
  minDaysBeforeExpiry: z.optional(z.number().check(z.gte(0))),
  maxAgeDaysWithoutExpiry: z.optional(z.number().check(z.gt(0))),
});

export type PolicyInput = z.infer<typeof policySchema>;

/** What a fleet file's `defaults` and each runner may set, local or AWS. */
export const runnerDefaultsShape = { reload: z.optional(reloadMode), strategy: z.optional(rotationStrategy), policy: z.optional(policySchema) };

/** The keys every runner of a fleet file has, local or AWS; each engine adds its hosts. */
export const runnerShape = { name: runnerName, gitlabUrl, runnerId, ...runnerDefaultsShape };

/** Parses JSON text against a schema; the first problem becomes an InvalidInputError naming file and field. */
export function parseJsonWith<S extends z.ZodMiniType>(schema: S, text: string, path: string): z.infer<S> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError(path, `not valid JSON (${(error as Error).message.replace(/\s+/g, ' ')})`);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? formatPath(issue.path) : '';
    throw new InvalidInputError(`${path}${where ? `: ${where}` : ''}`, issue?.message ?? 'invalid');
  }
  return parsed.data;
}

/** The fields of a ManagedRunner that do not depend on the engine, with defaults applied and checked. */
export function runnerBasics(
  runner: { name: string; gitlabUrl: string; runnerId: number; reload?: ReloadMode; policy?: PolicyInput; strategy?: RotationStrategy },
  defaults: { reload?: ReloadMode; policy?: PolicyInput; strategy?: RotationStrategy } | undefined,
  where: string,
): { name: string; gitlabUrl: string; runnerId: number; reload: ReloadMode; policy: ExpiryPolicy; strategy: RotationStrategy } {
  return {
    name: runner.name,
    gitlabUrl: runner.gitlabUrl.replace(/\/+$/, ''),
    runnerId: runner.runnerId,
    reload: runner.reload ?? defaults?.reload ?? 'sighup',
    strategy: runner.strategy ?? defaults?.strategy ?? 'reset',
    policy: validateExpiryPolicy({ ...DEFAULT_EXPIRY_POLICY, ...defaults?.policy, ...runner.policy }, `${where}.policy`),
  };
}

/**
 * The `replace` strategy creates and deletes runners with the admin access token: a runner that asks for it
 * where no such token is configured for its GitLab is refused here, before any rotation could stop on it.
 */
export function checkReplaceHasAccessToken(runners: Array<{ strategy: RotationStrategy; gitlabUrl: string }>, hasToken: (gitlabUrl: string) => boolean, path: string, configure: string): void {
  runners.forEach((runner, index) => {
    if (runner.strategy === 'replace' && !hasToken(runner.gitlabUrl)) {
      throw new InvalidInputError(`${path}: runners[${index}].strategy`, `"replace" creates and deletes runners with an access token: ${configure} for ${runner.gitlabUrl}`);
    }
  });
}

/**
 * Each runner once in a fleet file: by name (it names the secret), and by GitLab runner (url and runner id,
 * compared as gitlabRunnerKey does). Two entries for one GitLab runner would hold two secrets of one token:
 * rotating one kills the token the other holds, which then fails as "expired or revoked".
 */
export function checkUniqueNames(runners: Array<{ name: string; gitlabUrl: string; runnerId: number }>, path: string): void {
  const names = new Set<string>();
  const gitlabRunners = new Map<string, number>();
  runners.forEach((runner, index) => {
    if (names.has(runner.name)) throw new InvalidInputError(`${path}: runners[${index}].name`, `"${runner.name}" is used twice`);
    names.add(runner.name);
    const key = gitlabRunnerKey(runner.gitlabUrl, runner.runnerId);
    const first = gitlabRunners.get(key);
    if (first !== undefined) {
      const other = runners[first];
      throw new InvalidInputError(
        `${path}: runners[${index}].runnerId`,
        `runner ${runner.runnerId} of ${runner.gitlabUrl} is also runners[${first}] ("${other?.name ?? ''}", ${other?.gitlabUrl ?? ''}): list each GitLab runner once`,
      );
    }
    gitlabRunners.set(key, index);
  });
}

/**
 * One GitLab runner, however its url is written: host in lower case, default port dropped, trailing
 * slashes dropped, http or https alike (one host and path is one GitLab and one space of runner ids).
 */
export function gitlabRunnerKey(gitlabUrl: string, runnerId: number): string {
  const url = new URL(gitlabUrl);
  return `${url.hostname}:${url.port || 'default'}${url.pathname.replace(/\/+$/, '')}#${runnerId}`;
}

function formatPath(path: PropertyKey[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`)).join('');
}
