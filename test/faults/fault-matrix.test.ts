import { describe, expect, it } from 'vitest';
import { FAULT_CASES } from './fault-cases.ts';
import { recordPlan, recordVerdict, runCase } from './run-case.ts';

/**
 * DESIGN.md's invariants under failure: every case of the fault matrix, in each engine, judged by one
 * verdict (verdict.ts). `npm run faults` runs this file and prints the summary line.
 */
describe('the fault matrix', () => {
  it('has at least 30 cases, each with a distinct name', () => {
    expect(FAULT_CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(FAULT_CASES.map((c) => c.name)).size).toBe(FAULT_CASES.length);
    recordPlan(FAULT_CASES.length);
  });

  for (const fault of FAULT_CASES) {
    it(fault.name, async () => {
      const verdict = await runCase(fault);
      recordVerdict(verdict);
      expect(verdict.problems).toEqual([]);
      expect(verdict).toMatchObject({ tokenSafe: true, hostsSafe: true, noLeak: true, tokenLost: false, unalerted: false });
    }, 60_000);
  }
});
