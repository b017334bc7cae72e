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
}

/** The expiry and last rotation of every managed runner, read from the secret store and ledger. */
export async function collectStatus(engine: LocalEngine, now: Date): Promise<RunnerStatus[]> {
  const rows: RunnerStatus[] = [];
  for (const runner of engine.config.runners) {
    if (!(await engine.store.exists(runner.secretId))) {
      rows.push({ runner, adopted: false, expiresAt: null, daysLeft: null, due: false, reason: 'not adopted: run `rotator adopt`', lastRotation: null });
      continue;
    }
    const raw = await engine.store.getValue(runner.secretId, { stage: 'AWSCURRENT' });
    if (raw === undefined) {
      rows.push({ runner, adopted: false, expiresAt: null, daysLeft: null, due: false, reason: 'secret has no AWSCURRENT value', lastRotation: null });
      continue;
    }
    const value = parseSecretValue(raw, `${runner.secretId} AWSCURRENT`);
    const decision = decideRotation(value, runner.policy, now);
    const last = await engine.ledger.lastRotation(runner.secretId);
    rows.push({
      // A `replace` rotation moved the secret to another runner: show the one it holds.
      runner: atRunnerId(runner, value.runnerId),
      adopted: true,
      expiresAt: value.tokenExpiresAt,
      daysLeft: decision.daysLeft,
      due: decision.due,
      reason: decision.reason,
      lastRotation: last?.promotedAt ?? null,
    });
  }
  return rows;
}

export function printStatus(rows: RunnerStatus[], output: Output): void {
  const table = formatTable(
    ['RUNNER', 'URL', 'ID', 'EXPIRES', 'DAYS LEFT', 'DUE', 'HOSTS', 'LAST ROTATION'],
    rows.map((r) => [
      r.runner.name,
      r.runner.gitlabUrl,
      String(r.runner.runnerId),
      r.adopted ? (r.expiresAt ?? 'never') : '-',
      r.daysLeft === null ? '-' : formatDays(r.daysLeft),
      r.adopted ? (r.due ? 'yes' : 'no') : 'not adopted',
      describeHosts(r.runner.hosts),
      r.lastRotation ?? 'never',
    ]),
  );
  for (const line of table) output.out(line);
}
