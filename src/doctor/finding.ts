/**
 * What `rotator doctor` reports: findings with a stable code, and the table of every code with its
 * default severity and the fix an operator applies. The host-side document (host/doctor.sh) prints the
 * same codes; src/doctor/fleet-report.ts looks the fix up here.
 *
 * Severities (the exit code is the worst one: error 2, warning 1, info or nothing 0):
 * - error: the runner cannot take jobs now, or the doctor cannot even read what it runs on
 *   (config.*, token.missing/expired/invalid, network.unreachable, tls.untrusted, url.mismatch when the
 *   config url rejects a token that the GitLab named by --gitlab-url accepts, registration.disallowed
 *   when GitLab answers 410 to the runner's own call), and runner.version-too-old (a shared runner with a
 *   gitlab-runner before 17.0.0 on some host: the other hosts disconnect at its next self-rotation).
 * - warning: it works now but will break, or strands other hosts (token.expiring, token.legacy,
 *   self-rotation.enabled, manager.stale, clock.skew, file.mode, url.mismatch in scheme/host/port/path,
 *   registration.disallowed read from the application settings).
 * - info: worth knowing, nothing to do now (url.mismatch by a trailing slash only;
 *   self-rotation.enabled and runner.version-too-old on the host side when the host cannot tell whether
 *   the runner is shared; the fleet report raises them when the runner is on several hosts).
 */

export type Severity = 'error' | 'warning' | 'info';

export const FINDING_CODES = [
  'config.unreadable',
  'config.unparseable',
  'config.no-runners',
  'token.missing',
  'token.legacy',
  'token.expired',
  'token.expiring',
  'token.invalid',
  'registration.disallowed',
  'url.mismatch',
  'clock.skew',
  'tls.untrusted',
  'network.unreachable',
  'self-rotation.enabled',
  'runner.version-too-old',
  'manager.stale',
  'file.mode',
] as const;

export type FindingCode = (typeof FINDING_CODES)[number];

export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** The runner it is about (`name (id N)`, or the url for a GitLab-wide finding); null for the file itself. */
  runner: string | null;
  /** What was seen: paths, urls, statuses, dates. Never a token, never part of one. */
  evidence: string;
  /** What an operator does about it. */
  fix: string;
}

/** A check that could not run, and why (no system_id file, GitLab unreachable, no access token …). */
export interface NotRun {
  check: FindingCode;
  runner: string | null;
  reason: string;
}

export interface CheckSpec {
  severity: Severity;
  /** One line: what the check looks at. */
  detects: string;
  fix: string;
}

/** One entry per code: its default severity, what it detects, and the fix. */
export const CHECKS: Readonly<Record<FindingCode, CheckSpec>> = {
  'config.unreadable': {
    severity: 'error',
    detects: 'config.toml does not exist, is not a regular file, or cannot be read by this user',
    fix: 'Check the path (--config; gitlab-runner as root uses /etc/gitlab-runner/config.toml) and run the doctor as the user gitlab-runner runs as (sudo).',
  },
  'config.unparseable': {
    severity: 'error',
    detects: 'config.toml is not valid TOML (gitlab-runner refuses to load it and keeps its last good config, or fails to start)',
    fix: 'Repair the line named in the evidence, or restore config.toml.bak (the updater keeps it); then `gitlab-runner verify` or SIGHUP.',
  },
  'config.no-runners': {
    severity: 'error',
    detects: 'config.toml has no [[runners]] table: this host takes no jobs',
    fix: 'Register the runner on this host with its authentication token: `gitlab-runner register --url URL --token glrt-…` (the token from GitLab → runner → or from the rotator secret).',
  },
  'token.missing': {
    severity: 'error',
    detects: 'a [[runners]] table has no token (or an empty one)',
    fix: 'Put the runner\'s current token in this table: `host/update-runner-token.sh --config PATH --runner-id ID --url URL --token-file FILE`, or `rotator scan` to re-push it.',
  },
  'token.legacy': {
    severity: 'warning',
    detects: 'the token has no glrt- prefix: the runner was registered with a registration token (legacy workflow, disabled by default from GitLab 17.0)',
    fix: 'Create the runner in GitLab (UI or POST /user/runners), register each host with its glrt- token (`gitlab-runner register --token`), then remove the legacy runner; see "Migrating to the new runner registration workflow".',
  },
  'token.expired': {
    severity: 'error',
    detects: 'token_expires_at (config.toml or GitLab\'s verify reply) is in the past',
    fix: 'An expired token can only be reset by id with an access token: `rotator rotate NAME` with an admin token configured, or GitLab → runner → Reset token, then push it to every host (`rotator adopt`); see docs/operations.md#runbook-token-rejected.',
  },
  'token.expiring': {
    severity: 'warning',
    detects: 'token_expires_at is within --expiring-days (default 7)',
    fix: 'Rotate now (`rotator rotate NAME`, or `aws secretsmanager rotate-secret`) so every host gets the new token in one step; see docs/operations.md#runbook-near-expiry.',
  },
  'token.invalid': {
    severity: 'error',
    detects: 'GitLab answers 403 to POST /runners/verify with this host\'s token and system_id',
    fix: 'Reset the runner\'s token (rotator rotate NAME, or GitLab → runner → Reset token) and push it to every host; see docs/operations.md#runbook-token-rejected.',
  },
  'registration.disallowed': {
    severity: 'warning',
    detects: 'legacy registration is disabled (410 Gone, or allow_runner_registration_token = false) and this runner holds a legacy token: it cannot be re-registered the old way',
    fix: 'Do not re-register with a registration token: create the runner in GitLab (Admin → CI/CD → Runners → New runner, or POST /user/runners), register with `--token glrt-…`, and let the rotator keep that token (`rotator adopt`).',
  },
  'url.mismatch': {
    severity: 'warning',
    detects: 'the url in config.toml is not the GitLab that knows the runner (--gitlab-url): scheme, host, port, path or trailing slash',
    fix: 'Set `url` in this [[runners]] table to the GitLab that knows the runner (the --gitlab-url shown), then SIGHUP gitlab-runner; the rotator\'s fleet file must name the same url.',
  },
  'clock.skew': {
    severity: 'warning',
    detects: 'this host\'s clock differs from GitLab\'s Date header by more than 60 s',
    fix: 'Sync the clock: `timedatectl set-ntp true` (systemd-timesyncd or chrony), check `timedatectl status`; expiry, rotation timing and contacted_at all depend on it.',
  },
  'tls.untrusted': {
    severity: 'error',
    detects: 'GitLab\'s certificate is not signed by a CA this host trusts (x509: certificate signed by unknown authority)',
    fix: 'Put GitLab\'s CA chain in a PEM file and set `tls-ca-file = "/etc/gitlab-runner/certs/ca.crt"` in the [[runners]] table (or drop it at /etc/gitlab-runner/certs/HOST.crt); for the doctor and the rotator set NODE_EXTRA_CA_CERTS=/path/ca.pem. Never set tls_verify = false.',
  },
  'network.unreachable': {
    severity: 'error',
    detects: 'no HTTP reply from GitLab: DNS, connection refused or timeout (told apart in the evidence)',
    fix: 'DNS: check /etc/resolv.conf and the url\'s host name; refused: check the port, GitLab\'s web server and firewalls; timeout: check routes, security groups, proxies (HTTPS_PROXY/NO_PROXY).',
  },
  'self-rotation.enabled': {
    severity: 'warning',
    detects: 'the token expires, FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is not true, and the runner is shared by several hosts: the first host to self-rotate strands all the others',
    fix: 'Set `FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true` in this runner\'s [runners.feature_flags] on every host (the updater does it on the next push: `rotator scan`), and let the rotator rotate the shared token.',
  },
  'runner.version-too-old': {
    severity: 'error',
    detects: 'a shared runner has a host on gitlab-runner older than 17.0.0 (gitlab-runner --version, or the version in GET /runners/:id/managers): it ignores FF_DISABLE_AUTOMATIC_TOKEN_ROTATION, rotates the token itself at 75 % of its lifetime, writes it only to its own config.toml and strands every other host',
    fix: 'Upgrade gitlab-runner to 17.0 or later on every host of the runner (check with `gitlab-runner --version`, or each manager\'s version under the runner in GitLab). Until then, when an old host rotates the token itself every other host disconnects: see docs/operations.md#runbook-token-rejected.',
  },
  'manager.stale': {
    severity: 'warning',
    detects: 'a runner manager (host, by system_id) has not contacted GitLab since the last rotation (token_obtained_at): it most likely holds the old, dead token',
    fix: 'Push the current token to that host (`rotator scan` re-pushes to hosts that missed a rotation; by hand: host/update-runner-token.sh); if the host is gone, ignore it (GitLab removes stale managers after 7 days).',
  },
  'file.mode': {
    severity: 'warning',
    detects: 'config.toml can be read or written by group or others: it holds the runner tokens',
    fix: 'chmod 600 /etc/gitlab-runner/config.toml (owner root, or the user gitlab-runner runs as); the updater keeps the mode from then on.',
  },
};

/** A finding with the table's fix, and its severity unless the check names another. */
export function finding(code: FindingCode, runner: string | null, evidence: string, severity: Severity = CHECKS[code].severity): Finding {
  return { code, severity, runner, evidence, fix: CHECKS[code].fix };
}

const SEVERITY_RANK: Readonly<Record<Severity, number>> = { error: 0, warning: 1, info: 2 };

/** Errors first, then warnings, then info; the table's order of codes within a severity. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || FINDING_CODES.indexOf(a.code) - FINDING_CODES.indexOf(b.code),
  );
}

/** 0 nothing wrong (info only), 1 warnings, 2 errors. Checks that could not run do not change it. */
export function exitCodeFor(findings: ReadonlyArray<Pick<Finding, 'severity'>>): number {
  if (findings.some((f) => f.severity === 'error')) return 2;
  if (findings.some((f) => f.severity === 'warning')) return 1;
  return 0;
}

export function isFindingCode(value: unknown): value is FindingCode {
  return typeof value === 'string' && (FINDING_CODES as readonly string[]).includes(value);
}
