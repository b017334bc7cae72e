import * as z from 'zod/mini';
import { en } from 'zod/locales';
import { InvalidInputError, type InputProblem } from '../core/errors.ts';
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

/** A fleet file's text checked against its schema: the data when it holds, and every problem found. */
export interface CheckedJson<T> {
  data: T | undefined;
  /** The parsed JSON, whatever its shape (undefined when the text is not JSON): for the cross-field checks. */
  raw: unknown;
  problems: InputProblem[];
}

/**
 * Checks JSON text against a schema and reports every problem zod finds, not only the first: one
 * `file: field: problem` each, "missing" for a required field that is absent and "unknown field" for each
 * key the schema does not have (a typo, most often).
 */
export function checkJsonWith<S extends z.ZodMiniType>(schema: S, text: string, path: string): CheckedJson<z.infer<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { data: undefined, raw: undefined, problems: [{ where: path, problem: `not valid JSON (${(error as Error).message.replace(/\s+/g, ' ')})` }] };
  }
  // reportInput: an absent field is told from a present one of the wrong type by the issue's input.
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (parsed.success) return { data: parsed.data, raw, problems: [] };
  // One line a field: two checks of one field that both fail (a url that is no url at all) share it.
  const byField = new Map<string, string[]>();
  for (const { where, problem } of parsed.error.issues.flatMap((issue) => problemsOf(issue, path))) byField.set(where, [...(byField.get(where) ?? []), problem]);
  return { data: undefined, raw, problems: [...byField].map(([where, problems]) => ({ where, problem: problems.join('; ') })) };
}

/** Parses JSON text against a schema; every problem goes into one InvalidInputError naming file and field. */
export function parseJsonWith<S extends z.ZodMiniType>(schema: S, text: string, path: string): z.infer<S> {
  const { data, problems } = checkJsonWith(schema, text, path);
  InvalidInputError.throwIfAny(problems);
  return data as z.infer<S>;
}

function problemsOf(issue: z.core.$ZodIssue, path: string): InputProblem[] {
  const at = (keys: PropertyKey[]) => {
    const where = formatPath(keys);
    return where === '' ? path : `${path}: ${where}`;
  };
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ where: at([...issue.path, key]), problem: 'unknown field' }));
  const missing = (issue.code === 'invalid_type' || issue.code === 'invalid_union') && issue.input === undefined;
  return [{ where: at(issue.path), problem: missing ? 'missing' : issue.message.replace(/^Invalid (input|option): /, '') }];
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

/** What the cross-field checks read of one runner entry: each field that is valid on its own, else undefined. */
export interface RunnerEntry {
  name: string | undefined;
  gitlabUrl: string | undefined;
  runnerId: number | undefined;
  strategy: RotationStrategy | undefined;
}

/**
 * The runner entries of a fleet file's JSON, whatever else is wrong with it, so that the cross-field checks
 * (names used twice, `replace` without a token) are reported together with the schema's problems. The
 * strategy is the runner's own or the defaults'.
 */
export function runnerEntries(raw: unknown): RunnerEntry[] {
  const fleet = isRecord(raw) ? raw : {};
  const entries = Array.isArray(fleet.runners) ? (fleet.runners as unknown[]) : [];
  const defaults = isRecord(fleet.defaults) ? fleet.defaults : {};
  return entries.map((entry) => {
    const runner = isRecord(entry) ? entry : {};
    const field = <T>(schema: z.ZodMiniType<T>, value: unknown): T | undefined => {
      const parsed = schema.safeParse(value);
      return parsed.success ? parsed.data : undefined;
    };
    return {
      name: field(runnerName, runner.name),
      gitlabUrl: field(gitlabUrl, runner.gitlabUrl),
      runnerId: field(runnerId, runner.runnerId),
      strategy: field(rotationStrategy, runner.strategy ?? defaults.strategy),
    };
  });
}

/**
 * The `replace` strategy creates and deletes runners with the admin access token: a runner that asks for it
 * where no such token is configured for its GitLab is refused here, before any rotation could stop on it.
 */
export function replaceWithoutTokenProblems(runners: RunnerEntry[], hasToken: (gitlabUrl: string) => boolean, path: string, configure: string): InputProblem[] {
  return runners.flatMap((runner, index) => {
    const url = runner.gitlabUrl?.replace(/\/+$/, '');
    return runner.strategy === 'replace' && url !== undefined && !hasToken(url)
      ? [{ where: `${path}: runners[${index}].strategy`, problem: `"replace" creates and deletes runners with an access token: ${configure} for ${url}` }]
      : [];
  });
}

/**
 * Each runner once in a fleet file: by name (it names the secret), and by GitLab runner (url and runner id,
 * compared as gitlabRunnerKey does). Two entries for one GitLab runner would hold two secrets of one token:
 * rotating one kills the token the other holds, which then fails as "expired or revoked".
 */
export function duplicateRunnerProblems(runners: RunnerEntry[], path: string): InputProblem[] {
  const problems: InputProblem[] = [];
  const names = new Set<string>();
  const gitlabRunners = new Map<string, number>();
  runners.forEach((runner, index) => {
    if (runner.name !== undefined) {
      if (names.has(runner.name)) problems.push({ where: `${path}: runners[${index}].name`, problem: `"${runner.name}" is used twice` });
      names.add(runner.name);
    }
    if (runner.gitlabUrl === undefined || runner.runnerId === undefined) return;
    const key = gitlabRunnerKey(runner.gitlabUrl, runner.runnerId);
    const first = gitlabRunners.get(key);
    if (first === undefined) {
      gitlabRunners.set(key, index);
      return;
    }
    const other = runners[first];
    problems.push({
      where: `${path}: runners[${index}].runnerId`,
      problem: `runner ${runner.runnerId} of ${runner.gitlabUrl} is also runners[${first}] ("${other?.name ?? ''}", ${other?.gitlabUrl ?? ''}): list each GitLab runner once`,
    });
  });
  return problems;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
