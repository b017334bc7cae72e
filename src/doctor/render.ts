/**
 * How a doctor report is printed.
 * - Text: a table (CODE, SEVERITY, RUNNER, EVIDENCE, FIX), or "No problems found.", then
 *   "checks not run:" with one line per runner and reason listing the codes it kept from running.
 * - `--json`: one JSON object per finding, `{"code","severity","runner","evidence","fix"}`, one a line,
 *   then always one last line `{"notRun":[{"check","runner","reason"}, …]}` (empty list when every
 *   check ran), so a consumer can tell findings (they have `code`) from the not-run list.
 */
import { formatTable } from '../cli/table.ts';
import type { DoctorReport } from './checks.ts';
import type { NotRun } from './finding.ts';

export function renderText(report: DoctorReport): string[] {
  const lines: string[] = [];
  if (report.findings.length === 0) lines.push('No problems found.');
  else {
    lines.push(
      ...formatTable(
        ['CODE', 'SEVERITY', 'RUNNER', 'EVIDENCE', 'FIX'],
        report.findings.map((f) => [f.code, f.severity, f.runner ?? '-', f.evidence, f.fix]),
      ),
    );
  }
  const groups = groupNotRun(report.notRun);
  if (groups.length > 0) {
    lines.push('', 'checks not run:');
    for (const g of groups) lines.push(`  ${g.checks.join(', ')}${g.runner ? ` [${g.runner}]` : ''}: ${g.reason}`);
  }
  return lines;
}

export function renderJson(report: DoctorReport): string[] {
  return [
    ...report.findings.map((f) => JSON.stringify({ code: f.code, severity: f.severity, runner: f.runner, evidence: f.evidence, fix: f.fix })),
    JSON.stringify({ notRun: report.notRun }),
  ];
}

/** Not-run checks grouped by runner and reason, so one cause is one line. */
export function groupNotRun(notRun: readonly NotRun[]): Array<{ runner: string | null; reason: string; checks: string[] }> {
  const groups = new Map<string, { runner: string | null; reason: string; checks: string[] }>();
  for (const n of notRun) {
    const key = `${n.runner ?? ''}\u0000${n.reason}`;
    const group = groups.get(key) ?? { runner: n.runner, reason: n.reason, checks: [] };
    if (!group.checks.includes(n.check)) group.checks.push(n.check);
    groups.set(key, group);
  }
  return [...groups.values()];
}
