import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbAlertLedger, ledgerAlertSortKey } from '../../src/adapters/aws/dynamodb-alert-ledger.ts';
import { ledgerPartitionKey } from '../../src/adapters/aws/dynamodb-ledger.ts';
import { FileAlertLedger } from '../../src/adapters/local/file-alert-ledger.ts';
import { buildAlert } from '../../src/core/alert-rules.ts';
import type { Alert } from '../../src/core/alerts.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import type { AlertLedger, AlertState, Clock } from '../../src/core/ports.ts';
import { raiseAlert, syncAlerts } from '../../src/core/raise-alert.ts';
import { FakeDynamoTable } from '../support/fake-dynamodb.ts';

const SECRET = 'runner-a';
const OTHER = 'runner-b';
const DAY_MS = 86_400_000;
const START = new Date('2026-11-23T12:00:00.000Z');

/** The time both ledgers and raiseAlert see; tests move it. */
let now = START;
const clock: Clock = { now: () => now, sleep: async () => {} };

interface Subject {
  ledger: AlertLedger;
  close(): Promise<void>;
}

const engines: Array<{ name: string; create: () => Promise<Subject> }> = [
  {
    name: 'DynamoDbAlertLedger',
    create: async () => {
      const table = new FakeDynamoTable();
      return { ledger: new DynamoDbAlertLedger(table.client, 'ledger', { now: clock.now }), close: async () => table.mock.restore() };
    },
  },
  {
    name: 'FileAlertLedger',
    create: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'alert-ledger-'));
      return { ledger: new FileAlertLedger(dir, { now: clock.now }), close: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

const state = (kind: AlertState['kind'], lastSent: Date, fingerprint = `${kind}|`): AlertState => ({
  kind,
  runner: 'builders',
  fingerprint,
  firstSeen: new Date(lastSent.getTime() - 3_600_000).toISOString(),
  lastSent: lastSent.toISOString(),
});

function hostMissed(hosts: string[]): Alert {
  return buildAlert('host-missed', { engine: 'aws',
    runner: 'builders',
    secretId: SECRET,
    now,
    summary: `${hosts.length} host(s) of runner builders still lack the current token`,
    hosts: hosts.map((host) => ({ host, systemId: `s_${host}`, status: 'undeliverable', detail: 'SSM agent offline' })),
  });
}

describe.each(engines)('$name keeps alert de-duplication state', ({ create }) => {
  let subject: Subject;
  beforeEach(async () => {
    now = START;
    subject = await create();
  });
  afterEach(async () => {
    await subject.close();
  });

  it('answers nothing for a condition it never saw', async () => {
    expect(await subject.ledger.alertState(SECRET, 'host-missed')).toBeUndefined();
    expect(await subject.ledger.openAlerts(SECRET)).toEqual([]);
  });

  it('returns exactly the state it saved, per secret and alert id, and lists the open ones of one secret', async () => {
    const missed = state('host-missed', START);
    const expiry = state('near-expiry', START, 'near-expiry|2026-11-26');
    await subject.ledger.saveAlertState(SECRET, 'host-missed', missed);
    await subject.ledger.saveAlertState(SECRET, 'near-expiry', expiry);
    await subject.ledger.saveAlertState(OTHER, 'host-missed', state('host-missed', START, 'other'));
    expect(await subject.ledger.alertState(SECRET, 'host-missed')).toEqual(missed);
    expect(await subject.ledger.alertState(SECRET, 'rotation-stuck')).toBeUndefined();
    expect(await subject.ledger.openAlerts(SECRET)).toEqual([
      { alertId: 'host-missed', state: missed },
      { alertId: 'near-expiry', state: expiry },
    ]);
    expect((await subject.ledger.openAlerts(OTHER)).map((a) => a.state.fingerprint)).toEqual(['other']);
  });

  it('replaces a state saved again under the same id', async () => {
    await subject.ledger.saveAlertState(SECRET, 'host-missed', state('host-missed', START, 'first'));
    const later = state('host-missed', new Date(START.getTime() + DAY_MS), 'second');
    await subject.ledger.saveAlertState(SECRET, 'host-missed', later);
    expect(await subject.ledger.alertState(SECRET, 'host-missed')).toEqual(later);
    expect(await subject.ledger.openAlerts(SECRET)).toHaveLength(1);
  });

  it('forgets a cleared condition and clears an unknown one without complaint', async () => {
    await subject.ledger.saveAlertState(SECRET, 'host-missed', state('host-missed', START));
    await subject.ledger.saveAlertState(SECRET, 'near-expiry', state('near-expiry', START));
    await subject.ledger.clearAlertState(SECRET, 'host-missed');
    await subject.ledger.clearAlertState(SECRET, 'rotation-stuck');
    expect(await subject.ledger.alertState(SECRET, 'host-missed')).toBeUndefined();
    expect((await subject.ledger.openAlerts(SECRET)).map((a) => a.alertId)).toEqual(['near-expiry']);
  });

  it('lets a condition lapse 30 days after its last alert', async () => {
    await subject.ledger.saveAlertState(SECRET, 'host-missed', state('host-missed', START));
    now = new Date(START.getTime() + 29 * DAY_MS);
    expect(await subject.ledger.alertState(SECRET, 'host-missed')).toBeDefined();
    now = new Date(START.getTime() + 30 * DAY_MS + 1000);
    expect(await subject.ledger.alertState(SECRET, 'host-missed')).toBeUndefined();
    expect(await subject.ledger.openAlerts(SECRET)).toEqual([]);
  });

  it('refuses a state whose lastSent is not a date', async () => {
    await expect(subject.ledger.saveAlertState(SECRET, 'host-missed', { ...state('host-missed', START), lastSent: 'yesterday' })).rejects.toThrow(InvalidInputError);
  });

  it('holds the de-duplication across repeated scans: one alert per change of state, one reminder a day', async () => {
    const sent: Alert[] = [];
    const deps = { engine: 'aws' as const, ledger: subject.ledger, sink: { publish: async (alert: Alert) => void sent.push(alert) }, clock };
    const scan = (hosts: string[]) => syncAlerts(deps, SECRET, ['host-missed'], hosts.length > 0 ? [hostMissed(hosts)] : []);
    const outcomes: string[] = [];
    for (let hour = 0; hour < 24; hour += 6) {
      now = new Date(START.getTime() + hour * 3_600_000);
      outcomes.push(...(await scan(['i-01', 'i-02'])));
    }
    expect(outcomes).toEqual(['sent', 'suppressed', 'suppressed', 'suppressed']);
    now = new Date(START.getTime() + 24 * 3_600_000);
    expect(await scan(['i-01', 'i-02'])).toEqual(['reminder']);
    expect(sent.at(-1)).toMatchObject({ reminder: true, since: START.toISOString() });
    now = new Date(now.getTime() + 3_600_000);
    expect(await scan(['i-01'])).toEqual(['sent']);
    expect(await scan([])).toEqual([]);
    expect(await subject.ledger.openAlerts(SECRET)).toEqual([]);
    expect(await scan(['i-01'])).toEqual(['sent']);
    expect(sent.map((a) => [a.reminder, a.hosts.map((h) => h.host).join(',')])).toEqual([
      [false, 'i-01,i-02'],
      [true, 'i-01,i-02'],
      [false, 'i-01'],
      [false, 'i-01'],
    ]);
  });

  it('keeps no state when the sink fails, so the next scan tries again', async () => {
    const deps = { engine: 'aws' as const, ledger: subject.ledger, sink: { publish: async () => Promise.reject(new Error('topic unreachable')) }, clock };
    await expect(raiseAlert(deps, hostMissed(['i-01']))).rejects.toThrow('topic unreachable');
    expect(await subject.ledger.openAlerts(SECRET)).toEqual([]);
  });
});

describe('DynamoDbAlertLedger', () => {
  it('stores each condition as an ALERT# item in the secret partition, with a TTL 30 days after lastSent', async () => {
    const table = new FakeDynamoTable();
    const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf';
    await new DynamoDbAlertLedger(table.client, 'ledger', { now: () => START }).saveAlertState(secretArn, 'host-missed', state('host-missed', START));
    expect([...table.items.values()]).toEqual([
      {
        pk: ledgerPartitionKey(secretArn),
        sk: ledgerAlertSortKey('host-missed'),
        expiresAt: START.getTime() / 1000 + 30 * 86_400,
        ...state('host-missed', START),
      },
    ]);
    expect(ledgerAlertSortKey('host-missed')).toBe('ALERT#host-missed');
    table.mock.restore();
  });
});

describe('FileAlertLedger', () => {
  it('keeps one 0600 JSON file per secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alert-ledger-'));
    try {
      await new FileAlertLedger(dir, { now: () => START }).saveAlertState(SECRET, 'host-missed', state('host-missed', START));
      const path = join(dir, `${SECRET}.alerts.json`);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ alerts: { 'host-missed': state('host-missed', START) } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
