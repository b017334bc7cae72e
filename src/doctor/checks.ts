/**
 * The doctor's checks: pure functions from gathered facts (facts.ts) and `now` to findings, plus the
 * checks that could not run and why. No I/O, no clock, no token (facts carry none).
 *
 * How each code is decided (the fix text lives in finding.ts):
 * - config.unreadable / config.unparseable / config.no-runners: the file's read, the TOML parse, the
 *   [[runners]] tables.
 * - file.mode: any group or other permission bit (mode & 0o077); gitlab-runner writes 0600.
 * - token.missing / token.legacy: the token key of each table (absent or empty; no glrt- prefix).
 * - token.expired / token.expiring: GitLab's token_expires_at from the verify reply when it answered,
 *   else config.toml's token_expires_at (0001-01-01, gitlab-runner's zero time, means unknown).
 * - token.invalid: verify at the config url answered 403 (and --gitlab-url, when given, did not accept it).
 * - url.mismatch: the config url rejects the token but --gitlab-url accepts it (error); or the two urls
 *   differ in scheme, host, port or path (warning) or only by a trailing slash (info).
 * - registration.disallowed: for a legacy token only: verify answered 410 (error), or the access token
 *   read allow_runner_registration_token = false from GET /application/settings (warning).
 * - clock.skew: the first GitLab that replied: |Date header − this host's clock| > 60 s.
 * - tls.untrusted / network.unreachable: GET /version got no reply; the cause tells them apart.
 * - self-rotation.enabled: a token that expires, FF_DISABLE_AUTOMATIC_TOKEN_ROTATION not true, and a
 *   shared runner (more than one system_id in GET /runners/:id/managers, or --shared).
 * - runner.version-too-old: a shared runner (the same test as self-rotation.enabled) with a gitlab-runner
 *   older than 17.0.0 on any host: this host's `gitlab-runner --version`, and the `version` of each manager
 *   in GET /runners/:id/managers. Compared numerically (major.minor.patch, a `~pre…` suffix ignored).
 *   Whatever the token's expiry now: an admin may set runner_token_expiration_interval at any time, and
 *   the first token after that expires. Not run when no version is known, or when whether the runner
 *   is shared is unknown; also when only this host's version is known and it is recent enough (the
 *   other hosts' versions need the managers list).
 * - manager.stale: a manager whose contacted_at is before config.toml's token_obtained_at.
 */
import { formatDays } from '../core/expiry-policy.ts';
import type { DoctorFacts, ProbeFacts, RunnerFacts, RunnerVersionOutcome, VerifyOutcome } from './facts.ts';
import { finding, sortFindings, type Finding, type FindingCode, type NotRun } from './finding.ts';
import { isBeforeSelfRotationFlag, MIN_SHARED_RUNNER_VERSION } from './runner-version.ts';

export const MAX_CLOCK_SKEW_SECONDS = 60;
const DAY_MS = 86_400_000;

export interface DoctorReport {
  findings: Finding[];
  notRun: NotRun[];
}

/** Codes that are about a runner table: not run at all when config.toml cannot be read or parsed. */
const RUNNER_CODES: readonly FindingCode[] = [
  'token.missing',
  'token.legacy',
  'token.expired',
  'token.expiring',
  'token.invalid',
  'registration.disallowed',
  'url.mismatch',
  'self-rotation.enabled',
  'runner.version-too-old',
  'manager.stale',
];

class Collector {
  readonly findings: Finding[] = [];
  readonly notRun: NotRun[] = [];
  add(f: Finding): void {
    this.findings.push(f);
  }
  skip(check: FindingCode, runner: string | null, reason: string): void {
    this.notRun.push({ check, runner, reason });
  }
}

export function runChecks(facts: DoctorFacts, now: Date): DoctorReport {
  const c = new Collector();
  const config = facts.config;
  if (config.kind === 'unreadable') {
    c.add(finding('config.unreadable', null, `${facts.configPath}: ${config.reason}`));
    const reason = 'config.toml could not be read';
    for (const code of ['config.no-runners', 'file.mode', ...RUNNER_CODES] as const) c.skip(code, null, reason);
  } else {
    checkFileMode(c, facts.configPath, config.mode);
    if (config.kind === 'unparseable') {
      c.add(finding('config.unparseable', null, `${facts.configPath}: ${config.reason}`));
      for (const code of ['config.no-runners', ...RUNNER_CODES] as const) c.skip(code, null, 'config.toml is not valid TOML');
    } else if (config.runners.length === 0) {
      c.add(finding('config.no-runners', null, `${facts.configPath} parses but has no [[runners]] table`));
    } else {
      for (const runner of config.runners) checkRunner(c, runner, facts, now);
    }
  }
  checkProbes(c, facts.probes);
  return { findings: sortFindings(c.findings), notRun: c.notRun };
}

function checkFileMode(c: Collector, path: string, mode: number): void {
  const perms = mode & 0o777;
  if ((perms & 0o077) === 0) return;
  const who = [(perms & 0o070) !== 0 ? 'group' : '', (perms & 0o007) !== 0 ? 'others' : ''].filter(Boolean).join(' and ');
  c.add(finding('file.mode', null, `${path} has mode ${perms.toString(8).padStart(4, '0')}: ${who} may access the runner tokens in it (want 0600)`));
}

function checkRunner(c: Collector, r: RunnerFacts, facts: DoctorFacts, now: Date): void {
  const where = r.url ?? '(no url)';
  if (r.tokenKind === 'missing') {
    c.add(finding('token.missing', r.label, `[[runners]] #${r.index} (url ${where}) has no token key, or an empty one`));
    return;
  }
  if (r.tokenKind === 'legacy') {
    c.add(finding('token.legacy', r.label, `the token of [[runners]] #${r.index} (url ${where}) has no glrt- prefix: a runner token from the legacy registration-token workflow`));
  }
  checkExpiry(c, r, facts.expiringDays, now);
  checkValidity(c, r, facts.gitlabUrl);
  checkRegistration(c, r);
  checkUrl(c, r, facts.gitlabUrl);
  checkSelfRotation(c, r, facts.shared);
  checkRunnerVersion(c, r, facts.runnerVersion, facts.shared);
  checkStaleManagers(c, r);
}

/** GitLab's word when verify answered, else config.toml's. */
function knownExpiry(r: RunnerFacts): { at: string; source: string } | null {
  const answer = acceptedAnswer(r);
  if (answer) return answer.tokenExpiresAt === null ? null : { at: answer.tokenExpiresAt, source: "GitLab's verify reply" };
  return r.tokenExpiresAt === null ? null : { at: r.tokenExpiresAt, source: 'config.toml' };
}

function acceptedAnswer(r: RunnerFacts): Extract<VerifyOutcome, { kind: 'accepted' }> | null {
  if (r.verify.kind === 'accepted') return r.verify;
  if (r.verifyAtGitlabUrl?.kind === 'accepted') return r.verifyAtGitlabUrl;
  return null;
}

function checkExpiry(c: Collector, r: RunnerFacts, expiringDays: number, now: Date): void {
  const expiry = knownExpiry(r);
  if (!expiry) {
    if (!acceptedAnswer(r)) {
      const reason = 'token_expires_at is unknown in config.toml (absent or 0001-01-01) and GitLab did not answer verify';
      c.skip('token.expired', r.label, reason);
      c.skip('token.expiring', r.label, reason);
    }
    return;
  }
  const leftMs = Date.parse(expiry.at) - now.getTime();
  if (leftMs <= 0) {
    c.add(finding('token.expired', r.label, `token_expires_at ${expiry.at} (${expiry.source}) passed ${formatDays(-leftMs / DAY_MS)} ago`));
  } else if (leftMs <= expiringDays * DAY_MS) {
    c.add(finding('token.expiring', r.label, `token_expires_at ${expiry.at} (${expiry.source}) is ${formatDays(leftMs / DAY_MS)} away (threshold ${expiringDays} d)`));
  }
}

function checkValidity(c: Collector, r: RunnerFacts, gitlabUrl: string | null): void {
  const v = r.verify;
  if (v.kind === 'rejected') {
    if (r.verifyAtGitlabUrl?.kind === 'accepted') return; // url.mismatch says it
    const elsewhere = r.verifyAtGitlabUrl ? `; GitLab at ${gitlabUrl} (--gitlab-url) did not accept it either (${describeVerify(r.verifyAtGitlabUrl)})` : '';
    c.add(finding('token.invalid', r.label, `GitLab at ${r.url} answered ${v.status} to POST /runners/verify with this host's token and system_id: ${v.detail}${elsewhere}`));
  } else if (v.kind === 'not-run' || v.kind === 'failed' || (v.kind === 'gone' && r.tokenKind !== 'legacy')) {
    c.skip('token.invalid', r.label, v.kind === 'not-run' ? v.reason : `verify failed: ${v.detail}`);
  }
}

function describeVerify(v: VerifyOutcome): string {
  switch (v.kind) {
    case 'accepted':
      return `accepted as runner ${v.runnerId}`;
    case 'rejected':
      return `${v.status}`;
    case 'gone':
      return '410 Gone';
    case 'failed':
      return v.detail;
    case 'not-run':
      return `not run: ${v.reason}`;
  }
}

function checkRegistration(c: Collector, r: RunnerFacts): void {
  if (r.tokenKind !== 'legacy') return;
  if (r.verify.kind === 'gone') {
    c.add(finding('registration.disallowed', r.label, `GitLab at ${r.url} answered 410 Gone to POST /runners/verify with this runner's legacy token: ${r.verify.detail}`, 'error'));
    return;
  }
  const reg = r.registration;
  if (reg.kind === 'disallowed') {
    c.add(finding('registration.disallowed', r.label, `${reg.source}: legacy registration tokens are refused at ${r.url}, and this runner holds a legacy token (it still works, but cannot be registered again the old way)`));
  } else if (reg.kind === 'not-run') {
    c.skip('registration.disallowed', r.label, reg.reason);
  }
}

/** What differs between two GitLab urls: scheme, host, port, path, or only a trailing slash. */
export function compareUrls(configUrl: string, gitlabUrl: string): { differences: string[]; trailingSlashOnly: boolean } | null {
  let a: URL;
  let b: URL;
  try {
    a = new URL(configUrl);
    b = new URL(gitlabUrl);
  } catch {
    return configUrl === gitlabUrl ? null : { differences: ['not both parseable urls'], trailingSlashOnly: false };
  }
  const differences: string[] = [];
  if (a.protocol !== b.protocol) differences.push(`scheme ${a.protocol.replace(':', '')} vs ${b.protocol.replace(':', '')}`);
  if (a.hostname !== b.hostname) differences.push(`host ${a.hostname} vs ${b.hostname}`);
  if (a.port !== b.port) differences.push(`port ${a.port || 'default'} vs ${b.port || 'default'}`);
  const pathA = a.pathname.replace(/\/+$/, '');
  const pathB = b.pathname.replace(/\/+$/, '');
  if (pathA !== pathB) differences.push(`path "${pathA || '/'}" vs "${pathB || '/'}"`);
  if (differences.length > 0) return { differences, trailingSlashOnly: false };
  if (configUrl.endsWith('/') !== gitlabUrl.endsWith('/')) return { differences: ['trailing slash'], trailingSlashOnly: true };
  return null;
}

function checkUrl(c: Collector, r: RunnerFacts, gitlabUrl: string | null): void {
  if (gitlabUrl === null) return;
  if (r.url === null) {
    c.add(finding('url.mismatch', r.label, `[[runners]] #${r.index} has no url; the GitLab that knows the runner is ${gitlabUrl} (--gitlab-url)`, 'error'));
    return;
  }
  const both = `config.toml url ${r.url}, --gitlab-url ${gitlabUrl}`;
  if (r.verify.kind !== 'accepted' && r.verifyAtGitlabUrl?.kind === 'accepted') {
    c.add(finding('url.mismatch', r.label, `${both}: GitLab at the config url ${r.verify.kind === 'rejected' ? `answered ${r.verify.status} to` : 'did not accept'} POST /runners/verify, GitLab at --gitlab-url accepted the same token as runner ${r.verifyAtGitlabUrl.runnerId}`, 'error'));
    return;
  }
  const diff = compareUrls(r.url, gitlabUrl);
  if (!diff) return;
  if (diff.trailingSlashOnly) {
    c.add(finding('url.mismatch', r.label, `${both}: they differ only by a trailing slash (gitlab-runner and the updater treat them alike)`, 'info'));
  } else {
    c.add(finding('url.mismatch', r.label, `${both}: ${diff.differences.join(', ')}`));
  }
}

/** Why the runner counts as shared (more than one system_id, or --shared), or null. */
function sharedBecause(r: RunnerFacts, shared: boolean): { managers: string[] | null; operator: boolean } | null {
  const systemIds = r.managers.kind === 'listed' ? [...new Set(r.managers.managers.map((m) => m.systemId))] : [];
  if (systemIds.length > 1) return { managers: systemIds, operator: false };
  if (shared) return { managers: null, operator: true };
  return null;
}

/** Why GET /runners/:id/managers gave no list. */
function managersMissing(r: RunnerFacts): string | null {
  if (r.managers.kind === 'listed') return null;
  return r.managers.kind === 'not-run' ? r.managers.reason : `GET /runners/:id/managers failed: ${r.managers.detail}`;
}

function checkSelfRotation(c: Collector, r: RunnerFacts, shared: boolean): void {
  const expiry = knownExpiry(r);
  if (r.selfRotationDisabled || !expiry) return;
  const sharing = sharedBecause(r, shared);
  if (sharing === null) {
    const missing = managersMissing(r);
    if (missing !== null) c.skip('self-rotation.enabled', r.label, `cannot tell whether the runner is shared: ${missing}; or pass --shared`);
    return;
  }
  const why = sharing.managers ? `${sharing.managers.length} runner managers share it (system_ids ${sharing.managers.join(', ')})` : 'the operator says it is shared (--shared)';
  c.add(finding('self-rotation.enabled', r.label, `the token expires (token_expires_at ${expiry.at}, ${expiry.source}), FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is not true in [runners.feature_flags], and ${why}`));
}

/**
 * runner.version-too-old. Evidence (the host document, host/doctor.sh, prints the same words for this
 * host, with `(Shared=yes)` for `(--shared)`):
 * `gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version), manager s_b (16.11.0,
 * GET /runners/:id/managers); shared: 2 runner managers (system_ids s_a, s_b)`.
 */
function checkRunnerVersion(c: Collector, r: RunnerFacts, local: RunnerVersionOutcome, shared: boolean): void {
  const known: KnownVersion[] = [];
  const unknown: string[] = [];
  if (local.kind === 'found') {
    if (isBeforeSelfRotationFlag(local.version) === null) unknown.push(`gitlab-runner --version printed Version: ${local.version}, not MAJOR.MINOR.PATCH`);
    else known.push({ who: 'this host', version: local.version, source: 'gitlab-runner --version' });
  } else {
    unknown.push(local.reason);
  }
  const managers = r.managers.kind === 'listed' ? r.managers.managers : [];
  for (const m of managers) {
    if (m.version !== null && isBeforeSelfRotationFlag(m.version) !== null) known.push({ who: `manager ${m.systemId || '(no system_id)'}`, version: m.version, source: 'GET /runners/:id/managers' });
  }
  const missing = managersMissing(r);
  if (missing !== null) unknown.push(missing);
  else if (known.length === 0) unknown.push('GET /runners/:id/managers lists no version for any manager');

  const old = known.filter((k) => isBeforeSelfRotationFlag(k.version) === true);
  const sharing = sharedBecause(r, shared);
  if (sharing === null) {
    if (missing === null) return; // one system_id or none: not shared
    const seen = old.length > 0 ? `${describeVersions(old)} is older than ${MIN_SHARED_RUNNER_VERSION}, but ` : '';
    c.skip('runner.version-too-old', r.label, `${seen}cannot tell whether the runner is shared: ${missing}; or pass --shared`);
    return;
  }
  if (old.length > 0) {
    const why = sharing.managers ? `${sharing.managers.length} runner managers (system_ids ${sharing.managers.join(', ')})` : 'the operator says so (--shared)';
    c.add(finding('runner.version-too-old', r.label, `gitlab-runner older than ${MIN_SHARED_RUNNER_VERSION} on ${describeVersions(old)}; shared: ${why}`));
    return;
  }
  if (known.length === 0) {
    c.skip('runner.version-too-old', r.label, `no gitlab-runner version is known: ${unknown.join('; ')}`);
  } else if (missing !== null) {
    c.skip('runner.version-too-old', r.label, `only ${describeVersions(known)} is known (not older than ${MIN_SHARED_RUNNER_VERSION}); the other hosts' versions: ${missing}`);
  }
}

interface KnownVersion {
  /** `this host`, or `manager SYSTEM_ID`. */
  who: string;
  version: string;
  source: string;
}

function describeVersions(list: readonly KnownVersion[]): string {
  return list.map((k) => `${k.who} (${k.version}, ${k.source})`).join(', ');
}

function checkStaleManagers(c: Collector, r: RunnerFacts): void {
  if (r.managers.kind !== 'listed') {
    c.skip('manager.stale', r.label, r.managers.kind === 'not-run' ? r.managers.reason : `GET /runners/:id/managers failed: ${r.managers.detail}`);
    return;
  }
  if (r.tokenObtainedAt === null) {
    c.skip('manager.stale', r.label, 'token_obtained_at is unknown in config.toml: no time of the last rotation to compare with');
    return;
  }
  const since = Date.parse(r.tokenObtainedAt);
  const stale = r.managers.managers.filter((m) => m.contactedAt === null || Date.parse(m.contactedAt) < since);
  if (stale.length === 0) return;
  const list = stale.map((m) => `${m.systemId || '(no system_id)'} (contacted_at ${m.contactedAt ?? 'never'}, status ${m.status}${m.ipAddress ? `, ip ${m.ipAddress}` : ''})`);
  c.add(finding('manager.stale', r.label, `last rotation ${r.tokenObtainedAt} (token_obtained_at in config.toml); silent since then: ${list.join('; ')}`));
}

const CAUSE_WORDS: Readonly<Record<string, string>> = {
  dns: 'DNS: the host name does not resolve',
  refused: 'connection refused: nothing listens on that port, or a firewall rejects it',
  timeout: 'timeout: no reply in time (routes, security groups, a proxy that drops packets)',
  other: 'no HTTP reply',
};

function checkProbes(c: Collector, probes: readonly ProbeFacts[]): void {
  let clockChecked = false;
  for (const probe of probes) {
    const who = probe.runners.length > 0 ? probe.runners.join(', ') : probe.url;
    const o = probe.outcome;
    if (o.kind === 'no-reply') {
      const get = `GET ${probe.url.replace(/\/+$/, '')}/api/v4/version`;
      if (o.cause === 'tls') {
        const trusted = probe.caFile ? `the system CAs and tls-ca-file ${probe.caFile} from config.toml` : 'the system CAs (and NODE_EXTRA_CA_CERTS, if set); no tls-ca-file in config.toml';
        c.add(finding('tls.untrusted', who, `${get}: ${o.code}: ${o.detail}; verified against ${trusted}`));
      } else {
        c.add(finding('network.unreachable', who, `${get}: ${CAUSE_WORDS[o.cause]} (${o.code}: ${o.detail})`));
      }
      continue;
    }
    if (clockChecked || o.serverDate === null) continue;
    const serverMs = Date.parse(o.serverDate);
    if (Number.isNaN(serverMs)) continue;
    clockChecked = true;
    const skewSeconds = Math.round((o.localMs - serverMs) / 1000);
    if (Math.abs(skewSeconds) > MAX_CLOCK_SKEW_SECONDS) {
      const direction = skewSeconds > 0 ? 'ahead of' : 'behind';
      c.add(finding('clock.skew', null, `GitLab at ${probe.url} sent Date: ${o.serverDate}; this host's clock read ${new Date(o.localMs).toUTCString()}: ${Math.abs(skewSeconds)} s ${direction} GitLab (limit ${MAX_CLOCK_SKEW_SECONDS} s)`));
    }
  }
  if (!clockChecked) c.skip('clock.skew', null, probes.length === 0 ? 'no GitLab url to ask' : 'no GitLab replied with a Date header');
}
