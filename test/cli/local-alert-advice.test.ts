/**
 * The local engine's alerts advise the local engine's commands, and say what a failed reset left behind:
 * a request that never reached GitLab changed nothing; one whose reply never came may have reset the token.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitLabAdapter } from '../../src/adapters/gitlab/gitlab.ts';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { progressPrinter } from '../../src/cli/progress.ts';
import { rotateRunners } from '../../src/cli/rotate-command.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import { createLocalEngine } from '../../src/engines/local-engine.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { createSimulatedFleet, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

let dir: string;
let simulator: GitLabSimulator;
let fleet: SimulatedFleet;
let fleetPath: string;
let output: ReturnType<typeof recordingOutput>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-alert-advice-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  fleet = await createSimulatedFleet(simulator, dir, [{ name: 'builders', hosts: 1 }]);
  fleetPath = join(dir, 'fleet.json');
  await writeFile(fleetPath, JSON.stringify(fleet.fleetFile('state', 'none')));
  output = recordingOutput();
  expect(await main(['--fleet', fleetPath, 'adopt', 'builders', '--no-rotate'], output)).toBe(0);
  output.lines.length = 0;
});

afterEach(async () => {
  expectNoTokens(captured(output.lines), fleet.tokens);
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The local engine as the CLI builds it, with an adapter that tries each request once and times out after `requestTimeoutMs`. */
async function rotateBuilders(requestTimeoutMs?: number): Promise<string> {
  const config = parseFleetConfig(await readFile(fleetPath, 'utf8'), fleetPath);
  const gitlab = new GitLabAdapter({ sleep: async () => {}, maxAttempts: 1, ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }) });
  const engine = createLocalEngine(config, { events: progressPrinter(output), alertLines: output.out, gitlab });
  const [run] = await rotateRunners(engine, config.runners, output);
  expect(run?.error).toBeDefined();
  return output.lines.join('\n');
}

describe('a failed rotation alerted by the local engine', () => {
  it('says the reset was not applied when GitLab refused the connection, and advises `rotator rotate` again, not Secrets Manager', async () => {
    await simulator.stop();

    const text = await rotateBuilders();

    expect(text).toContain('CRITICAL rotation-failed: builders');
    expect(text.replace(/\s+/g, ' ')).toContain('the request never reached GitLab, so the reset was not applied and the runner keeps its token');
    expect(text).not.toContain('may or may not');
    expect(text.replace(/\s+/g, ' ')).toContain('run `rotator rotate builders` again');
    expect(text).not.toMatch(/Secrets Manager|rotate-secret log/);
  });

  it('says the reset may or may not have been applied when the request was sent and no reply came, with the same local advice', async () => {
    simulator.faults.hangNext(1, { path: '/runners/reset_authentication_token' });

    const text = await rotateBuilders(150);

    expect(text).toContain('CRITICAL rotation-failed: builders');
    expect(text.replace(/\s+/g, ' ')).toContain('the reset may or may not have been applied');
    expect(text).not.toContain('never reached GitLab');
    expect(text.replace(/\s+/g, ' ')).toContain('run `rotator rotate builders` again');
    expect(text).not.toMatch(/Secrets Manager|rotate-secret log/);
  });
});
