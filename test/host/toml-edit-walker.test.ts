/**
 * host/toml-edit.awk, the updater's TOML walker, as a file of its own: where update-runner-token.sh finds
 * it (next to itself as started, next to the file behind a link, or at UPDATE_RUNNER_TOKEN_WALKER), what a
 * run without it does, and its read-only list mode (doctor.sh's reader) under mawk and gawk. The walker is
 * the one beside UPDATER_SCRIPT (the embedded copy under `npm run test:embedded-updater`).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, readFile, symlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { expectNoSecrets, fakeToken, runUpdater, tempFolders, UPDATER_FIXTURES, UPDATER_SCRIPT, UPDATER_WALKER, writeWorkspace } from '../support/host-updater.ts';

const folders = tempFolders();
const URL = 'https://gitlab.example.com';
const CONFIG = `concurrent = 1

[[runners]]
  name = "first"
  url = "${URL}/"
  id = 7
  token = "glrt-OLD-FIRST"
  executor = "shell"
`;

/** mawk and gawk where installed. */
const awks = ['mawk', 'gawk'].flatMap((name) => {
  const path = (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name)).find((file) => existsSync(file));
  return path === undefined ? [] : [{ name, path }];
});

async function workspace(): Promise<{ dir: string; config: string; tokenFile: string; token: string; original: Buffer }> {
  return writeWorkspace(await folders.make('urt-walker-'), CONFIG, 0o600);
}

const updateArgs = (ws: { config: string; tokenFile: string }) => ['--config', ws.config, '--runner-id', '7', '--url', URL, '--token-file', ws.tokenFile, '--reload', 'none'];

const tokenOf = async (config: string) => (parse(await readFile(config, 'utf8')) as { runners: Array<{ token: string }> }).runners[0]?.token;

/** `bash SCRIPT args…` from `cwd`, with `env` added; never throws. */
function bash(script: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false', UPDATE_RUNNER_TOKEN_PKILL: 'false', ...options.env };
  return new Promise((done) => {
    execFile('bash', [script, ...args], { env, cwd: options.cwd }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** The walker in list mode on `text`, with `awk` (a path) or the system awk. */
function list(text: string, awk = 'awk', env: Record<string, string> = {}): Promise<string[]> {
  return new Promise((done, fail) => {
    const child = execFile(awk, ['-f', UPDATER_WALKER], { env: { ...process.env, LC_ALL: 'C', URT_MODE: 'list', URT_OUT: '', ...env } }, (error, stdout) => {
      if (error) fail(error);
      else done(stdout.split('\n').filter(Boolean));
    });
    child.stdin?.end(text);
  });
}

describe('update-runner-token.sh finds its walker', () => {
  it('next to itself as started, from any working directory, by a relative path too', async () => {
    const ws = await workspace();
    const dir = await folders.make('urt-walker-copy-');
    await copyFile(UPDATER_SCRIPT, join(dir, 'update-runner-token.sh'));
    await copyFile(UPDATER_WALKER, join(dir, 'toml-edit.awk'));
    const result = await bash('update-runner-token.sh', updateArgs(ws), { cwd: dir });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^status=updated runner_id=7 /);
    expect(await tokenOf(ws.config)).toBe(ws.token);
  });

  it('next to the file behind a link to the script (links resolved)', async () => {
    const ws = await workspace();
    const bin = await folders.make('urt-walker-bin-');
    await symlink(UPDATER_SCRIPT, join(bin, 'update-runner-token.sh'));
    const result = await bash(join(bin, 'update-runner-token.sh'), updateArgs(ws));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await tokenOf(ws.config)).toBe(ws.token);
  });

  it('at UPDATE_RUNNER_TOKEN_WALKER when that is set', async () => {
    const ws = await workspace();
    const alone = await folders.make('urt-walker-alone-');
    await copyFile(UPDATER_SCRIPT, join(alone, 'update-runner-token.sh'));
    const result = await bash(join(alone, 'update-runner-token.sh'), updateArgs(ws), { env: { UPDATE_RUNNER_TOKEN_WALKER: UPDATER_WALKER } });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await tokenOf(ws.config)).toBe(ws.token);
  });

  it('and without it fails with 1 and one line naming where it looked, the file untouched, the token never printed', async () => {
    const ws = await workspace();
    const alone = await folders.make('urt-walker-alone-');
    const script = join(alone, 'update-runner-token.sh');
    await copyFile(UPDATER_SCRIPT, script);
    const result = await bash(script, updateArgs(ws));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `update-runner-token: error: the TOML walker toml-edit.awk is missing or unreadable: install it next to update-runner-token.sh (or set UPDATE_RUNNER_TOKEN_WALKER) (${join(alone, 'toml-edit.awk')})\n`,
    );
    expect(await readFile(ws.config)).toEqual(ws.original);
    expectNoSecrets(result, [ws.token, 'glrt-OLD-FIRST']);
    // A wrong override is no fallback to the copy next to the script either.
    await copyFile(UPDATER_WALKER, join(alone, 'toml-edit.awk'));
    const wrong = await bash(script, updateArgs(ws), { env: { UPDATE_RUNNER_TOKEN_WALKER: join(alone, 'absent.awk') } });
    expect(wrong.code).toBe(1);
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it.skipIf(process.getuid?.() !== 0)('as root, refuses a walker that another user could change, or that lies in a folder others may write, before touching the file', async () => {
    const ws = await workspace();
    const unsafe = async (prepare: (dir: string, walker: string) => Promise<void>) => {
      const dir = await folders.make('urt-walker-unsafe-');
      const walker = join(dir, 'toml-edit.awk');
      await copyFile(UPDATER_WALKER, walker);
      await prepare(dir, walker);
      return bash(UPDATER_SCRIPT, updateArgs(ws), { env: { UPDATE_RUNNER_TOKEN_WALKER: walker } });
    };
    const results = [
      await unsafe(async (_dir, walker) => chown(walker, 65534, 65534)),
      await unsafe(async (_dir, walker) => chmod(walker, 0o666)),
      await unsafe(async (dir) => chmod(dir, 0o777)),
    ];
    for (const result of results) {
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^update-runner-token: error: the TOML walker runs as root, so it and its folder must belong to root and be writable by root only/);
      expectNoSecrets(result, [ws.token, 'glrt-OLD-FIRST']);
    }
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it.skipIf(process.getuid?.() !== 0)('as root, and so does doctor.sh (exit 3), with a walker others may write', async () => {
    const ws = await workspace();
    const dir = await folders.make('urt-walker-unsafe-');
    const walker = join(dir, 'toml-edit.awk');
    await copyFile(UPDATER_WALKER, walker);
    await chmod(walker, 0o646);
    const doctor = fileURLToPath(new globalThis.URL('../../host/doctor.sh', import.meta.url));

    const result = await bash(doctor, ['--config', ws.config, '--walker', walker, '--probe', 'no']);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe(`doctor.sh: error: the TOML walker runs as root, so it and its folder must belong to root and be writable by root only (chown root; chmod go-w) (${walker})\n`);
  });

  it('only once the arguments are good: a usage error is still exit 2', async () => {
    const alone = await folders.make('urt-walker-alone-');
    await copyFile(UPDATER_SCRIPT, join(alone, 'update-runner-token.sh'));
    const result = await bash(join(alone, 'update-runner-token.sh'), ['--runner-id', '7']);
    expect(result.code).toBe(2);
  });

  it('and the run through runUpdater (the helper of every host test) uses the walker beside UPDATER_SCRIPT', async () => {
    const ws = await workspace();
    const result = await runUpdater(updateArgs(ws));
    expect(result.code).toBe(0);
    expect(existsSync(UPDATER_WALKER)).toBe(true);
  });
});

describe.each(awks.length > 0 ? awks : [{ name: 'awk', path: 'awk' }])('the walker in list mode (doctor.sh) with $name', ({ path }) => {
  it('lists every [[runners]] table with its fields, the token only as its kind', async () => {
    const secret = fakeToken();
    const text = `concurrent = 2

[[runners]]
  name = "a \\"quoted\\" name"
  url = "https://oauth2:pw@gitlab.example.com/"
  id = 7
  token = "${secret}"
  token_obtained_at = 2026-01-01T00:00:00Z
  token_expires_at = "2026-04-01T00:00:00Z"
  tls-ca-file = '/etc/gitlab-runner/ca.crt'
  [runners.feature_flags]
    FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true

[[runners]]
  name = "legacy"
  url = "https://other.example.com"
  id = +8
  token = "Hd4LegacyHostToken000001"
  feature_flags = { FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = false }

[[runners]]
  url = "https://gitlab.example.com"
  token = ""
  feature_flags.FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true

[[runners]]
  name = "prefixed"
  url = "https://gitlab.example.com"
  id = 9
  token = 'acme-glrt-t1_PREFIXED'
`;
    const lines = await list(text, path);
    expect(lines.at(-1)).toBe('ok list 4');
    expect(lines.slice(0, -1).map((l) => l.split('\x1f'))).toEqual([
      ['runner', '1', 'a "quoted" name', 'https://oauth2:pw@gitlab.example.com/', '7', 'glrt', '2026-01-01T00:00:00Z', '2026-04-01T00:00:00Z', '1', '/etc/gitlab-runner/ca.crt'],
      ['runner', '2', 'legacy', 'https://other.example.com', '8', 'legacy', '', '', '0', ''],
      ['runner', '3', '', 'https://gitlab.example.com', '', 'missing', '', '', '1', ''],
      ['runner', '4', 'prefixed', 'https://gitlab.example.com', '9', 'glrt', '', '', '0', ''],
    ]);
    expect(lines.join('\n')).not.toContain(secret);
  });

  it('reads no token file and writes nothing, whatever the update variables say', async () => {
    const dir = await folders.make('urt-walker-list-');
    const out = join(dir, 'out');
    const lines = await list(CONFIG, path, { URT_OUT: out, URT_BAK: join(dir, 'bak'), URT_TOKEN_FILE: join(dir, 'absent'), URT_PREV_FILE: join(dir, 'absent'), URT_URL: URL, URT_ID: '7' });
    expect(lines.at(-1)).toBe('ok list 1');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(dir, 'bak'))).toBe(false);
  });

  it('is as strict as an update: a malformed file gives only its err 4 line, no runner', async () => {
    const lines = await list(`${CONFIG}\n[[runners]]\n  url = "${URL}"\n  token = "glrt-x"\n  id = 7\n  id = 8\n`, path);
    expect(lines).toEqual(['err 4 malformed TOML at line 14: duplicate key id']);
    expect(await list('[[runners]]\n  name = "unterminated\n', path)).toEqual(['err 4 malformed TOML at line 2: unterminated string']);
  });

  it('says ok list 0 for a file without runners', async () => {
    expect(await list('concurrent = 1\n[session_server]\n  listen_address = "[::]:8093"\n', path)).toEqual(['ok list 0']);
  });

  it('keeps a control character a string decodes to out of the line', async () => {
    const lines = await list(`[[runners]]\n  name = "two\\nlines\\there"\n  url = "${URL}"\n  id = 1\n  token = "glrt-x"\n`, path);
    expect(lines[0]?.split('\x1f')[2]).toBe('two?lines?here');
  });

  it('lists as many tables as a TOML parser finds in the fixtures', async () => {
    for (const fixture of ['several-runners.toml', 'crlf.toml', 'multiline-strings.toml', 'quoting.toml', 'ff-inline.toml', 'ff-dotted.toml']) {
      const text = await readFile(join(UPDATER_FIXTURES, fixture), 'utf8');
      const lines = await list(text, path);
      // smol-toml's count: a "[[runners]]" inside a multi-line string is none.
      const count = ((parse(text) as { runners?: unknown[] }).runners ?? []).length;
      expect(lines.at(-1), fixture).toBe(`ok list ${count}`);
      expect(lines.filter((l) => l.startsWith('runner\x1f')), fixture).toHaveLength(count);
    }
  });
});
