import { describe, expect, it } from 'vitest';
import { alertFromRotationError, alertsFromRotation, alertsFromScan } from '../../src/core/alert-rules.ts';
import { nextStepFor } from '../../src/core/next-steps.ts';
import { ALERT_KINDS } from '../../src/core/alerts.ts';
import { RotationError } from '../../src/core/errors.ts';
import type { RunnerScanResult } from '../../src/core/scan-runner.ts';
import { DEFAULT_EXPIRY_POLICY } from '../../src/core/types.ts';
import type { ManagedRunner } from '../../src/core/types.ts';

const now = new Date('2026-11-23T12:00:00Z');
const runner: ManagedRunner = { name: 'builders', secretId: 's', gitlabUrl: 'https://g', runnerId: 1, reload: 'sighup', policy: DEFAULT_EXPIRY_POLICY, strategy: 'reset', hosts: { kind: 'ec2-instances', instanceIds: ['i-1'], configPath: '/c' } };
const scan = (patch: Partial<RunnerScanResult> & { daysLeft?: number | null; due?: boolean; expired?: boolean }): RunnerScanResult => ({
  runner: 'builders',
  secretId: 's',
  plan: { decision: { due: patch.due ?? false, expired: patch.expired ?? false, daysLeft: patch.daysLeft ?? 20, reason: 'r' }, rotate: false, repushHosts: [], warnings: [], rotationRunning: false },
  rotationStarted: false,
  rotationStuck: false,
  rotationRunning: false,
  repushed: [],
  missingHosts: [],
  warnings: [],
  ...patch,
});
const host = { host: 'i-1', status: 'undeliverable' as const, systemId: null, detail: 'offline', finishedAt: now.toISOString() };

describe('alert rules', () => {
  it('has a next step for every kind in each engine', () => {
    for (const kind of ALERT_KINDS) {
      expect(nextStepFor('aws', kind, 'builders').length).toBeGreaterThan(40);
      expect(nextStepFor('local', kind, 'builders').length).toBeGreaterThan(40);
    }
  });

  it.each(ALERT_KINDS)('advises the local engine\'s %s with local commands, never with Secrets Manager, the log of a Lambda or --aws', (kind) => {
    const advice = nextStepFor('local', kind, 'builders');
    expect(advice).toMatch(/`rotator (rotate builders|scan|doctor|adopt builders)/);
    expect(advice).not.toMatch(/Secrets Manager|rotate-secret log|--aws|SSM|admin token secret|scanner/);
  });

  it('keeps the AWS engine\'s advice on Secrets Manager and the rotate-secret log', () => {
    expect(nextStepFor('aws', 'rotation-failed', 'builders')).toContain('Secrets Manager retries the step');
    expect(nextStepFor('aws', 'rotation-stuck', 'builders')).toContain('rotate-secret log');
  });

  it.each([
    ['a healthy runner', scan({}), []],
    ['a host still missing the token', scan({ missingHosts: [host] }), ['host-missed']],
    ['a stuck rotation', scan({ due: true, rotationStuck: true, daysLeft: 2 }), ['rotation-stuck', 'near-expiry']],
    ['a runner near expiry that was not rotated', scan({ daysLeft: 2 }), ['near-expiry']],
    ['a runner near expiry whose rotation just started', scan({ daysLeft: 2, rotationStarted: true }), []],
    ['a due runner near expiry whose rotation another scan is running', scan({ due: true, daysLeft: 2, rotationRunning: true }), []],
    ['an expired token', scan({ due: true, expired: true, daysLeft: -1 }), ['token-rejected']],
  ])('a scan of %s raises %j', (_name, result, kinds) => {
    expect(alertsFromScan(runner, result, { engine: 'aws', nearExpiryDays: 3, now }).map((a) => a.kind)).toEqual(kinds);
  });

  it('names every host that missed a rotation, with its status', () => {
    const record = { secretId: 's', runnerId: 1, fromVersionId: 'a', toVersionId: 'b', resetAt: '', storedAt: '', promotedAt: '', tokenExpiresAt: null, hosts: [host, { ...host, host: 'i-2', status: 'updated' as const, systemId: 's_2' }] };
    const [alert] = alertsFromRotation('aws', 'builders', record, now);
    expect(alert).toMatchObject({ kind: 'host-missed', hosts: [{ host: 'i-1', status: 'undeliverable' }], runbook: 'runbook-host-missed' });
  });

  it.each([
    ['current-token-rejected-no-admin-token', 'admin-token-missing'],
    ['pending-token-rejected', 'token-rejected'],
    ['store-failed', 'rotation-failed'],
  ] as const)('turns a rotation stopped for %s into a %s alert', (code, kind) => {
    const error = new RotationError('stopped', { secretId: 's', step: 'createSecret', code });
    expect(alertFromRotationError('aws', 'builders', error, now)?.kind).toBe(kind);
  });

  it('raises nothing of its own for other rotation errors', () => {
    expect(alertFromRotationError('aws', 'builders', new RotationError('other', { secretId: 's', step: 'setSecret' }), now)).toBeUndefined();
  });

  it('gives the same failed rotation the advice of the engine that raised it', () => {
    const error = new RotationError('the new token could not be stored', { secretId: 's', step: 'createSecret', code: 'store-failed' });
    expect(alertFromRotationError('aws', 'builders', error, now)?.nextStep).toContain('Secrets Manager retries the step');
    expect(alertFromRotationError('local', 'builders', error, now)?.nextStep).toContain('run `rotator rotate builders` again');
  });
});
