/**
 * How host/update-runner-token.sh proves the new config.toml before the rename. It reads the file once: an
 * update whose edits are local (a value replaced by one of the same kind, a line inserted where the runner
 * defines no such key or table yet) is proven by that pass and a second reading of each edited line; any
 * other change is read back from the temporary file. Either way a result that would not be valid TOML,
 * or not current, is never renamed into place.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { runUpdater, SELF_ROTATION_FLAG as FLAG, tempFolders, writeWorkspace, type UpdaterWorkspace } from '../support/host-updater.ts';

const URL = 'https://gitlab.example.com';
const folders = tempFolders();

/** One runner (id 5) with `body` as the lines after its id, then `after` (other tables). */
const config = (body: string, after = ''): string => `concurrent = 1

[[runners]]
  name = "proof"
  url = "${URL}"
  id = 5
${body}${after}`;

const workspace = async (text: string): Promise<UpdaterWorkspace> => writeWorkspace(await folders.make('urt-proof-'), text, 0o600);
const update = (ws: UpdaterWorkspace, ...more: string[]) => runUpdater(['--config', ws.config, '--runner-id', '5', '--url', URL, '--token-file', ws.tokenFile, '--reload', 'none', ...more]);

type Runner = Record<string, unknown> & { feature_flags?: Record<string, unknown> };
const runnerOf = (text: string): Runner => ((parse(text) as { runners: Runner[] }).runners[0] ?? {}) as Runner;

async function expectRefusedUntouched(ws: UpdaterWorkspace, result: Awaited<ReturnType<typeof update>>, message: RegExp): Promise<void> {
  expect(result.code).toBe(7);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^update-runner-token: error: .+\n$/);
  expect(result.stderr).toMatch(message);
  expect(await readFile(ws.config)).toEqual(ws.original);
  expect((await readdir(ws.dir)).sort()).toEqual(['config.toml', 'new-token']);
  expect(existsSync(`${ws.config}.bak`)).toBe(false);
}

describe('update-runner-token.sh proves the new file before it replaces the old one', () => {
  it('writes a local edit (token, timestamps, a new flags table) in one pass, valid and current', async () => {
    const ws = await workspace(config('  token = "glrt-OLD"\n  token_obtained_at = 2026-01-01T00:00:00Z\n  token_expires_at = "2026-02-01T00:00:00Z"\n  executor = "shell"\n'));

    const result = await update(ws, '--expires-at', '2026-05-01T12:00:00+02:00');

    expect([result.code, result.stderr]).toEqual([0, '']);
    const text = await readFile(ws.config, 'utf8');
    const runner = runnerOf(text);
    expect(runner.token).toBe(ws.token);
    expect(runner.token_expires_at).toBe('2026-05-01T10:00:00Z');
    expect(runner.feature_flags).toEqual({ [FLAG]: true });
    expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
    expect((await update(ws)).stdout).toMatch(/^status=already-current /);
  });

  it('reads back a flags table added after a [runners.feature_flags.x] table of the runner, and writes it', async () => {
    const ws = await workspace(config('  token = "glrt-OLD"\n  [runners.feature_flags.extra]\n    x = 1\n'));

    const result = await update(ws);

    expect([result.code, result.stderr]).toEqual([0, '']);
    const runner = runnerOf(await readFile(ws.config, 'utf8'));
    expect(runner.feature_flags).toEqual({ extra: { x: 1 }, [FLAG]: true });
  });

  it('refuses a token key that the runner already defines as a table (dotted keys): nothing is replaced', async () => {
    const ws = await workspace(config('  token.note = "not a token"\n  executor = "shell"\n'));

    await expectRefusedUntouched(ws, await update(ws), /the new file did not verify; nothing was replaced/);
  });

  it('refuses a flag that the runner already defines as a table: nothing is replaced', async () => {
    const ws = await workspace(config('  token = "glrt-OLD"\n  [runners.feature_flags]\n    FF_USE_FASTZIP = true\n  [runners.feature_flags.' + FLAG + ']\n    x = 1\n'));

    await expectRefusedUntouched(ws, await update(ws), /the new file did not verify; nothing was replaced/);
  });

  it('refuses a flags table of the runner that follows another table (the new one would define it twice)', async () => {
    const ws = await workspace(config('  token = "glrt-OLD"\n', '\n[session_server]\n  session_timeout = 1800\n[runners.feature_flags]\n  FF_USE_FASTZIP = true\n'));

    await expectRefusedUntouched(ws, await update(ws), /the new file did not verify; nothing was replaced/);
  });

  it('refuses an expiry that is no TOML date once written in UTC (year 10000): nothing is replaced', async () => {
    const ws = await workspace(config('  token = "glrt-OLD"\n  token_expires_at = 2026-02-01T00:00:00Z\n  feature_flags.' + FLAG + ' = true\n'));

    await expectRefusedUntouched(ws, await update(ws, '--expires-at', '9999-12-31T23:59:59-01:00'), /the new file did not verify; nothing was replaced/);
  });
});
