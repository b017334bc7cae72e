/**
 * How the token reaches host/update-runner-token.sh: from a file, or from a descriptor (a pipe from the SSM
 * wrapper, a socket from the local engine) so that it never has to be on disk; and which bytes it refuses
 * before writing anything (gitlab-runner's TOML parser would reject the file, or the token is absurdly long).
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { fakeToken, runUpdater, tempFolders, UPDATER_FIXTURES, UPDATER_SCRIPT, writeWorkspace, type UpdaterResult } from '../support/host-updater.ts';

const URL = 'https://gitlab.example.com';
const folders = tempFolders();

const runnersOf = (text: string): Array<Record<string, unknown>> => (parse(text) as { runners: Array<Record<string, unknown>> }).runners;

/** Runs the updater with `inputs[i]` on descriptor 3 + i (Node makes them sockets, as for the local engine). */
function runWithDescriptors(args: string[], inputs: Buffer[], env: Record<string, string> = {}): Promise<UpdaterResult> {
  return new Promise((done) => {
    const child = spawn('bash', [UPDATER_SCRIPT, ...args], {
      env: { ...process.env, UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false', UPDATE_RUNNER_TOKEN_PKILL: 'false', ...env },
      stdio: ['ignore', 'pipe', 'pipe', ...inputs.map(() => 'pipe' as const)],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    inputs.forEach((input, i) => {
      const pipe = child.stdio[3 + i] as Writable;
      pipe.on('error', () => undefined);
      pipe.end(input);
    });
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

describe('the token handed to the updater', () => {
  it('comes on descriptors 3 and 4 (--token-file /dev/fd/3, --previous-token-file /dev/fd/4), and the previous one still picks a table without id', async () => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'legacy-no-ids.toml')), 0o600);
    const args = ['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', '/dev/fd/3', '--previous-token-file', '/dev/fd/4', '--reload', 'none'];

    const result = await runWithDescriptors(args, [Buffer.from(`${ws.token}\n`), Buffer.from('glrt-OLDTOKEN-A\n')]);

    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^status=updated runner_id=7 /);
    expect(runnersOf(await readFile(ws.config, 'utf8')).map((r) => r.token)).toEqual([ws.token, 'glrt-OLDTOKEN-B']);
    // Read once into memory, the token serves every pass of the walker over the file, and a re-run.
    const again = await runWithDescriptors(args, [Buffer.from(`${ws.token}\n`), Buffer.from('glrt-OLDTOKEN-A\n')]);
    expect(again.stdout).toMatch(/^status=already-current /);
  });

  it('comes on /dev/stdin from a pipe', async () => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'several-runners.toml')), 0o600);

    // sh -c '…' SCRIPT ARGS…: the script is $0.
    const result = await runUpdater(['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', '/dev/stdin', '--reload', 'none'], {
      wrap: ['sh', '-c', 'printf "%s\\n" "$URT_TEST_TOKEN" | bash "$0" "$@"'],
      env: { URT_TEST_TOKEN: ws.token },
    });

    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^status=updated runner_id=7 /);
    expect(runnersOf(await readFile(ws.config, 'utf8'))[0]?.token).toBe(ws.token);
  });

  it('is refused with exit 2 when the descriptor is not open', async () => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'several-runners.toml')), 0o600);

    const result = await runUpdater(['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', '/dev/fd/7', '--reload', 'none']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('update-runner-token: error: token descriptor is not open, or not 0 or 3-9 (--token-file /dev/fd/7)\n');
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it('may be 1024 bytes of multi-byte UTF-8, written as is', async () => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'several-runners.toml')), 0o600);
    // 5 + 2 + 3 + 4 bytes, then ASCII up to exactly 1024.
    const head = 'glrt-é€😀';
    const token = head + 'x'.repeat(1024 - Buffer.byteLength(head));
    expect(Buffer.byteLength(token)).toBe(1024);

    const result = await runWithDescriptors(['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', '/dev/fd/3', '--reload', 'none'], [Buffer.from(`${token}\n`)]);

    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^status=updated /);
    expect(runnersOf(await readFile(ws.config, 'utf8'))[0]?.token).toBe(token);
  });

  const marker = 'glrt-SECRETPART';
  const refused: Array<{ what: string; bytes: Buffer; message: RegExp }> = [
    { what: 'a NUL byte', bytes: Buffer.concat([Buffer.from(`${marker}AB`), Buffer.from([0]), Buffer.from('CD')]), message: /token holds a NUL byte/ },
    { what: 'a NUL byte at the start', bytes: Buffer.concat([Buffer.from([0]), Buffer.from(marker)]), message: /token holds a NUL byte/ },
    { what: 'a byte that is never UTF-8 (0xff)', bytes: Buffer.concat([Buffer.from(marker), Buffer.from([0xff])]), message: /token is not valid UTF-8/ },
    { what: 'a Latin-1 é (0xe9)', bytes: Buffer.concat([Buffer.from(marker), Buffer.from([0xe9, 0x41])]), message: /token is not valid UTF-8/ },
    { what: 'a cut UTF-8 sequence at the end', bytes: Buffer.concat([Buffer.from(marker), Buffer.from([0xe2, 0x82])]), message: /token is not valid UTF-8/ },
    { what: 'an overlong encoding (C0 AF)', bytes: Buffer.concat([Buffer.from(marker), Buffer.from([0xc0, 0xaf])]), message: /token is not valid UTF-8/ },
    { what: 'a UTF-16 surrogate (ED A0 80)', bytes: Buffer.concat([Buffer.from(marker), Buffer.from([0xed, 0xa0, 0x80])]), message: /token is not valid UTF-8/ },
    { what: 'a code point beyond U+10FFFF (F4 90 80 80)', bytes: Buffer.concat([Buffer.from(marker), Buffer.from([0xf4, 0x90, 0x80, 0x80])]), message: /token is not valid UTF-8/ },
    { what: 'a control character (0x01)', bytes: Buffer.from(`${marker}\u0001X`), message: /token holds a control character/ },
    { what: 'an escape (0x1b)', bytes: Buffer.from(`${marker}\u001b[31m`), message: /token holds a control character/ },
    { what: 'DEL (0x7f)', bytes: Buffer.from(`${marker}\u007f`), message: /token holds a control character/ },
    { what: '1025 bytes', bytes: Buffer.from(marker + 'x'.repeat(1025 - marker.length)), message: /token is longer than 1024 bytes/ },
    { what: '6.4 MB', bytes: Buffer.from(marker + 'x'.repeat(6_400_000)), message: /token is longer than 1024 bytes/ },
  ];

  it.each(refused)('is refused when it holds $what: exit 2, one line that does not print it, nothing written', async ({ bytes, message }) => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'several-runners.toml')), 0o600);
    await writeFile(ws.tokenFile, Buffer.concat([bytes, Buffer.from('\n')]));
    const started = Date.now();

    const result = await runUpdater(['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', ws.tokenFile, '--reload', 'none']);

    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^update-runner-token: error: ${message.source} \\(--token-file ${ws.tokenFile}\\)\\n$`));
    expect(result.stderr).not.toContain(marker);
    expect(await readFile(ws.config)).toEqual(ws.original);
    expect((await readdir(ws.dir)).sort()).toEqual(['config.toml', 'new-token']);
  });

  it.each(refused.filter((r) => r.what !== '6.4 MB'))('is refused on a descriptor too when it holds $what', async ({ bytes, message }) => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'several-runners.toml')), 0o600);

    const result = await runWithDescriptors(['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', '/dev/fd/3', '--reload', 'none'], [bytes]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^update-runner-token: error: ${message.source} \\(--token-file /dev/fd/3\\)\\n$`));
    expect(result.stderr).not.toContain(marker);
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it('refuses a previous token with a NUL byte the same way', async () => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'legacy-no-ids.toml')), 0o600);
    const previous = join(ws.dir, 'previous-token');
    await writeFile(previous, Buffer.concat([Buffer.from('glrt-OLDTOKEN-A'), Buffer.from([0]), Buffer.from('\n')]));

    const result = await runUpdater(['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', ws.tokenFile, '--previous-token-file', previous, '--reload', 'none']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`update-runner-token: error: token holds a NUL byte (--previous-token-file ${previous})\n`);
    expect(result.stderr + result.stdout).not.toContain('OLDTOKEN');
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it('never appears on the command line of the updater or of anything it runs', async () => {
    const ws = await writeWorkspace(await folders.make('urt-input-'), await readFile(join(UPDATER_FIXTURES, 'several-runners.toml')), 0o600, fakeToken('CMDLINE'));
    // A reload tool that records the command line and environment of every process of this session.
    const spy = join(ws.dir, 'systemctl');
    const seen = join(ws.dir, 'seen');
    await writeFile(spy, `#!/usr/bin/env bash\nfor p in /proc/[0-9]*; do tr '\\0' ' ' <"$p/cmdline"; echo; tr '\\0' '\\n' <"$p/environ"; done >>${JSON.stringify(seen)} 2>/dev/null\nexit 3\n`, { mode: 0o755 });

    const result = await runWithDescriptors(['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', '/dev/fd/3', '--reload', 'sighup'], [Buffer.from(`${ws.token}\n`)], {
      UPDATE_RUNNER_TOKEN_SYSTEMCTL: spy,
    });

    expect(result.stdout).toMatch(/^status=updated .* reload=not-running\n$/);
    const text = await readFile(seen, 'utf8');
    expect(text).toContain('--token-file /dev/fd/3');
    expect(text).not.toContain(ws.token);
  });
});
