import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readUnitFile, valueOf } from './unit-file.ts';

const run = promisify(execFile);
const LAUNCHER = fileURLToPath(new URL('../../../src/cli/rotator.mjs', import.meta.url));
const SERVICE = 'gitlab-runner-rotator.service';
const TIMER = 'gitlab-runner-rotator.timer';

/** Why systemd-analyze cannot check the units here, or undefined when it can. */
function unavailable(): string | undefined {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch (error) {
    return `systemd-analyze is not available here (${(error as Error).message.split('\n')[0]}): the unit files are checked by units.test.ts only`;
  }
}
const reason = unavailable();
if (reason) console.warn(`skipping systemd-analyze checks: ${reason}`);

/** `exit` and both streams of systemd-analyze, which reports problems on stderr and may still exit 0. */
async function analyze(args: string[]) {
  try {
    const { stdout, stderr } = await run('systemd-analyze', args, { env: { ...process.env, TZ: 'UTC', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } });
    return { exit: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { exit: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The system calls of a filter group, its nested groups (listed by name) expanded. */
async function systemCallsOf(group: string, seen = new Set<string>()): Promise<Set<string>> {
  const result = await analyze(['syscall-filter', group]);
  if (result.exit !== 0) throw new Error(`systemd-analyze syscall-filter ${group}: ${result.stderr}`);
  seen.add(group);
  const calls = new Set<string>();
  // Below the group's own heading line: one name a line, `# comments` and blank lines between.
  for (const word of result.stdout.split('\n').slice(1).map((line) => line.trim())) {
    if (word === '' || word.startsWith('#')) continue;
    if (!word.startsWith('@')) calls.add(word);
    else if (!seen.has(word)) for (const call of await systemCallsOf(word, seen)) calls.add(call);
  }
  return calls;
}

const service = readUnitFile(SERVICE);
const timer = readUnitFile(TIMER);
const execStart = valueOf(service.unit, 'Service', 'ExecStart').split(/\s+/);
const everyHours = Number(execStart[execStart.indexOf('--every-hours') + 1]);

describe.skipIf(reason !== undefined)('systemd-analyze on the units', () => {
  let dir: string;
  // verify checks that ExecStart's program exists: here it is the repository's launcher, the file
  // /usr/local/bin/rotator links to on a host; nothing else of the units is changed.
  const servicePath = () => join(dir, SERVICE);
  const timerPath = () => join(dir, TIMER);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rotator-units-'));
    await writeFile(servicePath(), service.text.replace(`ExecStart=${execStart[0]} `, `ExecStart=${LAUNCHER} `));
    await writeFile(timerPath(), timer.text);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('verify finds nothing to say about either unit', async () => {
    const result = await analyze(['verify', servicePath(), timerPath()]);
    expect(result.stderr).toBe('');
    expect(result.exit).toBe(0);
  });

  it('verify does report a misspelt directive, so the check above can fail', async () => {
    const broken = join(dir, 'broken', SERVICE);
    await run('mkdir', ['-p', join(dir, 'broken')]);
    await writeFile(broken, service.text.replace(`ExecStart=${execStart[0]} `, `ExecStart=${LAUNCHER} `).replace('ProtectClock=yes', 'ProtectClok=yes'));
    const result = await analyze(['verify', broken]);
    expect(result.stderr).toContain("Unknown key 'ProtectClok'");
  });

  it('calendar elapses the timer every --every-hours hours, across midnight too', async () => {
    const result = await analyze(['calendar', '--iterations=6', valueOf(timer.unit, 'Timer', 'OnCalendar')]);
    expect(result.exit).toBe(0);
    const times = [...result.stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g)].map((m) => Date.parse(`${m[1]}T${m[2]}Z`));
    expect(times).toHaveLength(6);
    const gaps = times.slice(1).map((time, i) => time - (times[i] ?? 0));
    expect(new Set(gaps)).toEqual(new Set([everyHours * 3_600_000]));
  });

  it('the @system-service filter lets through the system calls of the updater\'s write and reload', async () => {
    const calls = await systemCallsOf(valueOf(service.unit, 'Service', 'SystemCallFilter'));
    expect(calls).not.toContain('reboot');
    for (const call of ['kill', 'fchownat', 'fchmodat', 'renameat2', 'flock', 'setresuid', 'setgroups', 'connect']) expect(calls).toContain(call);
  });

  it('security rates the service\'s exposure at 3.5 or less, where the same service unsandboxed is far above', async () => {
    const rated = await analyze(['security', '--offline=true', '--threshold=35', servicePath()]);
    expect(rated.stdout).toMatch(/Overall exposure level for gitlab-runner-rotator\.service: [0-3]\.\d/);
    expect(rated.exit).toBe(0);
    const bare = join(dir, 'bare', SERVICE);
    await run('mkdir', ['-p', join(dir, 'bare')]);
    await writeFile(bare, `[Service]\nType=oneshot\nExecStart=${LAUNCHER} scan\n`);
    const unsandboxed = await analyze(['security', '--offline=true', '--threshold=35', bare]);
    expect(unsandboxed.stdout).toMatch(/Overall exposure level for gitlab-runner-rotator\.service: ([4-9]|10)\.\d/);
    expect(unsandboxed.exit).not.toBe(0);
  });
});
