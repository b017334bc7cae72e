/** planScan with a rotation already open: running while young, stuck only when older than a healthy one can be. */
import { describe, expect, it } from 'vitest';
import { planScan, ROTATION_STEP_DEADLINE_MS, ROTATION_STUCK_AFTER_MS, type ScanInput } from '../../src/core/scan-plan.ts';
import { ROTATION_BUDGET_MS } from '../../src/cli/rotate-command.ts';
import { DEFAULT_EXPIRY_POLICY, ROTATION_STEPS } from '../../src/core/types.ts';
import type { ManagedRunner } from '../../src/core/types.ts';

const DAY = 86_400_000;
const MINUTE = 60_000;
const now = new Date('2026-11-23T12:00:00Z');
const at = (days: number) => new Date(now.getTime() + days * DAY).toISOString();
const runner: ManagedRunner = {
  name: 'builders',
  secretId: 'builders',
  gitlabUrl: 'https://gitlab.example.com',
  runnerId: 12,
  reload: 'sighup',
  policy: DEFAULT_EXPIRY_POLICY,
  strategy: 'reset',
  hosts: { kind: 'config-files', files: [{ name: 'b1', configPath: '/etc/gitlab-runner/config.toml' }] },
};
const input = (patch: Partial<ScanInput> & { dueNow: boolean }): ScanInput => {
  const { dueNow, ...rest } = patch;
  return {
    runner,
    current: { runnerId: 12, gitlabUrl: runner.gitlabUrl, token: 'x'.repeat(20), ...(dueNow ? { tokenObtainedAt: at(-27), tokenExpiresAt: at(3) } : { tokenObtainedAt: at(-2), tokenExpiresAt: at(28) }) },
    currentVersionId: 'v2',
    rotationInProgress: true,
    lastRotation: undefined,
    managers: undefined,
    now,
    scanIntervalMs: 6 * 3_600_000,
    everyHost: ['b1'],
    ...rest,
  };
};

describe('planScan with a rotation open', () => {
  it.each([
    ['due, open for a second', true, 1_000, { rotate: false, rotationRunning: true, repushHosts: [], warnings: [] }],
    ['due, open for exactly the threshold', true, ROTATION_STUCK_AFTER_MS, { rotate: false, rotationRunning: true, warnings: [] }],
    ['not due, open for ten minutes (no re-push: that rotation pushes itself)', false, 10 * MINUTE, { rotate: false, rotationRunning: true, repushHosts: [], warnings: [] }],
  ])('leaves it to run, quietly, when %s', (_case, dueNow, openRotationAgeMs, expected) => {
    expect(planScan(input({ dueNow, openRotationAgeMs }))).toMatchObject(expected);
  });

  it.each([
    ['open a minute longer than the threshold', ROTATION_STUCK_AFTER_MS + MINUTE, 'open for 46 min'],
    ['open for a time nobody knows', undefined, 'open for an unknown time'],
  ])('calls a due runner stuck when its rotation is %s', (_case, openRotationAgeMs, said) => {
    const plan = planScan(input({ dueNow: true, ...(openRotationAgeMs === undefined ? {} : { openRotationAgeMs }) }));

    expect(plan).toMatchObject({ rotate: false, rotationRunning: false });
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toContain(said);
    expect(plan.warnings[0]).toContain('it is stuck or failing');
  });

  it('waits four step deadlines and a margin before calling a rotation stuck, more than the local engine gives a whole rotation', () => {
    expect(ROTATION_STUCK_AFTER_MS).toBe(ROTATION_STEPS.length * ROTATION_STEP_DEADLINE_MS + 5 * MINUTE);
    expect(ROTATION_STUCK_AFTER_MS).toBeGreaterThan(ROTATION_BUDGET_MS);
  });
});
