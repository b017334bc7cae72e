/**
 * host/update-runner-token.sh does work linear in the size of config.toml, whatever shape the file
 * has. A red-team finding: one long line of 100 KB took 1.2 s, 200 KB 10.5 s, 400 KB 73 s (SSM gives
 * the whole command 120 s), because the awk walker built strings a piece at a time (mawk copies the
 * whole string on every append) and kept a path string for every prefix of a dotted key.
 *
 * The measure is the ratio of CPU times for N and 4N bytes of the same shape, not a time: linear work
 * gives a ratio of at most 4 (less, as start-up costs the same for both), quadratic work about 16. The
 * bound of 8 is generous on purpose, so that a slow or busy machine never fails it: CPU time (bash
 * `times`, user + sys of the updater and every process it ran) does not count the waits of a loaded
 * machine, the fixed start-up only pulls the ratio down, and a first ratio over the bound is measured
 * once more before the test fails. Each shape runs with every awk of the host that the updater must
 * support (mawk, Ubuntu's, and gawk, Amazon Linux's; the system awk when neither is found), put first on
 * PATH: the quadratic cases differ between them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fakeToken, tempFolders, UPDATER_SCRIPT } from '../support/host-updater.ts';

const URL_ = 'https://gitlab.example.com';
/** 4× the bytes may cost at most this many times the CPU time (linear: ≤ 4; quadratic: ~16). */
const MAX_RATIO = 8;
/** A run that takes longer is quadratic for sure (once fixed, the largest run here takes a few seconds). */
const RUN_LIMIT_S = 60;

const folders = tempFolders();

/** mawk and gawk where installed, each as a folder holding an `awk` link to put first on PATH. */
const awks = ['mawk', 'gawk'].flatMap((name) => {
  const path = (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name)).find((file) => existsSync(file));
  return path === undefined ? [] : [{ name, path }];
});

const runner = (rest: string): string => `concurrent = 1

[[runners]]
  name = "long"
  url = "${URL_}/"
  id = 42
  token = "glrt-old-token"
  executor = "shell"
${rest}`;

const repeat = (unit: string, bytes: number): string => unit.repeat(Math.ceil(bytes / unit.length));

/** config.toml shapes with one long line of about `bytes` bytes, each valid TOML. */
const shapes: { name: string; bytes: number; config: (bytes: number) => string }[] = [
  // The red-team case: a long string value, here with escapes (decoded by the walker).
  { name: 'a long string value with escapes', bytes: 100_000, config: (b) => runner(`  description = "${repeat('abcdefgh\\t\\"\\\\', b)}"\n`) },
  { name: 'a key of many dotted parts', bytes: 20_000, config: (b) => runner(`  ${repeat('a.', b)}z = 1\n`) },
  { name: 'a table header of many dotted parts', bytes: 20_000, config: (b) => runner(`[x.${repeat('a.', b)}z]\n  k = 1\n`) },
  { name: 'deeply nested arrays', bytes: 150_000, config: (b) => runner(`  v = ${'['.repeat(b / 2)}1${']'.repeat(b / 2)}\n`) },
  { name: 'an indented array of arrays', bytes: 20_000, config: (b) => runner(`${' '.repeat(b / 2)}v = [${repeat('[1],', b / 2)}1]\n`) },
];

interface Timed {
  cpuSeconds: number;
  wallSeconds: number;
}

/** One update of a fresh copy of `text` (the token changes), with `awk` first on PATH: its CPU time. */
async function timedUpdate(text: string, awkDir: string): Promise<Timed> {
  const dir = await folders.make('urt-linear-');
  const config = join(dir, 'config.toml');
  await writeFile(config, text, { mode: 0o600 });
  const token = fakeToken();
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const args = ['--config', config, '--runner-id', '42', '--url', URL_, '--token-file', tokenFile, '--reload', 'none'];
  // timeout(1) kills the whole process group (awk included) when a run is hopeless; `times` then
  // prints the CPU time of the shell's children, the updater and everything it waited for.
  const script = `timeout -s KILL ${RUN_LIMIT_S} bash "$@"; rc=$?; times; exit $rc`;
  const env = { ...process.env, LC_ALL: 'C', PATH: `${awkDir}${delimiter}${process.env.PATH ?? ''}`, UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false', UPDATE_RUNNER_TOKEN_PKILL: 'false' };
  const start = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile('bash', ['-c', script, 'timed', UPDATER_SCRIPT, ...args], { env, maxBuffer: 1 << 20 }, (error, out, err) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout: out, stderr: err });
    });
  });
  const wallSeconds = (performance.now() - start) / 1000;
  if (code === 137) throw new Error(`the update of ${text.length} bytes was still running after ${RUN_LIMIT_S} s`);
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toMatch(/^status=updated runner_id=42 /);
  expect(await readFile(config, 'utf8')).toContain(`token = "${token}"`);
  // The last line of `times`: children's user and sys time, e.g. "0m0.412s 0m0.240s".
  const times = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(stdout);
  if (times === null) throw new Error(`no CPU times in ${JSON.stringify(stdout)}`);
  const [, um, us, sm, ss] = times.map(Number) as [number, number, number, number, number];
  return { cpuSeconds: um * 60 + us + sm * 60 + ss, wallSeconds };
}

describe.each(awks.length > 0 ? awks : [{ name: 'awk', path: '' }])('host updater with $name: work linear in the size of config.toml', ({ name, path }) => {
  it.each(shapes)('$name: 4× the bytes, at most 8× the CPU time', async ({ bytes, config }) => {
    const awkDir = await folders.make(`urt-${name}-`);
    if (path !== '') await symlink(path, join(awkDir, 'awk'));
    const small = config(bytes);
    const large = config(bytes * 4);
    let measured = '';
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const a = await timedUpdate(small, awkDir);
      const b = await timedUpdate(large, awkDir);
      const ratio = b.cpuSeconds / Math.max(a.cpuSeconds, 0.001);
      measured += `${attempt ? '; ' : ''}${(small.length / 1000).toFixed(0)} KB: ${a.cpuSeconds.toFixed(2)} s CPU (${a.wallSeconds.toFixed(2)} s wall), ${(large.length / 1000).toFixed(0)} KB: ${b.cpuSeconds.toFixed(2)} s CPU (${b.wallSeconds.toFixed(2)} s wall), ratio ${ratio.toFixed(1)}`;
      if (ratio <= MAX_RATIO) return;
    }
    expect.fail(`not linear with ${name}: ${measured}`);
  }, 4 * (RUN_LIMIT_S + 10) * 1000);
});
