/** The pure core: facts in, findings out. Table-driven, no I/O, no mocks. */
import { describe, expect, it } from 'vitest';
import { compareUrls, runChecks } from '../../src/doctor/checks.ts';
import type { DoctorFacts, RunnerFacts } from '../../src/doctor/facts.ts';
import { CHECKS, FINDING_CODES, exitCodeFor, finding, sortFindings } from '../../src/doctor/finding.ts';
import { parseRunnerConfig } from '../../src/doctor/runner-config.ts';
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
  return { configPath: '/etc/gitlab-runner/config.toml', config: { kind: 'parsed', mode: 0o100600, runners }, gitlabUrl: null, probes: [], shared: false, expiringDays: 7, ...over };
}

describe('the check table', () => {
  it('has one entry per code, each with a severity, what it detects and a fix', () => {
    expect(Object.keys(CHECKS).sort()).toEqual([...FINDING_CODES].sort());
    for (const code of FINDING_CODES) {
      expect(CHECKS[code].fix.length, code).toBeGreaterThan(20);
      expect(CHECKS[code].detects.length, code).toBeGreaterThan(10);
    }
    expect(CHECKS['token.invalid'].fix).toBe("Reset the runner's token (rotator rotate NAME, or GitLab → runner → Reset token) and push it to every host; see README runbook-token-rejected.");
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
