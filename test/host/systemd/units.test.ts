import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleetConfig } from '../../../src/config/fleet-config.ts';
import { readCliEnvironment } from '../../../src/config/environment.ts';
import { commentsOf, everyHoursOf, parseUnitFile, readUnitFile, valueOf, valuesOf, wordsOf } from './unit-file.ts';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const LAUNCHER = join(REPO, 'src/cli/rotator.mjs');

const service = readUnitFile('gitlab-runner-rotator.service');
const timer = readUnitFile('gitlab-runner-rotator.timer');
const execStart = valueOf(service.unit, 'Service', 'ExecStart').split(/\s+/);
const everyHours = Number(execStart[execStart.indexOf('--every-hours') + 1]);

/** `exit` and both streams of a command that may fail. */
async function attempt(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  try {
    const { stdout, stderr } = await run(command, args, { env, cwd });
    return { exit: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { exit: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** systemd's time span (`30min`, `1h`, `90s`, `1h 30min`) in seconds: the units these files use. */
function seconds(span: string): number {
  const units: Record<string, number> = { s: 1, sec: 1, min: 60, m: 60, h: 3600, hour: 3600 };
  let total = 0;
  for (const part of span.split(/\s+/)) {
    const match = /^(\d+)([a-z]+)$/.exec(part);
    const unit = units[match?.[2] ?? ''];
    if (!match || unit === undefined) throw new Error(`cannot read the time span ${span}`);
    total += Number(match[1]) * unit;
  }
  return total;
}

/** True when `path` is `folder` or below it. */
const isWithin = (path: string, folder: string) => !relative(folder, path).startsWith('..');

describe('the unit file reader', () => {
  it('keeps sections, every value of a repeated key and skips comments', () => {
    const unit = parseUnitFile(['# a comment', '[Service]', '; another', 'ReadWritePaths=/a', 'ReadWritePaths=-/b /c', 'Type=oneshot'].join('\n'));
    expect(valuesOf(unit, 'Service', 'ReadWritePaths')).toEqual(['/a', '-/b /c']);
    expect(wordsOf(unit, 'Service', 'ReadWritePaths')).toEqual(['/a', '-/b', '/c']);
    expect(valueOf(unit, 'Service', 'Type')).toBe('oneshot');
    expect(() => valueOf(unit, 'Service', 'ReadWritePaths')).toThrow('set 2 times');
  });

  it('refuses a line it cannot read rather than skipping it', () => {
    expect(() => parseUnitFile('[Service]\nExecStart=/bin/a \\\n  --b')).toThrow('continued line');
    expect(() => parseUnitFile('Type=oneshot')).toThrow('not a Key=value line in a section');
  });

  it('reads an interval of hours only from the every-N-hours form of OnCalendar=', () => {
    expect(everyHoursOf('*-*-* 00/6:00:00')).toBe(6);
    expect(everyHoursOf('*-*-* 00/12:00')).toBe(12);
    expect(() => everyHoursOf('daily')).toThrow('expected');
    expect(() => everyHoursOf('*-*-* 00/5:00:00')).toThrow('N dividing 24');
  });
});

describe('gitlab-runner-rotator.service', () => {
  it('runs `rotator scan` once per start, from where docs/install.md installs the command', async () => {
    expect(valueOf(service.unit, 'Service', 'Type')).toBe('oneshot');
    expect(execStart.slice(0, 2)).toEqual(['/usr/local/bin/rotator', 'scan']);
    const install = await readFile(join(REPO, 'docs/install.md'), 'utf8');
    expect(install).toContain(`\n${execStart.join(' ')}\n`);
    expect(install).toMatch(/--prefix \/usr\/local /);
    expect(install).toContain('ln -s /opt/gitlab-runner-rotator/src/cli/rotator.mjs /usr/local/bin/rotator');
  });

  it('passes only options that `rotator scan --help` lists, --every-hours among them', async () => {
    const { stdout } = await run(process.execPath, [LAUNCHER, 'scan', '--help'], { cwd: REPO });
    const listed = new Set(stdout.match(/--[a-z][a-z-]*/g));
    const given = execStart.filter((word) => word.startsWith('--'));
    expect(given).toContain('--every-hours');
    for (const option of given) expect(listed).toContain(option);
    expect(everyHours).toBeGreaterThan(0);
  }, 60_000);

  it('reads the fleet file that the CLI reads by default, so `sudo rotator status` sees the same fleet', () => {
    expect(valuesOf(service.unit, 'Service', 'Environment')).toContain(`ROTATOR_FLEET=${readCliEnvironment({}).fleetPath}`);
  });

  it('runs as root, for config.toml is root-owned and gitlab-runner is reloaded through systemd', () => {
    expect(valueOf(service.unit, 'Service', 'User')).toBe('root');
  });

  it('bounds a scan that hangs, which would otherwise hold back every later one', () => {
    const timeout = seconds(valueOf(service.unit, 'Service', 'TimeoutStartSec'));
    expect(timeout).toBeGreaterThan(0);
    expect(timeout).toBeLessThan(everyHours * 3600);
  });
});

describe('the command of ExecStart, run for real', () => {
  let work: string;
  let fleet: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rotator-unit-'));
    fleet = join(work, 'fleet.json');
    const runner = { name: 'docker-builders', gitlabUrl: 'http://127.0.0.1:9', runnerId: 42, hosts: [{ config: 'config.toml' }] };
    await writeFile(fleet, JSON.stringify({ stateDir: 'state', runners: [runner] }));
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('is accepted by the CLI: it scans, finds the runner not adopted, and exits 1 (the unit fails)', async () => {
    const result = await attempt(process.execPath, [LAUNCHER, ...execStart.slice(1)], { ...process.env, ROTATOR_FLEET: fleet }, work);
    expect(result.stderr).toContain('[docker-builders] not adopted: run `rotator adopt docker-builders`');
    expect(result.exit).toBe(1);
  }, 60_000);

  it('would be refused with exit 2 if an option were misspelt (so the check above can fail)', async () => {
    const args = execStart.slice(1).map((word) => (word === '--every-hours' ? '--every-hour' : word));
    const result = await attempt(process.execPath, [LAUNCHER, ...args], { ...process.env, ROTATOR_FLEET: fleet }, work);
    expect(result.stderr).toContain("unknown option '--every-hour'");
    expect(result.exit).toBe(2);
  }, 60_000);
});

describe('gitlab-runner-rotator.timer', () => {
  it('starts the scan every --every-hours hours, and both files say the two go together', () => {
    expect(everyHoursOf(valueOf(timer.unit, 'Timer', 'OnCalendar'))).toBe(everyHours);
    expect(commentsOf(timer.text)).toContain(`--every-hours ${everyHours}`);
    expect(commentsOf(service.text)).toContain('--every-hours must equal');
    expect(commentsOf(service.text)).toContain('OnCalendar=');
  });

  it('starts gitlab-runner-rotator.service, the unit of the same name', () => {
    expect(valuesOf(timer.unit, 'Timer', 'Unit')).toEqual([]);
    expect(valuesOf(timer.unit, 'Timer', 'OnUnitActiveSec')).toEqual([]);
  });

  it('catches up a scan missed while the host was down, and spreads starts over less than one interval', () => {
    expect(valueOf(timer.unit, 'Timer', 'Persistent')).toBe('true');
    const delay = seconds(valueOf(timer.unit, 'Timer', 'RandomizedDelaySec'));
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThan(everyHours * 3600);
  });

  it('is enabled with the timers, so `systemctl enable --now` starts it at every boot', () => {
    expect(valueOf(timer.unit, 'Install', 'WantedBy')).toBe('timers.target');
  });
});

describe('the sandbox of the service', () => {
  const writable = [
    ...wordsOf(service.unit, 'Service', 'ReadWritePaths').map((path) => path.replace(/^-/, '')),
    // systemd.exec(5): StateDirectory= names a folder below /var/lib/ that ProtectSystem= leaves writable.
    ...wordsOf(service.unit, 'Service', 'StateDirectory').map((name) => `/var/lib/${name}`),
  ];

  it('makes everything read-only but what it lists', () => {
    expect(valueOf(service.unit, 'Service', 'ProtectSystem')).toBe('strict');
    expect(writable.length).toBeGreaterThan(0);
  });

  it('leaves writable the stateDir and every config.toml folder of fleet.example.json', async () => {
    const path = join(REPO, 'fleet.example.json');
    const fleet = parseFleetConfig(await readFile(path, 'utf8'), path);
    const needed = [fleet.stateDir, ...fleet.runners.flatMap((runner) => (runner.hosts.kind === 'config-files' ? runner.hosts.files.map((host) => dirname(host.configPath)) : []))];
    expect(needed).toContain('/etc/gitlab-runner');
    for (const folder of needed) expect(writable.some((allowed) => isWithin(folder, allowed)), `${folder} is writable`).toBe(true);
  });

  it('keeps the state folder private, as the secret store it holds', () => {
    expect(valueOf(service.unit, 'Service', 'StateDirectoryMode')).toBe('0700');
    expect(valueOf(service.unit, 'Service', 'UMask')).toBe('0077');
  });

  it('leaves the reload the host updater does: systemctl on systemd\'s Unix socket, else pkill over every process', async () => {
    const updater = await readFile(join(REPO, 'host/update-runner-token.sh'), 'utf8');
    expect(updater).toContain('"$systemctl" kill --kill-who=main --signal=SIGHUP gitlab-runner');
    expect(updater).toContain('"$pkill" -HUP -x gitlab-runner');
    expect(wordsOf(service.unit, 'Service', 'RestrictAddressFamilies')).toContain('AF_UNIX');
    expect(wordsOf(service.unit, 'Service', 'CapabilityBoundingSet')).toContain('CAP_KILL');
    // hidepid would hide gitlab-runner from pkill; a user namespace would make root no longer root.
    expect(valuesOf(service.unit, 'Service', 'ProtectProc')).toEqual([]);
    expect(valuesOf(service.unit, 'Service', 'PrivateUsers')).toEqual([]);
    expect(valuesOf(service.unit, 'Service', 'PrivateNetwork')).toEqual([]);
  });

  it('leaves the host updater what it needs to replace config.toml with the same owner and mode', async () => {
    const updater = await readFile(join(REPO, 'host/update-runner-token.sh'), 'utf8');
    expect(updater).toMatch(/\bchown -h -- "\$FILE_OWNER:\$FILE_GROUP"/);
    expect(updater).toMatch(/\bsetpriv --reuid=/);
    const capabilities = wordsOf(service.unit, 'Service', 'CapabilityBoundingSet');
    expect(capabilities).toEqual(expect.arrayContaining(['CAP_CHOWN', 'CAP_FOWNER', 'CAP_SETUID', 'CAP_SETGID']));
    expect(capabilities).not.toContain('CAP_SYS_ADMIN');
  });

  it('leaves Node its JIT: no MemoryDenyWriteExecute=', () => {
    expect(valuesOf(service.unit, 'Service', 'MemoryDenyWriteExecute')).toEqual([]);
    expect(valueOf(service.unit, 'Service', 'NoNewPrivileges')).toBe('yes');
    expect(valueOf(service.unit, 'Service', 'PrivateTmp')).toBe('yes');
    expect(valueOf(service.unit, 'Service', 'ProtectHome')).toBe('yes');
  });
});
