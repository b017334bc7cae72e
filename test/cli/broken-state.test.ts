/**
 * One runner's broken state file is that runner's finding: `rotator scan` scans the others and `rotator
 * status` shows them, with a row for the broken one; the message says what the operator can do, and doing
 * it brings the runner back.
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { createSimulatedFleet, type SimulatedFleet } from '../../src/simulator/simulated-fleet.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

let dir: string;
let simulator: GitLabSimulator;
let fleet: SimulatedFleet;
let fleetPath: string;
let output: ReturnType<typeof recordingOutput>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'broken-state-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  await simulator.start();
  fleet = await createSimulatedFleet(simulator, dir, [
    { name: 'alpha', hosts: 1 },
    { name: 'bravo', hosts: 1 },
    { name: 'charlie', hosts: 1 },
  ]);
  fleetPath = join(dir, 'fleet.json');
  await writeFile(fleetPath, JSON.stringify(fleet.fleetFile('state', 'none')));
  output = recordingOutput();
  for (const name of ['alpha', 'bravo', 'charlie']) expect(await rotator('adopt', name, '--no-rotate')).toBe(0);
  output.lines.length = 0;
});

afterEach(async () => {
  expectNoTokens(captured(output.lines), fleet.tokens);
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

const rotator = (...args: string[]) => main(['--fleet', fleetPath, ...args], output);
const secretFile = (name: string) => join(dir, 'state', 'secrets', `${name}.secret.json`);

/** Cuts a file in half, as a full disk or an interrupted copy would leave it. */
async function truncate(path: string): Promise<void> {
  const text = await readFile(path, 'utf8');
  await writeFile(path, text.slice(0, Math.floor(text.length / 2)));
}

describe('one runner whose secret file is broken', () => {
  it('is scanned as a finding of its own: the runners before and after it are scanned, and the scan exits 1, not 2', async () => {
    await truncate(secretFile('bravo'));

    expect(await rotator('scan')).toBe(1);

    expect(output.lines.filter((l) => /^\[alpha\] not due/.test(l))).toHaveLength(1);
    expect(output.lines.filter((l) => /^\[charlie\] not due/.test(l))).toHaveLength(1);
    expect(output.lines.filter((l) => l.startsWith('[bravo] '))).toEqual([
      `[bravo] scan failed: ${secretFile('bravo')}: state file is not valid JSON: no copy of it is kept; move it aside, then \`rotator adopt bravo\` stores again the token the runner's config.toml holds (or the one --token-file names)`,
    ]);
  });

  it("is a row of the status table that says what is wrong, between the other runners' rows", async () => {
    await truncate(secretFile('bravo'));

    expect(await rotator('status')).toBe(0);

    const table = output.lines.filter((l) => !l.startsWith('['));
    expect(table).toHaveLength(2 + 3);
    expect(table[2]).toMatch(/^alpha\s.*\sno\s/);
    expect(table[3]).toMatch(/^bravo\s.*\sunknown: see below\s/);
    expect(table[4]).toMatch(/^charlie\s.*\sno\s/);
    expect(output.lines).toContain(
      `[bravo] cannot read its state: ${secretFile('bravo')}: state file is not valid JSON: no copy of it is kept; move it aside, then \`rotator adopt bravo\` stores again the token the runner's config.toml holds (or the one --token-file names)`,
    );
  });

  it('says what is wrong in the JSON status as well', async () => {
    await writeFile(secretFile('bravo'), '{}\n');

    expect(await rotator('status', '--json')).toBe(0);

    const rows = output.lines.map((l) => JSON.parse(l) as { runner: string; adopted: boolean; reason: string; problem: string | null });
    expect(rows.map((r) => [r.runner, r.adopted])).toEqual([
      ['alpha', true],
      ['bravo', false],
      ['charlie', true],
    ]);
    expect(rows[1]?.reason).toContain('state file does not hold a secret');
    expect(rows[1]?.reason).toContain('`rotator adopt bravo`');
    // A broken runner is told apart from one not adopted yet.
    expect(rows.map((r) => r.problem === null)).toEqual([true, false, true]);
  });

  it('makes `rotate --due` name it and exit 1, rather than say that no runner is due', async () => {
    await truncate(secretFile('bravo'));

    expect(await rotator('rotate', '--due')).toBe(1);

    expect(output.lines).not.toContain('No runner is due.');
    expect(output.lines.find((l) => l.startsWith('[bravo] cannot tell whether it is due: '))).toContain('state file is not valid JSON');
  });

  it('promises no backup that does not exist, and doing what the message says brings the runner back', async () => {
    await truncate(secretFile('bravo'));
    expect(await rotator('scan')).toBe(1);
    expect(output.lines.join('\n')).not.toMatch(/backup/i);

    await rename(secretFile('bravo'), `${secretFile('bravo')}.broken`);
    expect(await rotator('adopt', 'bravo', '--no-rotate')).toBe(0);
    output.lines.length = 0;

    expect(await rotator('scan')).toBe(0);
    expect(output.lines.filter((l) => /^\[bravo\] not due/.test(l))).toHaveLength(1);
  });
});

describe('one runner whose ledger file is broken', () => {
  it('leaves the scan and the status of the other runners alone, and the message says what removing it costs', async () => {
    await mkdir(join(dir, 'state', 'ledger'), { recursive: true });
    await writeFile(join(dir, 'state', 'ledger', 'alpha.ledger.json'), '{"pending": {');

    expect(await rotator('scan')).toBe(1);
    expect(output.lines.find((l) => l.startsWith('[alpha] scan failed: '))).toContain('state file is not valid JSON: no copy of it is kept; move it aside (or remove it)');
    expect(output.lines.filter((l) => /^\[(bravo|charlie)\] not due/.test(l))).toHaveLength(2);

    output.lines.length = 0;
    expect(await rotator('status')).toBe(0);
    expect(output.lines.filter((l) => /^(alpha|bravo|charlie)\s/.test(l))).toHaveLength(3);
  });
});
