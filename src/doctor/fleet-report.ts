/**
 * The fleet-wide doctor table from the SSM invocations of the doctor document
 * (src/adapters/aws/doctor-document.ts): one row per host and finding, HOST | CODE | SEVERITY | RUNNER | EVIDENCE,
 * with the fix from finding.ts. Pure: it takes what GetCommandInvocation / ListCommandInvocations
 * returned (instance id, status, standard output), never calls AWS.
 *
 * Choices:
 * - A host's output is complete when it ends with its `{"notRun":[…]}` line. A host whose SSM status is not
 *   Success, or whose output has no such line (SSM keeps only the first 24,000 characters of stdout in
 *   the API; the rest is in S3 when an output bucket is set), gets one row with the code
 *   `doctor.did-not-run` (severity error) naming the status (and the invocation's `detail`, when the
 *   caller has one: StatusDetails, a wait that ended, a SendCommand error): its findings may be missing.
 * - self-rotation.enabled and runner.version-too-old arrive as `info` from a host that cannot know
 *   whether its runner is shared. They are raised here (self-rotation.enabled to a `warning`,
 *   runner.version-too-old to an `error`, their severities in finding.ts) when the same runner (url#id)
 *   is in the `runners` line of two or more hosts, and the evidence names them.
 * - Lines that are not JSON objects are ignored (a shell warning on stdout, for one).
 */
import { formatTable } from '../cli/table.ts';
import { CHECKS, FINDING_CODES, exitCodeFor, isFindingCode, type FindingCode, type NotRun, type Severity } from './finding.ts';

/** Host findings that depend on whether the runner is shared: raised to the table's severity when it is on several hosts. */
const RAISED_WHEN_SHARED: ReadonlySet<FindingCode> = new Set(['self-rotation.enabled', 'runner.version-too-old']);

export interface DoctorInvocation {
  /** The instance id (or a name for it). */
  host: string;
  /** SSM's per-host status: Success, Failed, TimedOut, Cancelled, Undeliverable, … */
  status: string;
  /** StandardOutputContent. */
  output: string;
  /** What the status alone does not say (StatusDetails, the wait that ended, the SendCommand error). */
  detail?: string;
}

export type FleetRowCode = FindingCode | 'doctor.did-not-run';

export interface FleetRow {
  host: string;
  code: FleetRowCode;
  severity: Severity;
  runner: string | null;
  evidence: string;
  fix: string;
}

export interface FleetReport {
  rows: FleetRow[];
  /** Per host: the checks its document could not run. */
  notRun: Array<{ host: string } & NotRun>;
}

const DID_NOT_RUN_FIX = 'Read the invocation\'s full output and stderr (SSM console, or its S3 output bucket); check that the SSM agent is online and bash is installed, then send the document again to that host.';

interface ParsedHost {
  findings: Array<{ code: FindingCode; severity: Severity; runner: string | null; evidence: string; key: string | null }>;
  runners: string[];
  notRun: NotRun[] | null;
}

function parseOutput(output: string): ParsedHost {
  const parsed: ParsedHost = { findings: [], runners: [], notRun: null };
  for (const line of output.split('\n')) {
    let value: unknown;
    try {
      value = JSON.parse(line.trim());
    } catch {
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    const o = value as Record<string, unknown>;
    if (isFindingCode(o.code) && (o.severity === 'error' || o.severity === 'warning' || o.severity === 'info') && typeof o.evidence === 'string') {
      parsed.findings.push({ code: o.code, severity: o.severity, runner: typeof o.runner === 'string' ? o.runner : null, evidence: o.evidence, key: typeof o.key === 'string' ? o.key : null });
    } else if (Array.isArray(o.runners)) {
      parsed.runners = o.runners.filter((r): r is string => typeof r === 'string');
    } else if (Array.isArray(o.notRun)) {
      parsed.notRun = o.notRun.flatMap((n: unknown) => {
        const item = n as Record<string, unknown>;
        return isFindingCode(item.check) && typeof item.reason === 'string' ? [{ check: item.check, runner: typeof item.runner === 'string' ? item.runner : null, reason: item.reason }] : [];
      });
    }
  }
  return parsed;
}

export function buildFleetReport(invocations: readonly DoctorInvocation[]): FleetReport {
  const hosts = invocations.map((inv) => ({ inv, parsed: parseOutput(inv.output) }));
  const hostsByRunner = new Map<string, string[]>();
  for (const { inv, parsed } of hosts) {
    for (const key of new Set(parsed.runners)) hostsByRunner.set(key, [...(hostsByRunner.get(key) ?? []), inv.host]);
  }
  const rows: FleetRow[] = [];
  const notRun: FleetReport['notRun'] = [];
  for (const { inv, parsed } of hosts) {
    if (inv.status !== 'Success' || parsed.notRun === null) {
      const why = `SSM status ${inv.status}${inv.detail === undefined ? '' : ` (${inv.detail})`}`;
      const what =
        parsed.notRun !== null ? 'the output is complete' : inv.status !== 'Success' && inv.output.trim() === '' ? 'no output' : 'the output has no closing {"notRun"} line (cut short, or the doctor did not finish)';
      rows.push({ host: inv.host, code: 'doctor.did-not-run', severity: 'error', runner: null, evidence: `${why}; ${what}`, fix: DID_NOT_RUN_FIX });
    }
    for (const f of parsed.findings) {
      let { severity, evidence } = f;
      if (RAISED_WHEN_SHARED.has(f.code) && f.key !== null) {
        const sharing = hostsByRunner.get(f.key) ?? [];
        if (sharing.length > 1) {
          severity = CHECKS[f.code].severity;
          evidence = `${evidence}; runner ${f.key} is on ${sharing.length} hosts: ${sharing.join(', ')}`;
        }
      }
      rows.push({ host: inv.host, code: f.code, severity, runner: f.runner, evidence, fix: CHECKS[f.code].fix });
    }
    for (const n of parsed.notRun ?? []) notRun.push({ host: inv.host, ...n });
  }
  const rank = (r: FleetRow): number => (r.code === 'doctor.did-not-run' ? -1 : FINDING_CODES.indexOf(r.code));
  const severityRank: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
  rows.sort((a, b) => severityRank[a.severity] - severityRank[b.severity] || rank(a) - rank(b) || a.host.localeCompare(b.host));
  return { rows, notRun };
}

/** 0 nothing wrong (info only), 1 warnings, 2 errors (a host that did not run is an error), as the local doctor. */
export function fleetExitCode(report: FleetReport): number {
  return exitCodeFor(report.rows);
}

/** `--json`: one object per row, then always one `{"notRun":[{"host","check","runner","reason"}]}` object. */
export function fleetReportJson(report: FleetReport): string[] {
  return [
    ...report.rows.map((r) => JSON.stringify({ host: r.host, code: r.code, severity: r.severity, runner: r.runner, evidence: r.evidence, fix: r.fix })),
    JSON.stringify({ notRun: report.notRun.map((n) => ({ host: n.host, check: n.check, runner: n.runner, reason: n.reason })) }),
  ];
}

const MAX_HOSTS_NAMED = 5;

/**
 * The checks the hosts could not run: one line per reason and set of hosts, with the checks it concerns
 * (the four remote-only checks of every host that ran make one line, not four per host).
 */
export function formatFleetNotRun(report: FleetReport): string[] {
  if (report.notRun.length === 0) return [];
  const byCheck = new Map<string, { check: string; reason: string; hosts: Set<string>; runners: Set<string> }>();
  for (const n of report.notRun) {
    const key = JSON.stringify([n.check, n.reason]);
    const entry = byCheck.get(key) ?? { check: n.check, reason: n.reason, hosts: new Set(), runners: new Set() };
    entry.hosts.add(n.host);
    if (n.runner !== null) entry.runners.add(n.runner);
    byCheck.set(key, entry);
  }
  const lines = new Map<string, { checks: string[]; reason: string; hosts: string[]; runners: string[] }>();
  for (const e of byCheck.values()) {
    const hosts = [...e.hosts];
    const runners = [...e.runners];
    const key = JSON.stringify([e.reason, hosts, runners]);
    const line = lines.get(key) ?? { checks: [], reason: e.reason, hosts, runners };
    line.checks.push(e.check);
    lines.set(key, line);
  }
  const out = ['checks not run:'];
  for (const l of lines.values()) {
    const runners = l.runners.length === 0 ? '' : ` [${l.runners.join(', ')}]`;
    const named = l.hosts.length > MAX_HOSTS_NAMED ? `${l.hosts.slice(0, MAX_HOSTS_NAMED).join(', ')} and ${l.hosts.length - MAX_HOSTS_NAMED} more` : l.hosts.join(', ');
    out.push(`  ${l.checks.join(', ')}${runners}: ${l.reason} (${l.hosts.length} host${l.hosts.length === 1 ? '' : 's'}: ${named})`);
  }
  return out;
}

/** The table an operator reads: HOST | CODE | SEVERITY | RUNNER | EVIDENCE (fixes once per code below it). */
export function formatFleetReport(report: FleetReport): string[] {
  if (report.rows.length === 0) return ['No problems found on any host.'];
  const lines = formatTable(
    ['HOST', 'CODE', 'SEVERITY', 'RUNNER', 'EVIDENCE'],
    report.rows.map((r) => [r.host, r.code, r.severity, r.runner ?? '-', r.evidence]),
  );
  const fixes = new Map(report.rows.map((r) => [r.code, r.fix]));
  lines.push('', 'fixes:');
  for (const [code, fix] of fixes) lines.push(`  ${code}: ${fix}`);
  return lines;
}
