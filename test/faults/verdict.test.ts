import { describe, expect, it } from 'vitest';
import type { Alert } from '../../src/core/alerts.ts';
import { buildAlert } from '../../src/core/alert-rules.ts';
import type { SimulatedHost } from '../../src/simulator/simulated-fleet.ts';
import type { World } from './fault-world.ts';
import { judge, leaks, type Snapshot } from './verdict.ts';

const host = (name: string): SimulatedHost => ({ runner: 'r', runnerId: 7, name, configPath: `/nowhere/${name}`, systemId: 's_000000000000' });
const world = { engine: 'local', runnerName: 'r', hosts: [{ sim: host('h1'), alertNames: ['h1'] }, { sim: host('h2'), alertNames: ['h2'] }], resets: () => 1 } as unknown as World;
const now = new Date('2026-01-01T00:00:00Z');
const TOKEN = 'glrt-abcdefghijklmnopqrstuvwx';
const OTHER = 'glrt-zyxwvutsrqponmlkjihgfedc';

function snap(accepted: boolean, hosts: Array<[string, string, boolean]>, alerts: Alert[] = []): Snapshot {
  return { current: TOKEN, accepted, hosts: hosts.map(([name, token, ok]) => ({ name, token, accepted: ok })), alerts };
}

describe('the fault verdict', () => {
  it('passes when AWSCURRENT works and every host holds it', () => {
    const s = snap(true, [['h1', TOKEN, true], ['h2', TOKEN, true]]);
    expect(judge(world, 'ok', s, s, [], []).passed).toBe(true);
  });

  it('counts a rejected AWSCURRENT with no alert as a lost token and an unalerted failure', () => {
    const s = snap(false, [['h1', TOKEN, false], ['h2', TOKEN, false]]);
    expect(judge(world, 'lost', s, s, [], [])).toMatchObject({ passed: false, tokenLost: true, unalerted: true, tokenSafe: false });
  });

  it('accepts a rejected AWSCURRENT when an alert names the runner with a next step', () => {
    const alert = buildAlert('admin-token-missing', { engine: 'aws', runner: 'r', secretId: 'r', summary: 'x', now });
    const s = snap(false, [['h1', TOKEN, false], ['h2', TOKEN, false]], [alert]);
    expect(judge(world, 'alerted', s, s, [], [])).toMatchObject({ passed: true, tokenLost: false });
  });

  it('counts a host left behind without a host-missed alert as unalerted, and one alerted but not repaired as failed', () => {
    const behind = snap(true, [['h1', TOKEN, true], ['h2', OTHER, false]]);
    expect(judge(world, 'behind', behind, behind, [], [])).toMatchObject({ passed: false, unalerted: true, hostsSafe: false });
    const alert = buildAlert('host-missed', { engine: 'aws', runner: 'r', secretId: 'r', summary: 'x', now, hosts: [{ host: 'h2', systemId: null, status: 'failed', detail: 'd' }] });
    const alerted = snap(true, [['h1', TOKEN, true], ['h2', OTHER, false]], [alert]);
    const repaired = snap(true, [['h1', TOKEN, true], ['h2', TOKEN, true]], [alert]);
    expect(judge(world, 'repaired', alerted, repaired, [], [])).toMatchObject({ passed: true, unalerted: false });
    expect(judge(world, 'not repaired', alerted, alerted, [], [])).toMatchObject({ passed: false, unalerted: false, hostsSafe: false });
  });

  it('finds a known token, or anything shaped like one, in captured streams', () => {
    expect(leaks(['all quiet', { detail: 'nothing' }], [TOKEN])).toEqual([]);
    expect(leaks([{ nested: { line: `token=${TOKEN}` } }], [TOKEN])).toHaveLength(2);
    expect(leaks([new Error(`legacy abcdefghij0123456789`)], ['abcdefghij0123456789'])).toHaveLength(1);
  });
});
