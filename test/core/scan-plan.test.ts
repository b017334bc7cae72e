import { describe, expect, it } from 'vitest';
import { planScan, type ScanInput } from '../../src/core/scan-plan.ts';
import { DEFAULT_EXPIRY_POLICY } from '../../src/core/types.ts';
import type { HostResult, ManagedRunner, RotationRecord } from '../../src/core/types.ts';

const DAY = 86_400_000;
const now = new Date('2026-11-23T12:00:00Z');
const at = (days: number) => new Date(now.getTime() + days * DAY).toISOString();
const runner: ManagedRunner = {
  name: 'builders',
  secretId: 'builders',
  gitlabUrl: 'https://gitlab.example.com',
  runnerId: 12,
  reload: 'sighup',
  policy: DEFAULT_EXPIRY_POLICY, strategy: 'reset',
  hosts: { kind: 'ec2-tag', tagKey: 'gitlab-runner', tagValue: 'builders', configPath: '/etc/gitlab-runner/config.toml' },
};
const host = (name: string, status: HostResult['status'], systemId: string | null): HostResult => ({ host: name, status, systemId, detail: '', finishedAt: at(-2) });
const record = (hosts: HostResult[]): RotationRecord => ({ secretId: 'builders', runnerId: 12, fromVersionId: 'v1', toVersionId: 'v2', resetAt: at(-2), storedAt: at(-2), promotedAt: at(-2), tokenExpiresAt: at(28), hosts });
const input = (patch: Partial<ScanInput>): ScanInput => ({
  runner,
  current: { runnerId: 12, gitlabUrl: runner.gitlabUrl, token: 'x'.repeat(20), tokenObtainedAt: at(-2), tokenExpiresAt: at(28) },
  currentVersionId: 'v2',
  rotationInProgress: false,
  lastRotation: record([host('i-0aaaaaaaaaaaaaaa1', 'updated', 's_1'), host('i-0aaaaaaaaaaaaaaa2', 'updated', 's_2')]),
  managers: undefined,
  now,
  scanIntervalMs: 6 * 3_600_000,
  ...patch,
});
const due = { tokenObtainedAt: at(-27), tokenExpiresAt: at(3) };

describe('planScan', () => {
  it('does nothing for a fresh token whose hosts all took it', () => {
    expect(planScan(input({}))).toMatchObject({ rotate: false, repushHosts: [], warnings: [] });
  });

  it('rotates a token that is due', () => {
    const plan = planScan(input({ current: { ...input({}).current, ...due } }));
    expect(plan).toMatchObject({ rotate: true, repushHosts: [] });
  });

  it('does not rotate but warns when a due runner has a rotation in progress', () => {
    const plan = planScan(input({ current: { ...input({}).current, ...due }, rotationInProgress: true }));
    expect(plan.rotate).toBe(false);
    expect(plan.warnings.join()).toContain('rotation is still in progress');
  });

  it('re-pushes to the hosts that missed the last rotation', () => {
    const last = record([host('i-0aaaaaaaaaaaaaaa1', 'updated', 's_1'), host('i-0aaaaaaaaaaaaaaa2', 'undeliverable', null), host('i-0aaaaaaaaaaaaaaa3', 'timed-out', null)]);
    expect(planScan(input({ lastRotation: last })).repushHosts).toEqual(['i-0aaaaaaaaaaaaaaa2', 'i-0aaaaaaaaaaaaaaa3']);
  });

  it('re-pushes to a host whose manager went silent since the rotation, and warns about an unknown one', () => {
    const managers = [
      { systemId: 's_1', contactedAt: at(-0.001), status: 'online', version: null, ipAddress: null },
      { systemId: 's_2', contactedAt: at(-3), status: 'stale', version: null, ipAddress: null },
      { systemId: 's_9', contactedAt: at(-3), status: 'stale', version: null, ipAddress: null },
    ];
    const plan = planScan(input({ managers }));
    expect(plan.repushHosts).toEqual(['i-0aaaaaaaaaaaaaaa2']);
    expect(plan.warnings.join()).toContain('s_9');
  });

  it('does not re-push when the ledger record is of another version', () => {
    const last = { ...record([host('i-0aaaaaaaaaaaaaaa2', 'failed', null)]), toVersionId: 'v-old' };
    expect(planScan(input({ lastRotation: last })).repushHosts).toEqual([]);
  });

  it('warns when the token lifetime is shorter than twice the scan interval', () => {
    const twoHours = { tokenObtainedAt: new Date(now.getTime() - 600_000).toISOString(), tokenExpiresAt: new Date(now.getTime() + 2 * 3_600_000 - 600_000).toISOString() };
    const plan = planScan(input({ current: { ...input({}).current, ...twoHours } }));
    expect(plan.warnings.join()).toContain('shorter than twice the scan interval');
  });

  it('warns that an expired token needs the admin token', () => {
    const plan = planScan(input({ current: { ...input({}).current, tokenObtainedAt: at(-31), tokenExpiresAt: at(-1) } }));
    expect(plan.rotate).toBe(true);
    expect(plan.warnings.join()).toContain('reset it by id');
  });
});
