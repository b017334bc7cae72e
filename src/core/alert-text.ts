import type { Alert, AlertHost } from './alerts.ts';

/**
 * Where the runbook sections live (`#runbook-<kind>`, one per alert kind), as a path in this repository,
 * unless a deployment names that document's URL (RUNBOOK_URL, see lambda-environment.ts).
 */
export const DEFAULT_RUNBOOK_DOCUMENT = 'docs/operations.md';

export interface AlertTextOptions {
  /**
   * The document the runbook anchors point into: an http(s) URL of the repository's docs/operations.md.
   * Default `docs/operations.md`. (Named readmeUrl from when the runbooks lived in README.md.)
   */
  readmeUrl?: string;
  /** Rows of the hosts table before "and N more". Default: every host. */
  maxHosts?: number;
}

const WIDTH = 100;
const LABEL = 11;

/**
 * The plain-text rendering of an alert, for e-mail (SNS) and the local engine's stdout: a title line, the
 * summary, then labelled lines and a hosts table, wrapped to 100 columns. Alerts never carry a token, and
 * nothing here adds one.
 */
export function alertText(alert: Alert, options: AlertTextOptions = {}): string {
  const lines = [`${alert.severity.toUpperCase()} ${alert.kind}: ${oneLine(alert.runner)}`, ...wrap(oneLine(alert.summary), WIDTH)];
  if (alert.reminder) lines.push(`Reminder: still unresolved since ${alert.since}.`);
  lines.push('', labelled('Runner', alert.runner), labelled('Secret', alert.secretId), labelled('Since', alert.since));
  lines.push(...hostLines(alert.hosts, options.maxHosts ?? Number.POSITIVE_INFINITY));
  lines.push(labelled('Next step', alert.nextStep), labelled('Runbook', runbookLink(alert.runbook, options.readmeUrl)));
  if (alert.logUrl) lines.push(labelled('Logs', alert.logUrl));
  return lines.join('\n');
}

/**
 * `<document>#<anchor>`, the document's own fragment dropped; `runbook` may be the bare anchor, `#anchor` or
 * `<file>#anchor`.
 */
export function runbookLink(runbook: string, readmeUrl: string = DEFAULT_RUNBOOK_DOCUMENT): string {
  const anchor = runbook.slice(runbook.lastIndexOf('#') + 1);
  return `${readmeUrl.replace(/#.*$/, '')}#${anchor}`;
}

/** Control characters and runs of whitespace become one space: every field stays on its line. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim();
}

function labelled(label: string, value: string): string {
  const [first = '', ...rest] = wrap(oneLine(value), WIDTH - LABEL);
  return [`${`${label}:`.padEnd(LABEL)}${first}`, ...rest.map((line) => `${' '.repeat(LABEL)}${line}`)].join('\n');
}

function hostLines(hosts: AlertHost[], maxHosts: number): string[] {
  if (hosts.length === 0) return [labelled('Hosts', 'none named')];
  const shown = hosts.slice(0, maxHosts);
  const rows = shown.map((h) => [oneLine(h.host), oneLine(h.systemId ?? '-'), h.status, oneLine(h.detail) || '-']);
  const header = ['HOST', 'SYSTEM_ID', 'STATUS', 'DETAIL'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const row = (cells: string[]) => `  ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
  const more = hosts.length - shown.length;
  return [
    labelled('Hosts', String(hosts.length)),
    row(header),
    row(widths.map((w) => '-'.repeat(w))),
    ...rows.map(row),
    ...(more > 0 ? [`  and ${more} more`] : []),
  ];
}

/** Greedy word wrap; a word longer than the width (a URL, an ARN) keeps its own line unbroken. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines;
}
