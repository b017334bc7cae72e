/**
 * Two `rotator scan` runs at once (a cron job and an operator, two timers): each runner is rotated once, and
 * a scan that finds another rotation running leaves it to it, quietly. Only a rotation open longer than a
 * healthy one can take (ROTATION_STUCK_AFTER_MS) is stuck. Two local engines share one state folder, as two
 * processes would; the order of their steps is forced by holding a GitLab reset, not by timing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitLabAdapter } from '../../src/adapters/gitlab/gitlab.ts';
import { adoptRunner, findCurrentToken } from '../../src/cli/adopt-command.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { scanLocalFleet } from '../../src/cli/scan-command.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import type { Alert } from '../../src/core/alerts.ts';
import type { IssuedToken } from '../../src/core/types.ts';
import { ROTATION_STUCK_AFTER_MS } from '../../src/core/scan-plan.ts';
import { createLocalEngine, type LocalEngine } from '../../src/engines/local-engine.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { createSimulatedFleet, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { TestClock } from '../support/test-clock.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const DAY_MS = 86_400_000;
const SIX_HOURS = 6 * 3_600_000;
const NAMES = ['alpha', 'bravo', 'charlie'];
/** The scan's line for a due runner whose rotation another scan is running. */
const RUNNING = /^\[\w+\] due \(.*\): another rotation of this runner is running; left to it$/;

let dir: string;
let simulator: GitLabSimulator;
let fleet: SimulatedFleet;
let clock: TestClock;
let lines: string[];

interface Scanner {
  engine: LocalEngine;
  output: ReturnType<typeof recordingOutput>;
  alerts: Alert[];
}

/** A local engine over the shared state folder, on the shared clock, whose alerts are recorded. */
function scanner(gitlab?: GitLabAdapter): Scanner {
  const config = parseFleetConfig(JSON.stringify(fleet.fleetFile('state', 'none')), join(dir, 'fleet.json'));
  const output = recordingOutput();
  const alerts: Alert[] = [];
  const engine = createLocalEngine(config, { events: () => {}, alertLines: output.out, clock, ...(gitlab ? { gitlab } : {}) });
  return { engine: { ...engine, alerts: { ...engine.alerts, sink: { publish: async (alert) => void alerts.push(alert) } } }, output, alerts };
}

/** A GitLab adapter that holds its first reset by token until `release()`; `held` resolves once it is holding. */
function holdingFirstReset(): { gitlab: GitLabAdapter; held: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (reached = resolve));
  const gate = new Promise<void>((resolve) => (release = resolve));
  let first = true;
  class HoldingGitLab extends GitLabAdapter {
    override async resetWithToken(gitlabUrl: string, token: string): Promise<IssuedToken> {
      if (first) {
        first = false;
        reached();
        await gate;
      }
      return super.resetWithToken(gitlabUrl, token);
    }
  }
  return { gitlab: new HoldingGitLab({ sleep: (ms) => clock.sleep(ms), now: () => clock.now().getTime() }), held, release };
}

const resets = () => Object.fromEntries(fleet.runners.map((r) => [r.name, simulator.runner(r.id)?.tokenResets]));
const kinds = (s: Scanner) => s.alerts.map((a) => `${a.runner}:${a.kind}`);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'overlapping-scans-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  // Every token is due (28 of 30 days used) and near expiry (2 days left, alerts at 3).
  const now = Date.now();
  fleet = await createSimulatedFleet(
    simulator,
    dir,
    NAMES.map((name) => ({ name, hosts: 1, tokenObtainedAt: new Date(now - 28 * DAY_MS), tokenExpiresAt: new Date(now + 2 * DAY_MS) })),
  );
  await writeFile(join(dir, 'fleet.json'), JSON.stringify(fleet.fleetFile('state', 'none')));
  clock = new TestClock();
  lines = [];
  const { engine } = scanner();
  for (const runner of engine.config.runners) await adoptRunner(engine, runner, await findCurrentToken(runner, undefined), clock.now());
});

afterEach(async () => {
  expectNoTokens(captured(lines), fleet.tokens);
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('two scans at once', () => {
  it('rotate each runner exactly once, raise no rotation-stuck or near-expiry alert, and count no problem', async () => {
    const holding = holdingFirstReset();
    const first = scanner(holding.gitlab);
    const second = scanner();

    // The first scan opens alpha's rotation and is held at its GitLab reset…
    const firstScan = scanLocalFleet(first.engine, first.output, SIX_HOURS);
    await holding.held;
    // …while the second scan runs from start to end.
    const secondProblems = await scanLocalFleet(second.engine, second.output, SIX_HOURS);
    holding.release();
    const firstProblems = await firstScan;
    lines.push(...first.output.lines, ...second.output.lines);

    expect(resets()).toEqual({ alpha: 1, bravo: 1, charlie: 1 });
    expect([firstProblems, secondProblems]).toEqual([0, 0]);
    expect([...kinds(first), ...kinds(second)].filter((k) => /rotation-stuck|near-expiry|rotation-failed/.test(k))).toEqual([]);
    expect(second.output.lines.filter((l) => RUNNING.test(l))).toEqual([expect.stringMatching(/^\[alpha\] /)]);
    expect(first.output.lines.filter((l) => /^\[alpha\] due .*: rotated$/.test(l))).toHaveLength(1);
    expect(second.output.lines.filter((l) => /^\[(bravo|charlie)\] due .*: rotated$/.test(l))).toHaveLength(2);
  });

  it('leave a runner whose lock another rotation holds to it, before that rotation has opened its version', async () => {
    const other = scanner();
    const second = scanner();
    let release!: () => void;
    let holdingLock!: () => void;
    const held = new Promise<void>((resolve) => (holdingLock = resolve));
    // Another process has taken alpha's rotation lock and not yet written anything.
    const lockHolder = other.engine.store.withRotationLock('alpha', async () => {
      holdingLock();
      await new Promise<void>((resolve) => (release = resolve));
    });
    await held;

    const problems = await scanLocalFleet(second.engine, second.output, SIX_HOURS);
    release();
    await lockHolder;
    lines.push(...second.output.lines);

    expect(problems).toBe(0);
    expect(kinds(second).filter((k) => k.startsWith('alpha:'))).toEqual([]);
    const alphaLines = second.output.lines.filter((l) => l.startsWith('[alpha] due') || l.startsWith('[alpha] warning'));
    expect(alphaLines).toHaveLength(1);
    expect(alphaLines[0]).toMatch(RUNNING);
    expect(resets()).toEqual({ alpha: 0, bravo: 1, charlie: 1 });
  });
});

describe('a rotation left open', () => {
  /** Opens alpha's rotation as a scan that then died would leave it, and lets `ageMs` pass on the clock. */
  async function openRotationAged(ageMs: number): Promise<void> {
    const { engine } = scanner();
    await engine.store.beginRotation('alpha', 'left-open');
    await clock.sleep(ageMs);
  }

  // The young case has half the threshold (over 20 minutes) of real time to spare: no machine is that slow.
  it('is another rotation running while it is younger than ROTATION_STUCK_AFTER_MS: no alert, no problem, no second rotation', async () => {
    await openRotationAged(ROTATION_STUCK_AFTER_MS / 2);
    const scan = scanner();

    const problems = await scanLocalFleet(scan.engine, scan.output, SIX_HOURS);
    lines.push(...scan.output.lines);

    expect(problems).toBe(0);
    expect(kinds(scan).filter((k) => k.startsWith('alpha:'))).toEqual([]);
    expect(scan.output.lines.filter((l) => RUNNING.test(l))).toEqual([expect.stringMatching(/^\[alpha\] /)]);
    expect(scan.output.lines.filter((l) => l.startsWith('[alpha] warning'))).toEqual([]);
    expect(resets().alpha).toBe(0);
  });

  it('is stuck once it is older than ROTATION_STUCK_AFTER_MS: rotation-stuck and near-expiry are raised and the scan counts a problem', async () => {
    await openRotationAged(ROTATION_STUCK_AFTER_MS + 60_000);
    const scan = scanner();

    const problems = await scanLocalFleet(scan.engine, scan.output, SIX_HOURS);
    lines.push(...scan.output.lines);

    expect(problems).toBeGreaterThan(0);
    expect(kinds(scan).filter((k) => k.startsWith('alpha:')).sort()).toEqual(['alpha:near-expiry', 'alpha:rotation-stuck']);
    expect(scan.output.lines.find((l) => l.startsWith('[alpha] warning'))).toContain(`open for ${Math.round((ROTATION_STUCK_AFTER_MS + 60_000) / 60_000)} min`);
    expect(resets().alpha).toBe(0);
  });
});
