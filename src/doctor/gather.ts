/**
 * The doctor's I/O: reads config.toml (mode, text) and `.runner_system_id`, asks GitLab, and returns
 * facts (facts.ts) for the pure checks. Tokens stay in this module: facts carry only their kind.
 *
 * Every request to GitLab goes through the GitLab adapter (src/adapters/gitlab/): one adapter per CA the
 * doctor trusts (a runner's tls-ca-file, or none), so the probe, verify, managers and the settings of a
 * url are all asked with the trust gitlab-runner uses for it, and their errors are the adapter's (tokens
 * scrubbed). Each adapter makes one attempt per request, within --timeout-seconds.
 *
 * What it asks GitLab, and why each call is safe to make on a live runner:
 * - `GET /api/v4/version` without credentials, once per distinct url (+ tls-ca-file): reachability, TLS
 *   trust (with the runner's tls-ca-file, as gitlab-runner would) and the Date header. A 401 is a fine
 *   answer. Changes nothing.
 * - `POST /runners/verify` with the token, as the rotator (system_id `gitlab-runner-token-rotator`,
 *   src/core/rotator-identity.ts), only when GitLab at that url replied to the probe. GitLab refreshes the
 *   runner's contacted_at and the rotator's own manager record; never this host's (a verify in the host's
 *   name would make a dead gitlab-runner look alive), and never a `<legacy>` one.
 * - With --gitlab-url different from the config url and a config url that did not accept the token:
 *   the same verify at --gitlab-url (a token GitLab does not know there is a plain 403; nothing is created).
 * - With --access-token-file: `GET /runners/:id/managers` (after verify) at --gitlab-url, else the config url.
 * - Legacy tokens only, with --access-token-file: `GET /application/settings` for
 *   `allow_runner_registration_token` (admin). Legacy `POST /runners` is never called, not even with
 *   a made-up registration token: it is the call that registers runners.
 *
 * On this host it runs one program: `gitlab-runner --version` (or the command --gitlab-runner names),
 * without a shell, once, when config.toml has a [[runners]] table. Its `Version:` line is kept; a missing
 * binary, a non-zero exit, a timeout or no readable version line makes runner.version-too-old's local
 * half "not run" with the reason, never a crash.
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GitLabForbiddenError, GitLabGoneError, GitLabError, GitLabUnreachableError } from '../core/errors.ts';
import { GitLabAdapter } from '../adapters/gitlab/gitlab.ts';
import { redactSecrets } from '../core/redact.ts';
import { compareUrls } from './checks.ts';
import type {
  DoctorFacts,
  ManagersOutcome,
  ProbeFacts,
  RegistrationOutcome,
  RunnerFacts,
  RunnerVersionOutcome,
  VerifyOutcome,
} from './facts.ts';
import { parseRunnerConfig, runnerLabel, tokenKind, type RunnerTable } from './runner-config.ts';
import { versionFromOutput } from './runner-version.ts';

export interface GatherOptions {
  configPath: string;
  /** The GitLab that knows the runner (--gitlab-url). */
  gitlabUrl?: string | null;
  /** An access token (read_api/manage_runner; admin for the settings) from --access-token-file. */
  accessToken?: string | null;
  shared?: boolean;
  expiringDays?: number;
  /** Per GitLab request; default 10,000 ms. */
  timeoutMs?: number;
  /**
   * The GitLab client trusting `caPem` besides the system CAs (null: the system CAs alone); default a
   * GitLabAdapter with that `caPem`, one attempt per request, `timeoutMs` and `nowMs`.
   */
  gitlab?: (caPem: string | null) => DoctorGitLab;
  /** This host's clock (ms), for the clock-skew probe; default Date.now. */
  nowMs?: () => number;
  /** The gitlab-runner program whose `--version` is read (--gitlab-runner); default `gitlab-runner` on PATH. */
  gitlabRunner?: string;
}

/** What the doctor asks GitLab (GitLabAdapter). */
export type DoctorGitLab = Pick<GitLabAdapter, 'probe' | 'verify' | 'managers' | 'registrationTokenAllowed'>;

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_EXPIRING_DAYS = 7;
export const DEFAULT_GITLAB_RUNNER = 'gitlab-runner';
/** `gitlab-runner --version` answers at once; a binary that hangs is a "not run", not a stuck doctor. */
export const RUNNER_VERSION_TIMEOUT_MS = 10_000;

export async function gatherFacts(options: GatherOptions): Promise<DoctorFacts> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const noRunner: RunnerVersionOutcome = { kind: 'not-run', reason: 'not asked: config.toml names no runner' };
  const base: Omit<DoctorFacts, 'config' | 'probes' | 'runnerVersion'> = {
    configPath: options.configPath,
    gitlabUrl: options.gitlabUrl ?? null,
    shared: options.shared ?? false,
    expiringDays: options.expiringDays ?? DEFAULT_EXPIRING_DAYS,
  };
  const clients = gitlabClients(options.gitlab ?? ((caPem) => new GitLabAdapter({ caPem, maxAttempts: 1, requestTimeoutMs: Math.max(1, timeoutMs), ...(options.nowMs ? { now: options.nowMs } : {}) })));
  const read = await readConfig(options.configPath);
  const gitlabOnly = async (): Promise<ProbeFacts[]> => (base.gitlabUrl === null ? [] : [await probe(base.gitlabUrl, null, [], clients)]);
  if (read.kind === 'unreadable') return { ...base, config: read, probes: await gitlabOnly(), runnerVersion: noRunner };
  const parsed = parseRunnerConfig(read.text);
  if (parsed.kind === 'unparseable') return { ...base, config: { kind: 'unparseable', reason: parsed.reason, mode: read.mode }, probes: await gitlabOnly(), runnerVersion: noRunner };

  const [probes, runnerVersion] = await Promise.all([
    probeAll(parsed.runners, base.gitlabUrl, clients),
    parsed.runners.length === 0 ? noRunner : readRunnerVersion(options.gitlabRunner ?? DEFAULT_GITLAB_RUNNER),
  ]);
  const systemId = await readSystemId(options.configPath);
  const ctx: RunnerContext = { probes, tables: parsed.runners, systemId, clients, gitlabUrl: base.gitlabUrl, accessToken: options.accessToken ?? null };
  const runners: RunnerFacts[] = [];
  for (const table of parsed.runners) runners.push(await runnerFacts(table, ctx));
  return { ...base, config: { kind: 'parsed', mode: read.mode, runners }, probes: [...probes.values()].map((p) => p.facts), runnerVersion };
}

/** `COMMAND --version` without a shell; its `Version:` line, or why there is none. Never throws. */
export function readRunnerVersion(command: string): Promise<RunnerVersionOutcome> {
  const run = `${command} --version`;
  return new Promise((resolve) => {
    execFile(command, ['--version'], { timeout: RUNNER_VERSION_TIMEOUT_MS, maxBuffer: 64 * 1024, windowsHide: true }, (error, stdout) => {
      if (error) {
        const e = error as NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null };
        if (e.code === 'ENOENT') resolve({ kind: 'not-run', reason: `${command} not found (ENOENT): gitlab-runner is not installed here, or not on PATH (--gitlab-runner PATH)` });
        else if (typeof e.code === 'string') resolve({ kind: 'not-run', reason: `${run} could not be run (${e.code})` });
        else if (e.killed === true) resolve({ kind: 'not-run', reason: `${run} did not answer within ${RUNNER_VERSION_TIMEOUT_MS / 1000} s` });
        else resolve({ kind: 'not-run', reason: `${run} failed (${e.signal ? `signal ${e.signal}` : `exit ${String(e.code)}`})` });
        return;
      }
      const version = versionFromOutput(stdout);
      resolve(version === null ? { kind: 'not-run', reason: `${run} printed no readable "Version:" line` } : { kind: 'found', version });
    });
  });
}

async function readConfig(path: string): Promise<{ kind: 'read'; text: string; mode: number } | { kind: 'unreadable'; reason: string }> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return { kind: 'unreadable', reason: 'not a regular file' };
    return { kind: 'read', text: await readFile(path, 'utf8'), mode: info.mode };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
    const words: Record<string, string> = {
      ENOENT: 'does not exist',
      EACCES: 'permission denied (run the doctor as the user gitlab-runner runs as)',
      EPERM: 'operation not permitted',
      ENOTDIR: 'a part of the path is not a directory',
    };
    return { kind: 'unreadable', reason: `${words[code] ?? 'cannot be read'} (${code})` };
  }
}

type SystemId = { kind: 'found'; value: string } | { kind: 'missing'; reason: string };

/** gitlab-runner keeps the host's system_id in `.runner_system_id` next to config.toml. */
async function readSystemId(configPath: string): Promise<SystemId> {
  const file = join(dirname(configPath), '.runner_system_id');
  try {
    const value = (await readFile(file, 'utf8')).split('\n')[0]?.trim() ?? '';
    if (/^[A-Za-z0-9_-]{1,128}$/.test(value)) return { kind: 'found', value };
    return { kind: 'missing', reason: `${file} holds no system_id` };
  } catch (error) {
    return { kind: 'missing', reason: `no ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})` };
  }
}

interface Probed {
  facts: ProbeFacts;
  /** The url without trailing slash, for lookups. */
  key: string;
}

function probeKey(url: string, caFile: string | null): string {
  return `${url.replace(/\/+$/, '')}\u0000${caFile ?? ''}`;
}

/**
 * The tls-ca-file gitlab-runner trusts for `url`: that of the first [[runners]] table with this url
 * (trailing slashes aside), else none. The managers, the settings and a --gitlab-url equal to the config
 * url are asked with it, as the probe and verify of that table are.
 */
function caFileFor(url: string, runners: readonly RunnerTable[]): string | null {
  const bare = url.replace(/\/+$/, '');
  return runners.find((r) => r.url !== null && r.url.replace(/\/+$/, '') === bare)?.tlsCaFile ?? null;
}

/** A url as a report may show it: without the user and password a config url may carry. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@?#]*@/i, '$1');
}

/** The GitLab client per CA file (null: the system CAs), built once, with the file read once. */
interface GitLabClients {
  forCaFile(caFile: string | null): Promise<{ gitlab: DoctorGitLab; caLabel: string | null }>;
}

function gitlabClients(make: (caPem: string | null) => DoctorGitLab): GitLabClients {
  const byFile = new Map<string, Promise<{ gitlab: DoctorGitLab; caLabel: string | null }>>();
  const load = async (caFile: string | null) => {
    if (caFile === null) return { gitlab: make(null), caLabel: null };
    try {
      return { gitlab: make(await readFile(caFile, 'utf8')), caLabel: caFile };
    } catch (error) {
      return { gitlab: make(null), caLabel: `${caFile} (unreadable: ${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  };
  return {
    forCaFile: (caFile) => {
      let client = byFile.get(caFile ?? '');
      if (!client) byFile.set(caFile ?? '', (client = load(caFile)));
      return client;
    },
  };
}

async function probeAll(runners: RunnerTable[], gitlabUrl: string | null, clients: GitLabClients): Promise<Map<string, Probed>> {
  const wanted = new Map<string, { url: string; caFile: string | null; runners: string[] }>();
  for (const r of runners) {
    if (r.url === null) continue;
    const key = probeKey(r.url, r.tlsCaFile);
    const entry = wanted.get(key) ?? { url: r.url, caFile: r.tlsCaFile, runners: [] };
    entry.runners.push(runnerLabel(r));
    wanted.set(key, entry);
  }
  if (gitlabUrl !== null) {
    const caFile = caFileFor(gitlabUrl, runners);
    if (!wanted.has(probeKey(gitlabUrl, caFile))) wanted.set(probeKey(gitlabUrl, caFile), { url: gitlabUrl, caFile, runners: [] });
  }
  const entries = [...wanted.entries()];
  const results = await Promise.all(entries.map(([, w]) => probe(w.url, w.caFile, w.runners, clients)));
  return new Map(entries.map(([key], i) => [key, { facts: results[i]!, key }]));
}

/** GET /api/v4/version through the adapter that trusts `caFile`: reachability, TLS trust and the Date header. */
async function probe(url: string, caFile: string | null, runners: string[], clients: GitLabClients): Promise<ProbeFacts> {
  const { gitlab, caLabel } = await clients.forCaFile(caFile);
  return { url: withoutCredentials(url), caFile: caLabel, runners, outcome: await gitlab.probe(url) };
}

interface RunnerContext {
  probes: Map<string, Probed>;
  /** Every [[runners]] table of the file: whose tls-ca-file a url is asked with (caFileFor). */
  tables: readonly RunnerTable[];
  systemId: SystemId;
  clients: GitLabClients;
  gitlabUrl: string | null;
  accessToken: string | null;
}

async function runnerFacts(r: RunnerTable, ctx: RunnerContext): Promise<RunnerFacts> {
  const kind = tokenKind(r.token);
  const facts: RunnerFacts = {
    index: r.index,
    label: runnerLabel(r),
    name: r.name,
    id: r.id,
    url: r.url === null ? null : withoutCredentials(r.url),
    tokenKind: kind,
    tokenObtainedAt: r.tokenObtainedAt,
    tokenExpiresAt: r.tokenExpiresAt,
    selfRotationDisabled: r.selfRotationDisabled,
    tlsCaFile: r.tlsCaFile,
    verify: { kind: 'not-run', reason: 'no token' },
    verifyAtGitlabUrl: null,
    managers: { kind: 'not-run', reason: 'no token' },
    registration: { kind: 'not-run', reason: 'not a legacy token' },
  };
  if (r.token === null) return facts;
  if (r.url === null) {
    facts.verify = { kind: 'not-run', reason: 'the [[runners]] table has no url' };
  } else {
    facts.verify = await verifyAt(r.url, r.tlsCaFile, r.token, ctx);
  }
  if (ctx.gitlabUrl !== null && facts.verify.kind !== 'accepted' && (r.url === null || compareUrls(r.url, ctx.gitlabUrl)?.trailingSlashOnly === false)) {
    facts.verifyAtGitlabUrl = await verifyAt(ctx.gitlabUrl, caFileFor(ctx.gitlabUrl, ctx.tables), r.token, ctx);
  }
  const answered = facts.verify.kind === 'accepted' ? facts.verify : facts.verifyAtGitlabUrl?.kind === 'accepted' ? facts.verifyAtGitlabUrl : null;
  const knowsRunner = ctx.gitlabUrl ?? r.url;
  facts.managers = await managersOf(r.id ?? answered?.runnerId ?? null, knowsRunner, ctx);
  if (kind === 'legacy') facts.registration = await registrationAt(knowsRunner, ctx);
  return facts;
}

/** Why a url cannot be asked anything: its probe got no reply. */
function unreachable(url: string, caFile: string | null, ctx: RunnerContext): string | null {
  const probed = ctx.probes.get(probeKey(url, caFile));
  if (!probed || probed.facts.outcome.kind === 'reply') return null;
  const o = probed.facts.outcome;
  return `GitLab at ${withoutCredentials(url)} did not reply to GET /version (${o.cause}: ${o.code})`;
}

/** POST /runners/verify as the rotator (never in this host's name: its manager record stays its gitlab-runner's). */
async function verifyAt(url: string, caFile: string | null, token: string, ctx: RunnerContext): Promise<VerifyOutcome> {
  const down = unreachable(url, caFile, ctx);
  if (down) return { kind: 'not-run', reason: down };
  const { gitlab } = await ctx.clients.forCaFile(caFile);
  try {
    const answer = await gitlab.verify(url, token);
    return { kind: 'accepted', runnerId: answer.runnerId, tokenExpiresAt: answer.tokenExpiresAt };
  } catch (error) {
    const detail = errorDetail(error, [token]);
    if (error instanceof GitLabForbiddenError) return { kind: 'rejected', status: error.status ?? 403, detail };
    if (error instanceof GitLabGoneError) return { kind: 'gone', detail };
    return { kind: 'failed', detail };
  }
}

async function managersOf(runnerId: number | null, url: string | null, ctx: RunnerContext): Promise<ManagersOutcome> {
  if (ctx.accessToken === null) return { kind: 'not-run', reason: 'GET /runners/:id/managers needs an access token (--access-token-file, read_api or manage_runner)' };
  if (url === null) return { kind: 'not-run', reason: 'no GitLab url (config.toml or --gitlab-url)' };
  if (runnerId === null) return { kind: 'not-run', reason: 'no runner id: config.toml has no id and GitLab did not answer verify' };
  const caFile = caFileFor(url, ctx.tables);
  const down = unreachable(url, caFile, ctx);
  if (down) return { kind: 'not-run', reason: down };
  const { gitlab } = await ctx.clients.forCaFile(caFile);
  try {
    return { kind: 'listed', managers: await gitlab.managers(url, runnerId, ctx.accessToken) };
  } catch (error) {
    return { kind: 'failed', detail: errorDetail(error, [ctx.accessToken]) };
  }
}

/** allow_runner_registration_token from GET /application/settings (admin); never POST /runners. */
async function registrationAt(url: string | null, ctx: RunnerContext): Promise<RegistrationOutcome> {
  if (ctx.accessToken === null) return { kind: 'not-run', reason: 'reading allow_runner_registration_token (GET /application/settings) needs an admin access token (--access-token-file)' };
  if (url === null) return { kind: 'not-run', reason: 'no GitLab url' };
  const caFile = caFileFor(url, ctx.tables);
  const down = unreachable(url, caFile, ctx);
  if (down) return { kind: 'not-run', reason: down };
  const path = '/application/settings';
  const { gitlab } = await ctx.clients.forCaFile(caFile);
  let allowed: boolean | undefined;
  try {
    allowed = await gitlab.registrationTokenAllowed(url, ctx.accessToken);
  } catch (error) {
    const status = error instanceof GitLabError ? error.status : undefined;
    if (error instanceof GitLabUnreachableError || !(error instanceof GitLabError)) return { kind: 'not-run', reason: `GET ${path}: no reply (${errorDetail(error, [ctx.accessToken])})` };
    if (status === 401 || status === 403) return { kind: 'not-run', reason: `GET ${path} answered ${status}: the access token is not an administrator's` };
    if (status !== undefined && status < 300) return { kind: 'not-run', reason: `GET ${path} did not answer JSON` };
    return { kind: 'not-run', reason: `GET ${path} answered ${status ?? 'no status'} (GitLab before 16.0, or not a GitLab)` };
  }
  if (allowed === undefined) return { kind: 'not-run', reason: `GET ${path} has no allow_runner_registration_token (GitLab before 16.0)` };
  const source = `GET ${path}: allow_runner_registration_token = ${allowed}`;
  return allowed ? { kind: 'allowed', source } : { kind: 'disallowed', source };
}

/** One line for evidence: the adapter's message (already scrubbed), scrubbed again for good measure. */
function errorDetail(error: unknown, secrets: string[]): string {
  if (error instanceof GitLabError) {
    const cause = error.cause as { description?: string; reason?: string } | undefined;
    const words = cause?.description ?? cause?.reason ?? error.message;
    const status = String(error.status ?? 'no reply');
    return redactSecrets(words.startsWith(status) ? words : `${status} ${words}`, secrets);
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return redactSecrets(message.split('\n')[0] ?? '', secrets);
}
