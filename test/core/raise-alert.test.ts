import { describe, expect, it } from 'vitest';
import { buildAlert } from '../../src/core/alert-rules.ts';
import type { Alert } from '../../src/core/alerts.ts';
import type { AlertLedger, AlertState } from '../../src/core/ports.ts';
import { raiseAlert, syncAlerts } from '../../src/core/raise-alert.ts';
import { TestClock } from '../support/test-clock.ts';

const HOUR = 3_600_000;

/** The ports, in memory: the ledger as a map, the sink as a list. */
function alertDeps() {
  const states = new Map<string, AlertState>();
  const sent: Alert[] = [];
  const ledger: AlertLedger = {
    alertState: async (secretId, alertId) => states.get(`${secretId}/${alertId}`),
    saveAlertState: async (secretId, alertId, state) => void states.set(`${secretId}/${alertId}`, state),
    clearAlertState: async (secretId, alertId) => void states.delete(`${secretId}/${alertId}`),
    openAlerts: async (secretId) =>
      [...states].filter(([key]) => key.startsWith(`${secretId}/`)).map(([key, state]) => ({ alertId: key.slice(secretId.length + 1), state })),
  };
  const clock = new TestClock();
  return { deps: { engine: 'aws' as const, ledger, sink: { publish: async (alert: Alert) => void sent.push(alert) }, clock }, sent, states, clock };
}

const missed = (now: Date, hosts: Array<[string, 'undeliverable' | 'failed']>) =>
  buildAlert('host-missed', { engine: 'aws', runner: 'builders', secretId: 's', now, summary: 'hosts missed', hosts: hosts.map(([host, status]) => ({ host, status, systemId: null, detail: '' })) });

describe('raiseAlert', () => {
  it('sends a new condition once, stays quiet while it persists, and reminds once a day', async () => {
    const { deps, sent, clock } = alertDeps();
    const alert = () => missed(clock.now(), [['i-1', 'undeliverable']]);
    expect(await raiseAlert(deps, alert())).toBe('sent');
    const firstSince = sent[0]?.since;
    for (let scan = 0; scan < 3; scan += 1) {
      await clock.sleep(6 * HOUR);
      expect(await raiseAlert(deps, alert())).toBe('suppressed');
    }
    await clock.sleep(6 * HOUR);
    expect(await raiseAlert(deps, alert())).toBe('reminder');
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ reminder: true, since: firstSince });
  });

  it('alerts again at once when the state changes (another host, another status)', async () => {
    const { deps, sent, clock } = alertDeps();
    await raiseAlert(deps, missed(clock.now(), [['i-1', 'undeliverable']]));
    await clock.sleep(HOUR);
    expect(await raiseAlert(deps, missed(clock.now(), [['i-1', 'undeliverable'], ['i-2', 'failed']]))).toBe('sent');
    expect(sent.map((a) => a.reminder)).toEqual([false, false]);
  });

  it('does not record a condition whose publish failed, so the next check sends it again', async () => {
    const { deps, clock, states } = alertDeps();
    const failing = { ...deps, sink: { publish: async () => Promise.reject(new Error('SNS down')) } };
    await expect(raiseAlert(failing, missed(clock.now(), [['i-1', 'failed']]))).rejects.toThrow('SNS down');
    expect(states.size).toBe(0);
    expect(await raiseAlert(deps, missed(clock.now(), [['i-1', 'failed']]))).toBe('sent');
  });
});

describe('syncAlerts', () => {
  it('clears a checked condition that is gone, so a recurrence alerts at once', async () => {
    const { deps, sent, clock } = alertDeps();
    await syncAlerts(deps, 's', ['host-missed'], [missed(clock.now(), [['i-1', 'failed']])]);
    await clock.sleep(HOUR);
    await syncAlerts(deps, 's', ['host-missed'], []);
    await clock.sleep(HOUR);
    expect(await syncAlerts(deps, 's', ['host-missed'], [missed(clock.now(), [['i-1', 'failed']])])).toEqual(['sent']);
    expect(sent).toHaveLength(2);
  });

  it('leaves open the conditions of kinds it did not check', async () => {
    const { deps, states, clock } = alertDeps();
    const rejected = buildAlert('token-rejected', { engine: 'aws', runner: 'builders', secretId: 's', now: clock.now(), summary: 'rejected' });
    await raiseAlert(deps, rejected);
    await syncAlerts(deps, 's', ['host-missed', 'near-expiry'], []);
    expect([...states.keys()]).toEqual(['s/token-rejected']);
  });
});
