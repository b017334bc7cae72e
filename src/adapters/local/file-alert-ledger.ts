import { join } from 'node:path';
import { InvalidInputError } from '../../core/errors.ts';
import type { AlertLedger, AlertState } from '../../core/ports.ts';
import { checkSecretId, ensureStateDir, readJsonFile, writeJsonFile } from './state-files.ts';

/** An alert condition's record is kept this long after its last alert or reminder (both engines). */
export const ALERT_STATE_TTL_DAYS = 30;
const DAY_MS = 86_400_000;

interface AlertsFile {
  alerts: Record<string, AlertState>;
}

/**
 * The local engine's alert de-duplication state, the twin of DynamoDbAlertLedger: one 0600 JSON file per
 * secret (`<secretId>.alerts.json`) beside the rotation ledger's, mapping alert id → AlertState. A record
 * lapses ALERT_STATE_TTL_DAYS after its last alert, as the DynamoDB item's TTL does: reads skip it and the
 * next write drops it.
 */
export class FileAlertLedger implements AlertLedger {
  private readonly now: () => Date;

  constructor(
    private readonly dir: string,
    options: { now?: () => Date } = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  async alertState(secretId: string, alertId: string): Promise<AlertState | undefined> {
    return (await this.load(secretId))[alertId];
  }

  async saveAlertState(secretId: string, alertId: string, state: AlertState): Promise<void> {
    alertStateExpiry(state, `alert ${alertId} of ${secretId}`);
    const alerts = await this.load(secretId);
    alerts[alertId] = { kind: state.kind, runner: state.runner, fingerprint: state.fingerprint, firstSeen: state.firstSeen, lastSent: state.lastSent };
    await this.save(secretId, alerts);
  }

  async clearAlertState(secretId: string, alertId: string): Promise<void> {
    const alerts = await this.load(secretId);
    if (!(alertId in alerts)) return;
    delete alerts[alertId];
    await this.save(secretId, alerts);
  }

  async openAlerts(secretId: string): Promise<Array<{ alertId: string; state: AlertState }>> {
    return Object.entries(await this.load(secretId))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([alertId, state]) => ({ alertId, state }));
  }

  private path(secretId: string): string {
    return join(this.dir, `${checkSecretId(secretId)}.alerts.json`);
  }

  /** The records that have not lapsed. */
  private async load(secretId: string): Promise<Record<string, AlertState>> {
    const file = await readJsonFile<AlertsFile>(this.path(secretId));
    const now = this.now().getTime();
    return Object.fromEntries(Object.entries(file?.alerts ?? {}).filter(([id, state]) => alertStateExpiry(state, `${this.path(secretId)}: alert ${id}`) > now));
  }

  private async save(secretId: string, alerts: Record<string, AlertState>): Promise<void> {
    await ensureStateDir(this.dir);
    await writeJsonFile(this.path(secretId), { alerts } satisfies AlertsFile);
  }
}

/** Epoch milliseconds at which a condition's record lapses: ALERT_STATE_TTL_DAYS after its last alert. */
export function alertStateExpiry(state: AlertState, where: string): number {
  const lastSentMs = Date.parse(state.lastSent);
  if (Number.isNaN(lastSentMs)) throw new InvalidInputError(where, `lastSent is not a date: ${state.lastSent}`);
  return lastSentMs + ALERT_STATE_TTL_DAYS * DAY_MS;
}
