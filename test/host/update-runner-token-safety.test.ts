/**
 * The host updater among neighbours: several updates of one config.toml at once (they must not lose a
 * token), a config folder another user may write (refused), a user-mode gitlab-runner whose folder
 * belongs to that user while the updater runs as root (every write happens as that user, so a link it
 * swaps in leads nowhere), and a `.runner_system_id` that is a link or not a system_id (never printed).
 */
import { spawn } from 'node:child_process';
import { chmod, chown, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { expectNoSecrets, fakeToken, HAS_SETPRIV, IS_ROOT, NOBODY, runUpdater, tempFolders } from '../support/host-updater.ts';

const folders = tempFolders();
const URL = 'https://gitlab.example.com';

/** A config.toml of `count` runners (ids 101…), each with its own old token, in a fresh 0700 folder. */
async function sharedConfig(count: number): Promise<{ dir: string; config: string }> {
  const dir = await folders.make('urt-safety-');
  const tables = Array.from({ length: count }, (_, i) => `[[runners]]\n  name = "runner-${i}"\n  url = "${URL}"\n  id = ${101 + i}\n  token = "glrt-OLD-${i}"\n  executor = "shell"\n`);
  const config = join(dir, 'config.toml');
  await writeFile(config, `concurrent = 4\ncheck_interval = 0\n\n${tables.join('\n')}`, { mode: 0o600 });
  return { dir, config };
}

async function tokenFile(dir: string, name: string, token: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return file;
}

const args = (config: string, id: number, file: string) => ['--config', config, '--runner-id', String(id), '--url', URL, '--token-file', file, '--reload', 'none'];

const tokensIn = async (config: string): Promise<Record<number, string>> =>
  Object.fromEntries(((parse(await readFile(config, 'utf8')) as { runners: Array<{ id: number; token: string }> }).runners).map((r) => [r.id, r.token]));

describe('update-runner-token.sh with neighbours', () => {
  it('lands every token when updaters of different runners of one config.toml run at once', async () => {
    const count = 8;
    const { dir, config } = await sharedConfig(count);
    const tokens = Array.from({ length: count }, () => fakeToken());
    const files = await Promise.all(tokens.map((t, i) => tokenFile(dir, `token-${i}`, t)));

    const results = await Promise.all(tokens.map((_, i) => runUpdater(args(config, 101 + i, files[i]!))));

    expect(results.map((r) => [r.code, r.stderr])).toEqual(results.map(() => [0, '']));
    for (const r of results) expectNoSecrets(r, tokens);
    expect(await tokensIn(config)).toEqual(Object.fromEntries(tokens.map((t, i) => [101 + i, t])));
  });

  it('waits a bounded time for another update\'s lock, then says so and writes nothing', async () => {
    const { dir, config } = await sharedConfig(1);
    const before = await readFile(config);
    const file = await tokenFile(dir, 'token', fakeToken());
    // Another update holding the folder's lock far longer than this one is told to wait.
    const holder = spawn('flock', ['--exclusive', dir, '-c', 'echo locked; sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    try {
      const result = await runUpdater(args(config, 101, file), { env: { UPDATE_RUNNER_TOKEN_LOCK_WAIT: '1' } });

      expect(result.code).toBe(7);
      expect(result.stderr).toBe(`update-runner-token: error: another update of this config file held its lock for 1 s; nothing was written (${dir})\n`);
      expect(await readFile(config)).toEqual(before);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('refuses a config whose folder its group may write, and writes nothing', async () => {
    const { dir, config } = await sharedConfig(1);
    const before = await readFile(config);
    await chmod(dir, 0o770);

    const result = await runUpdater(args(config, 101, await tokenFile(dir, 'token', fakeToken())));

    expect(result.code).toBe(7);
    expect(result.stderr).toMatch(/^update-runner-token: error: config directory is writable by its group or by others \(mode 770\): another user could swap the files this update writes; make it writable by its owner only \(.+\)\n$/);
    expect(await readFile(config)).toEqual(before);
  });
});

describe.runIf(IS_ROOT && HAS_SETPRIV)('update-runner-token.sh as root on a user-mode gitlab-runner folder', () => {
  /** A folder and config.toml that belong to nobody (a user-mode gitlab-runner), and a root-only file elsewhere. */
  async function userFolder(): Promise<{ dir: string; config: string; victim: string; token: string; file: string }> {
    const { dir, config } = await sharedConfig(1);
    await chown(dir, NOBODY, NOBODY);
    await chown(config, NOBODY, NOBODY);
    const outside = await folders.make('urt-victim-');
    const victim = join(outside, 'root-only');
    await writeFile(victim, 'root secret\n', { mode: 0o600 });
    const token = fakeToken();
    return { dir, config, victim, token, file: await tokenFile(outside, 'token', token) };
  }

  it('writes as the folder\'s owner: the new file and its backup belong to that user, with the mode of the original', async () => {
    const { config, file, token } = await userFolder();

    const result = await runUpdater(args(config, 101, file));

    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(await tokensIn(config)).toEqual({ 101: token });
    for (const path of [config, `${config}.bak`]) {
      const s = await stat(path);
      expect([s.uid, s.gid, s.mode & 0o777], path).toEqual([NOBODY, NOBODY, 0o600]);
    }
  });

  it('follows no link the folder\'s owner swaps in for a temporary file: the root-only file keeps its bytes and owner', async () => {
    const { config, file, victim } = await userFolder();
    const before = await readFile(config);
    // The owner's move, made at the worst moment: right after each temporary file is created in its folder.
    const bin = await folders.make('urt-fake-mktemp-');
    await writeFile(
      join(bin, 'mktemp'),
      `#!/bin/bash\nout=$(/usr/bin/mktemp "$@") || exit $?\ncase $out in */.config.toml.*) rm -f -- "$out"; ln -s "${victim}" "$out" ;; esac\nprintf '%s\\n' "$out"\n`,
      { mode: 0o755 },
    );
    await chmod(bin, 0o755);

    const result = await runUpdater(args(config, 101, file), { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });

    expect(result.code).toBe(7);
    expect(result.stderr).toMatch(/^update-runner-token: error: writing the new file as its owner \(uid 65534\) failed; nothing was replaced \(.+\)\n$/);
    expect(await readFile(victim, 'utf8')).toBe('root secret\n');
    const v = await stat(victim);
    expect([v.uid, v.mode & 0o777]).toEqual([0, 0o600]);
    expect(await readFile(config)).toEqual(before);
  });

  it('refuses a folder that belongs to a user other than the config file\'s owner', async () => {
    const { dir, config, file } = await userFolder();
    await chown(config, 0, 0);
    const before = await readFile(config);

    const result = await runUpdater(args(config, 101, file));

    expect(result.code).toBe(7);
    expect(result.stderr).toBe(`update-runner-token: error: config directory belongs to uid ${NOBODY}, neither root nor the owner of the config file (uid 0) (${dir})\n`);
    expect(await readFile(config)).toEqual(before);
  });
});

describe('update-runner-token.sh and .runner_system_id', () => {
  it('prints no system_id from a .runner_system_id that is a link, even to a system_id-shaped line', async () => {
    const { dir, config } = await sharedConfig(1);
    const elsewhere = join(await folders.make('urt-sid-'), 'other');
    await writeFile(elsewhere, 's_0a1b2c3d4e5f\n');
    await symlink(elsewhere, join(dir, '.runner_system_id'));

    const result = await runUpdater(args(config, 101, await tokenFile(dir, 'token', fakeToken())));

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ system_id= reload=none\n$/);
  });

  it.each([
    ['the first line of some other file', 'root:x:0:0:root:/root:/bin/bash\n'],
    ['a system_id with one digit too many', 's_0a1b2c3d4e5f6\n'],
    ['r_ with punctuation', 'r_abc/../etc/x\n'],
  ])('prints no system_id for %s', async (_name, text) => {
    const { dir, config } = await sharedConfig(1);
    await writeFile(join(dir, '.runner_system_id'), text);

    const result = await runUpdater(args(config, 101, await tokenFile(dir, 'token', fakeToken())));

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ system_id= reload=none\n$/);
  });

  it('prints a random r_ system_id as gitlab-runner writes it', async () => {
    const { dir, config } = await sharedConfig(1);
    await writeFile(join(dir, '.runner_system_id'), 'r_AbCdEfGh0123\n');

    const result = await runUpdater(args(config, 101, await tokenFile(dir, 'token', fakeToken())));

    expect(result.stdout).toMatch(/ system_id=r_AbCdEfGh0123 reload=none\n$/);
  });
});
