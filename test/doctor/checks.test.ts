/** The pure core: facts in, findings out. Table-driven, no I/O, no mocks. */
import { describe, expect, it } from 'vitest';
import { compareUrls, runChecks } from '../../src/doctor/checks.ts';
import type { DoctorFacts, RunnerFacts } from '../../src/doctor/facts.ts';
import { CHECKS, FINDING_CODES, exitCodeFor, finding, sortFindings } from '../../src/doctor/finding.ts';
import { parseRunnerConfig } from '../../src/doctor/runner-config.ts';
import { isBeforeSelfRotationFlag, versionFromOutput } from '../../src/doctor/runner-version.ts';
import type { RunnerManager } from '../../src/core/types.ts';
import { buildFleetReport } from '../../src/doctor/fleet-report.ts';

const NOW = new Date('2025-06-01T12:00:00.000Z');

function runner(over: Partial<RunnerFacts> = {}): RunnerFacts {
  return {
    index: 1,
    label: 'builders (id 42)',
    name: 'builders',
    id: 42,
    url: 'https://gitlab.example.com/',
    tokenKind: 'glrt',
    tokenObtainedAt: '2025-05-01T00:00:00.000Z',
    tokenExpiresAt: null,
    selfRotationDisabled: true,
    tlsCaFile: null,
    verify: { kind: 'accepted', runnerId: 42, tokenExpiresAt: null },
    verifyAtGitlabUrl: null,
    managers: { kind: 'listed', managers: [] },
    registration: { kind: 'not-run', reason: 'not a legacy token' },
    ...over,
  };
}

function facts(runners: RunnerFacts[], over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    configPath: '/etc/gitlab-runner/config.toml',
    config: { kind: 'parsed', mode: 0o100600, runners },
    gitlabUrl: null,
    probes: [],
    runnerVersion: { kind: 'found', version: '17.5.1' },
    shared: false,
    expiringDays: 7,
    ...over,
  };
}

function manager(systemId: string, version: string | null): RunnerManager {
  return { systemId, contactedAt: '2025-06-01T11:59:00.000Z', status: 'online', version, ipAddress: null };
}

describe('the check table', () => {
  it('has one entry per code, each with a severity, what it detects and a fix', () => {
    expect(Object.keys(CHECKS).sort()).toEqual([...FINDING_CODES].sort());
    for (const code of FINDING_CODES) {
      expect(CHECKS[code].fix.length, code).toBeGreaterThan(20);
      expect(CHECKS[code].detects.length, code).toBeGreaterThan(10);
    }
    expect(CHECKS['token.invalid'].fix).toBe("Reset the runner's token (rotator rotate NAME, or GitLab → runner → Reset token) and push it to every host; see docs/operations.md#runbook-token-rejected.");
  });

  it.each([
    [[], 0],
    [[finding('url.mismatch', 'r', 'trailing slash', 'info')], 0],
    [[finding('file.mode', null, 'mode 0644')], 1],
    [[finding('file.mode', null, 'mode 0644'), finding('token.invalid', 'r', '403')], 2],
  ])('exit code for %j is %i', (findings, code) => {
    expect(exitCodeFor(findings)).toBe(code);
  });

  it('sorts errors first, then warnings, then info', () => {
    const sorted = sortFindings([finding('url.mismatch', 'r', 'x', 'info'), finding('file.mode', null, 'x'), finding('token.invalid', 'r', 'x')]);
    expect(sorted.map((f) => f.code)).toEqual(['token.invalid', 'file.mode', 'url.mismatch']);
  });
});

describe('runChecks', () => {
  it.each([
    ['token expires within the threshold (GitLab wins over config.toml)', runner({ tokenExpiresAt: '2026-01-01T00:00:00.000Z', verify: { kind: 'accepted', runnerId: 42, tokenExpiresAt: '2025-06-03T12:00:00.000Z' } }), 'token.expiring', "token_expires_at 2025-06-03T12:00:00.000Z (GitLab's verify reply) is 2 d away (threshold 7 d)"],
    ['config.toml expiry when verify did not run', runner({ tokenExpiresAt: '2025-05-31T00:00:00.000Z', verify: { kind: 'not-run', reason: 'no system_id' } }), 'token.expired', 'token_expires_at 2025-05-31T00:00:00.000Z (config.toml) passed 1.5 d ago'],
    ['a rejected token', runner({ verify: { kind: 'rejected', status: 403, detail: '403 Forbidden' } }), 'token.invalid', "GitLab at https://gitlab.example.com/ answered 403 to POST /runners/verify with this host's token and system_id: 403 Forbidden"],
    ['managers silent since token_obtained_at', runner({ managers: { kind: 'listed', managers: [{ systemId: 's_a', contactedAt: '2025-04-30T00:00:00.000Z', status: 'stale', version: null, ipAddress: null }, { systemId: 's_b', contactedAt: '2025-06-01T11:59:00.000Z', status: 'online', version: null, ipAddress: null }] } }), 'manager.stale', 'last rotation 2025-05-01T00:00:00.000Z (token_obtained_at in config.toml); silent since then: s_a (contacted_at 2025-04-30T00:00:00.000Z, status stale)'],
  ])('%s', (_name, r, code, evidence) => {
    const report = runChecks(facts([r]), NOW);
    expect(report.findings).toEqual([finding(code as never, 'builders (id 42)', evidence)]);
  });

  it('url.mismatch: scheme and port differences are a warning naming both', () => {
    const report = runChecks(facts([runner({ url: 'http://gitlab.example.com:8080/' })], { gitlabUrl: 'https://gitlab.example.com' }), NOW);
    expect(report.findings).toEqual([finding('url.mismatch', 'builders (id 42)', 'config.toml url http://gitlab.example.com:8080/, --gitlab-url https://gitlab.example.com: scheme http vs https, port 8080 vs default')]);
  });

  it('compareUrls tells a path and a trailing slash apart', () => {
    expect(compareUrls('https://h/gitlab/', 'https://h/gitlab')).toEqual({ differences: ['trailing slash'], trailingSlashOnly: true });
    expect(compareUrls('https://h/', 'https://h/gitlab')).toEqual({ differences: ['path "/" vs "/gitlab"'], trailingSlashOnly: false });
    expect(compareUrls('https://h', 'https://h')).toBeNull();
  });

  it('an unparseable config still checks the file mode and lists the runner checks as not run', () => {
    const report = runChecks(facts([], { config: { kind: 'unparseable', reason: 'line 3, column 9: x', mode: 0o100604 } }), NOW);
    expect(report.findings.map((f) => [f.code, f.evidence])).toEqual([
      ['config.unparseable', '/etc/gitlab-runner/config.toml: line 3, column 9: x'],
      ['file.mode', '/etc/gitlab-runner/config.toml has mode 0604: others may access the runner tokens in it (want 0600)'],
    ]);
    expect(report.notRun.filter((n) => n.reason === 'config.toml is not valid TOML').map((n) => n.check)).toContain('token.invalid');
  });

  it('a GitLab without Date header leaves clock.skew not run', () => {
    const report = runChecks(facts([runner()], { probes: [{ url: 'https://g', caFile: null, runners: [], outcome: { kind: 'reply', status: 401, serverDate: null, localMs: NOW.getTime() } }] }), NOW);
    expect(report.notRun).toContainEqual({ check: 'clock.skew', runner: null, reason: 'no GitLab replied with a Date header' });
  });
});

describe('parseRunnerConfig', () => {
  it('reads the keys the checks need and treats 0001-01-01 as unknown', () => {
    const parsed = parseRunnerConfig(`[[runners]]\n  url = "https://g/"\n  token = "glrt-x"\n  token_expires_at = 0001-01-01T00:00:00Z\n  token_obtained_at = "2025-01-01T00:00:00Z"\n  tls-ca-file = "/ca.pem"\n  feature_flags = { FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true }\n`);
    expect(parsed).toEqual({ kind: 'parsed', runners: [{ index: 1, name: null, id: null, url: 'https://g/', token: 'glrt-x', tokenObtainedAt: '2025-01-01T00:00:00.000Z', tokenExpiresAt: null, selfRotationDisabled: true, tlsCaFile: '/ca.pem' }] });
  });
});

describe('buildFleetReport', () => {
  it('ignores lines that are not JSON, keeps the host\'s notRun list, and flags output cut short', () => {
    const complete = ['bash: warning: setlocale', '{"code":"file.mode","severity":"warning","runner":null,"evidence":"mode 0644"}', '{"runners":[]}', '{"notRun":[{"check":"token.invalid","runner":null,"reason":"not on the host"}]}'].join('\n');
    const report = buildFleetReport([
      { host: 'i-1', status: 'Success', output: complete },
      { host: 'i-2', status: 'Success', output: '{"code":"file.mode","severity":"warning","runner":null,"evidence":"mode 0644"}\n{"runn' },
    ]);
    expect(report.rows.map((r) => [r.host, r.code])).toEqual([
      ['i-2', 'doctor.did-not-run'],
      ['i-1', 'file.mode'],
      ['i-2', 'file.mode'],
    ]);
    expect(report.rows[0]!.evidence).toBe('SSM status Success; the output has no closing {"notRun"} line (cut short, or the doctor did not finish)');
    expect(report.notRun).toEqual([{ host: 'i-1', check: 'token.invalid', runner: null, reason: 'not on the host' }]);
  });
});

describe('gitlab-runner versions', () => {
  it.each([
    ['16.11.0', true],
    ['9.5.0', true],
    ['16.11.0~pre.123.g1a2b3c4d', true],
    ['v16.2.1', true],
    ['17.0.0', false],
    ['17.0.0~pre', false],
    ['17.5.1', false],
    ['100.0.0', false],
    ['development', null],
    ['17.0', null],
  ])('%s is before 17.0.0: %s', (version, before) => {
    expect(isBeforeSelfRotationFlag(version)).toBe(before);
  });

  it('reads the Version: line of gitlab-runner --version, and nothing else', () => {
    expect(versionFromOutput('Version:      16.11.0\nGit revision: 91a27b2a\nGit branch:   16-11-stable\nGO version:   go1.21.9\n')).toBe('16.11.0');
    expect(versionFromOutput('gitlab-runner: command not found\n')).toBeNull();
    expect(versionFromOutput('Version: 16.11.0 $(rm -rf /)\n')).toBeNull();
  });
});

describe('runChecks: runner.version-too-old', () => {
  const shared = { managers: [manager('s_a', '17.1.0'), manager('s_b', '16.11.0')] };

  it('a runner with two managers, one of them on 16.11.0, is an error naming that manager and its version', () => {
    const report = runChecks(facts([runner({ managers: { kind: 'listed', ...shared } })]), NOW);
    expect(report.findings).toEqual([
      finding('runner.version-too-old', 'builders (id 42)', 'gitlab-runner older than 17.0.0 on manager s_b (16.11.0, GET /runners/:id/managers); shared: 2 runner managers (system_ids s_a, s_b)'),
    ]);
    expect(report.findings[0]!.severity).toBe('error');
  });

  it('this host\'s gitlab-runner --version counts as well as the managers\' versions', () => {
    const report = runChecks(facts([runner({ managers: { kind: 'listed', ...shared } })], { runnerVersion: { kind: 'found', version: '16.2.1' } }), NOW);
    expect(report.findings.map((f) => f.evidence)).toEqual([
      'gitlab-runner older than 17.0.0 on this host (16.2.1, gitlab-runner --version), manager s_b (16.11.0, GET /runners/:id/managers); shared: 2 runner managers (system_ids s_a, s_b)',
    ]);
  });

  it.each(['17.0.0', '17.5.1'])('a shared runner whose hosts all run %s has no finding and runs the check', (version) => {
    const report = runChecks(facts([runner({ managers: { kind: 'listed', managers: [manager('s_a', version), manager('s_b', version)] } })], { runnerVersion: { kind: 'found', version } }), NOW);
    expect(report.findings).toEqual([]);
    expect(report.notRun.filter((n) => n.check === 'runner.version-too-old')).toEqual([]);
  });

  it('a runner with one manager is not shared: 16.11.0 is no finding', () => {
    const report = runChecks(facts([runner({ managers: { kind: 'listed', managers: [manager('s_a', '16.11.0')] } })], { runnerVersion: { kind: 'found', version: '16.11.0' } }), NOW);
    expect(report.findings).toEqual([]);
    expect(report.notRun.filter((n) => n.check === 'runner.version-too-old')).toEqual([]);
  });

  it('--shared without the managers list: this host\'s version alone decides, and a recent one leaves the other hosts unchecked', () => {
    const noList = { managers: { kind: 'not-run', reason: 'no access token' } } as const;
    const old = runChecks(facts([runner(noList)], { shared: true, runnerVersion: { kind: 'found', version: '16.11.0' } }), NOW);
    expect(old.findings).toEqual([finding('runner.version-too-old', 'builders (id 42)', 'gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version); shared: the operator says so (--shared)')]);
    const recent = runChecks(facts([runner(noList)], { shared: true }), NOW);
    expect(recent.findings).toEqual([]);
    expect(recent.notRun).toContainEqual({ check: 'runner.version-too-old', runner: 'builders (id 42)', reason: "only this host (17.5.1, gitlab-runner --version) is known (not older than 17.0.0); the other hosts' versions: no access token" });
  });

  it('no version known anywhere: not run, with every reason', () => {
    const report = runChecks(facts([runner({ managers: { kind: 'not-run', reason: 'no access token' } })], { shared: true, runnerVersion: { kind: 'not-run', reason: 'gitlab-runner not found (ENOENT)' } }), NOW);
    expect(report.findings).toEqual([]);
    expect(report.notRun).toContainEqual({ check: 'runner.version-too-old', runner: 'builders (id 42)', reason: 'no gitlab-runner version is known: gitlab-runner not found (ENOENT); no access token' });
  });

  it('managers without a version and an unreadable local version: not run', () => {
    const report = runChecks(facts([runner({ managers: { kind: 'listed', managers: [manager('s_a', null), manager('s_b', null)] } })], { runnerVersion: { kind: 'found', version: 'development' } }), NOW);
    expect(report.notRun).toContainEqual({
      check: 'runner.version-too-old',
      runner: 'builders (id 42)',
      reason: 'no gitlab-runner version is known: gitlab-runner --version printed Version: development, not MAJOR.MINOR.PATCH; GET /runners/:id/managers lists no version for any manager',
    });
  });

  it('an old version on a runner not known to be shared is not run, and says which version it saw', () => {
    const report = runChecks(facts([runner({ managers: { kind: 'not-run', reason: 'no access token' } })], { runnerVersion: { kind: 'found', version: '16.11.0' } }), NOW);
    expect(report.findings).toEqual([]);
    expect(report.notRun).toContainEqual({
      check: 'runner.version-too-old',
      runner: 'builders (id 42)',
      reason: 'this host (16.11.0, gitlab-runner --version) is older than 17.0.0, but cannot tell whether the runner is shared: no access token; or pass --shared',
    });
  });
});

describe('buildFleetReport: runner.version-too-old', () => {
  const line = (key: string) => JSON.stringify({ code: 'runner.version-too-old', severity: 'info', runner: 'builders (id 7)', evidence: 'gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version); shared or not: decided by the fleet report', key });
  const output = (key: string, finding: boolean) => [...(finding ? [line(key)] : []), JSON.stringify({ runners: [key] }), '{"notRun":[]}'].join('\n');

  it('is raised to an error naming the hosts when the runner is on two hosts, and stays info on one', () => {
    const report = buildFleetReport([
      { host: 'i-1', status: 'Success', output: output('https://g#7', true) },
      { host: 'i-2', status: 'Success', output: output('https://g#7', false) },
      { host: 'i-3', status: 'Success', output: output('https://g#8', true) },
    ]);
    expect(report.rows.map((r) => [r.host, r.code, r.severity])).toEqual([
      ['i-1', 'runner.version-too-old', 'error'],
      ['i-3', 'runner.version-too-old', 'info'],
    ]);
    expect(report.rows[0]!.evidence).toBe('gitlab-runner older than 17.0.0 on this host (16.11.0, gitlab-runner --version); shared or not: decided by the fleet report; runner https://g#7 is on 2 hosts: i-1, i-2');
    expect(report.rows[0]!.fix).toBe(CHECKS['runner.version-too-old'].fix);
  });
});
