import { decideRotation, formatDays } from '../core/expiry-policy.ts';
import { parseSecretValue } from '../core/secret-value.ts';
import { atRunnerId, describeHosts, type ManagedRunner } from '../core/types.ts';
import type { LocalEngine } from '../engines/local-engine.ts';
import type { Output } from './output.ts';
import { formatTable } from './table.ts';

export interface RunnerStatus {
  runner: ManagedRunner;
  adopted: boolean;
  expiresAt: string | null;
  daysLeft: number | null;
  due: boolean;
  reason: string;
  lastRotation: string | null;
  /** What keeps this runner's state from being read (its secret or ledger file is broken), and what to do; null when all is well. */
  problem: string | null;
}

/**
 * The expiry and last rotation of every managed runner, read from the secret store and ledger. A runner
 * whose state cannot be read gets a row saying why (`problem`): the others are still shown.
 */
export async function collectStatus(engine: LocalEngine, now: Date): Promise<RunnerStatus[]> {
  const rows: RunnerStatus[] = [];
  for (const runner of engine.config.runners) {
    try {
      rows.push(await runnerStatus(engine, runner, now));
    } catch (error) {
      // As `rotator scan` does: any error reading one runner's state (not valid JSON, no permission…) is that runner's.
      const message = error instanceof Error ? error.message : String(error);
      const fix = (error as { fix?: string }).fix;
      const problem = fix ? `${message} (${fix})` : message;
      rows.push({ runner, adopted: false, expiresAt: null, daysLeft: null, due: false, reason: problem, lastRotation: null, problem });
    }
  }
  return rows;
}

async function runnerStatus(engine: LocalEngine, runner: ManagedRunner, now: Date): Promise<RunnerStatus> {
  const none = { adopted: false, expiresAt: null, daysLeft: null, due: false, lastRotation: null, problem: null };
  if (!(await engine.store.exists(runner.secretId))) return { runner, ...none, reason: 'not adopted: run `rotator adopt`' };
  const raw = await engine.store.getValue(runner.secretId, { stage: 'AWSCURRENT' });
  if (raw === undefined) return { runner, ...none, reason: 'secret has no AWSCURRENT value' };
  const value = parseSecretValue(raw, `${runner.secretId} AWSCURRENT`);
  const decision = decideRotation(value, runner.policy, now);
  const last = await engine.ledger.lastRotation(runner.secretId);
  return {
    // A `replace` rotation moved the secret to another runner: show the one it holds.
    runner: atRunnerId(runner, value.runnerId),
    adopted: true,
    expiresAt: value.tokenExpiresAt,
    daysLeft: decision.daysLeft,
    due: decision.due,
    reason: decision.reason,
    lastRotation: last?.promotedAt ?? null,
    problem: null,
  };
}

/**
 * The status table on stdout. A row whose state cannot be read says so in its DUE column ("unknown: see
 * below"); what is wrong, and what to do, follows the table on stderr, one line per such runner.
 */
export function printStatus(rows: RunnerStatus[], output: Output): void {
  const table = formatTable(
    ['RUNNER', 'URL', 'ID', 'EXPIRES', 'DAYS LEFT', 'DUE', 'HOSTS', 'LAST ROTATION'],
    rows.map((r) => [
      r.runner.name,
      r.runner.gitlabUrl,
      String(r.runner.runnerId),
      r.adopted ? (r.expiresAt ?? 'never') : '-',
      r.daysLeft === null ? '-' : formatDays(r.daysLeft),
      r.problem !== null ? 'unknown: see below' : r.adopted ? (r.due ? 'yes' : 'no') : 'not adopted',
      describeHosts(r.runner.hosts),
      r.problem !== null ? '-' : (r.lastRotation ?? 'never'),
    ]),
  );
  for (const line of table) output.out(line);
  for (const r of rows) if (r.problem !== null) output.err(`[${r.runner.name}] cannot read its state: ${r.problem}`);
}
