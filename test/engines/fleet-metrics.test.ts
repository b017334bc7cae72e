import { describe, expect, it } from 'vitest';
import type { RunnerScanResult } from '../../src/core/scan-runner.ts';
import { FLEET_METRICS, summarizeScan } from '../../src/engines/fleet-metrics.ts';

/** One runner's scan result with just what the summary reads. */
function scanned(runner: string, daysLeft: number | null, fields: { due?: boolean; rotationStarted?: boolean; noPlan?: boolean } = {}): RunnerScanResult {
  const decision = { due: fields.due ?? false, expired: daysLeft !== null && daysLeft <= 0, daysLeft, reason: 'test' };
  return {
    runner,
    secretId: `gitlab-runner-rotator/${runner}`,
    plan: fields.noPlan ? undefined : { decision, rotate: fields.due ?? false, repushHosts: [], warnings: [], rotationRunning: false },
    rotationStarted: fields.rotationStarted ?? false,
    rotationStuck: false,
    rotationRunning: false,
    repushed: [],
    missingHosts: [],
    warnings: [],
  };
}

describe('summarizeScan', () => {
  it('counts the runners scanned, due, expiring soon and failed, and keeps the fewest days left', () => {
    const results = [
      scanned('due-and-started', 2.96, { due: true, rotationStarted: true }),
      scanned('due-but-stuck', 6.5, { due: true }),
      scanned('healthy', 25.04),
      scanned('expired', -1.25, { due: true }),
      scanned('never-expires', null),
      scanned('no-value-yet', null, { noPlan: true }),
    ];
    expect(summarizeScan(results, 2, 3)).toEqual({
      runnersScanned: 8,
      runnersDue: 3,
      runnersExpiringSoon: 2,
      minDaysToExpiry: -1.3,
      scanFailures: 2,
      rotationsStarted: 1,
    });
  });

  it('counts a runner whose rotation started though the plan was not due (a replacement asked for) as due', () => {
    expect(summarizeScan([scanned('migrating', 20, { rotationStarted: true })], 0, 3).runnersDue).toBe(1);
  });

  it('has no fewest days left when no runner scanned has a token that expires', () => {
    expect(summarizeScan([scanned('never-expires', null)], 1, 3)).toMatchObject({ minDaysToExpiry: null, runnersScanned: 2, scanFailures: 1 });
    expect(summarizeScan([], 0, 3)).toEqual({ runnersScanned: 0, runnersDue: 0, runnersExpiringSoon: 0, minDaysToExpiry: null, scanFailures: 0, rotationsStarted: 0 });
  });

  it('names every metric once; DaysToExpiry (a metric per runner) is the opt-in one (scan-expiry.test.ts checks it stays off by default)', () => {
    const names = Object.values(FLEET_METRICS);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['RunnersScanned', 'RunnersDue', 'RunnersExpiringSoon', 'MinDaysToExpiry', 'ScanFailures', 'HostsMissed', 'DaysToExpiry']));
  });
});
