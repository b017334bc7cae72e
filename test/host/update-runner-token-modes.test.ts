/**
 * host/update-runner-token.sh --mode add|remove: the real script with real bash (the host's awk) on
 * copies of the fixtures, checked with smol-toml and byte for byte.
 */
import { existsSync } from 'node:fs';
import { chmod, chown, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import {
  expectNoSecrets as expectNoneOf,
  fakeToken,
  OTHER_USER_SKIP_REASON,
  IS_ROOT,
  NOBODY,
  runUpdater,
  SELF_ROTATION_FLAG as FLAG,
  tempFolders,
  UPDATER_FIXTURES as FIXTURES,
  writeWorkspace,
  type UpdaterResult,
  type UpdaterWorkspace,
} from '../support/host-updater.ts';

const ZERO_TIME = '0001-01-01T00:00:00Z';

type Doc = Record<string, unknown>;
type Runner = Record<string, unknown>;

type RunResult = UpdaterResult;

const run = (args: string[], env: Record<string, string> = {}, wrap: string[] = ['bash']): Promise<RunResult> => runUpdater(args, { env, wrap });

const folders = tempFolders();

type Workspace = UpdaterWorkspace;

const workspace = async (text: string | Buffer, mode = 0o600): Promise<Workspace> => writeWorkspace(await folders.make('urt-modes-'), text, mode);

async function newToken(ws: Workspace): Promise<string> {
  ws.token = fakeToken();
  await writeFile(ws.tokenFile, `${ws.token}\n`);
  return ws.token;
}

const fixture = (name: string): Promise<Buffer> => readFile(join(FIXTURES, name));
const normUrl = (url: unknown): string => String(url).replace(/\/+$/, '');

const addArgs = (ws: Workspace, url: string, id: number | string, from: number | string, ...more: string[]): string[] => [
  '--mode', 'add', '--config', ws.config, '--runner-id', String(id), '--url', url, '--token-file', ws.tokenFile,
  '--from-runner-id', String(from), '--reload', 'none', ...more,
];
const removeArgs = (ws: Workspace, url: string, id: number | string, ...more: string[]): string[] => [
  '--mode', 'remove', '--config', ws.config, '--runner-id', String(id), '--url', url, '--reload', 'none', ...more,
];

/** Every old token of the fixtures, the new one and the removed runner's: none may be printed. */
const expectNoSecrets = (result: RunResult, ...secrets: string[]): void => expectNoneOf(result, [...secrets, 'glrt-OLDTOKEN-A', 'glrt-OLDTOKEN-B', 'glrt-OLDTOKEN-C']);

function expectOneErrorLine(result: RunResult, code: number, message: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stdout).toBe('');
  expect(result.stderr.split('\n')).toHaveLength(2);
  expect(result.stderr).toMatch(/^update-runner-token: error: .+\n$/);
  expect(result.stderr).toMatch(message);
}

/** Text with a final line break, so a file without one compares as a sequence of whole lines. */
const terminated = (text: string, eol: string): string => (text === '' || text.endsWith('\n') ? text : `${text}${eol}`);

/**
 * after = before with one contiguous block of whole lines inserted (or removed). Where the block
 * could sit at several places (it repeats the lines around it), the first that matches `shape`.
 */
function expectOneBlock(before: string, after: string, kind: 'inserted' | 'removed', shape = /[^]/): string {
  const eol = before.includes('\r\n') ? '\r\n' : '\n';
  const [long, short] = kind === 'inserted' ? [terminated(after, eol), terminated(before, eol)] : [terminated(before, eol), terminated(after, eol)];
  const size = long.length - short.length;
  expect(size).toBeGreaterThan(0);
  const blocks: string[] = [];
  for (let p = 0; p <= short.length; p = short.indexOf('\n', p) + 1 || short.length + 1) {
    if (long.startsWith(short.slice(0, p)) && long.endsWith(short.slice(p))) blocks.push(long.slice(p, p + size));
  }
  expect(blocks.length, 'not one contiguous block of lines').toBeGreaterThan(0);
  // A missing final newline stays missing; CRLF stays CRLF.
  if (after !== '') expect(after.endsWith('\n')).toBe(before.endsWith('\n'));
  if (eol === '\r\n') expect(after.replace(/\r\n/g, '')).not.toContain('\n');
  const block = blocks.find((b) => shape.test(b));
  expect(block, `no block of the expected shape among ${JSON.stringify(blocks)}`).toBeDefined();
  return block as string;
}

interface RunnerRef {
  fixture: string;
  index: number;
  url: string;
  id: number;
}

/** Every runner of the corpus that --mode add/remove can select: a url and an id no other table shares. */
async function selectableRunners(): Promise<RunnerRef[]> {
  const refs: RunnerRef[] = [];
  for (const name of (await readdir(FIXTURES)).filter((n) => n.endsWith('.toml')).sort()) {
    const runners = ((parse(await readFile(join(FIXTURES, name), 'utf8')) as Doc).runners ?? []) as Runner[];
    runners.forEach((runner, index) => {
      if (typeof runner.url !== 'string' || typeof runner.id !== 'number') return;
      const same = runners.filter((r) => normUrl(r.url) === normUrl(runner.url) && r.id === runner.id);
      if (same.length === 1) refs.push({ fixture: name, index, url: runner.url, id: runner.id });
    });
  }
  return refs;
}

const REFS = await selectableRunners();
const label = (ref: RunnerRef): string => `${ref.fixture} runner #${ref.index} (id ${ref.id})`;

/** The copy smol-toml should see: the old runner but for id, token, timestamps and the flag. */
function expectedCopy(old: Runner, actual: Runner, id: number, token: string, expiresAt?: string): Runner {
  const copy: Runner = structuredClone(old);
  copy.id = id;
  copy.token = token;
  if ('token_obtained_at' in old) {
    const value = actual.token_obtained_at;
    expect(typeof value === 'string').toBe(typeof old.token_obtained_at === 'string');
    const at = Date.parse(value instanceof Date ? value.toISOString() : String(value));
    expect(Math.abs(at - Date.now())).toBeLessThan(120_000);
    copy.token_obtained_at = value;
  }
  if ('token_expires_at' in old) {
    const value = actual.token_expires_at;
    expect(typeof value === 'string').toBe(typeof old.token_expires_at === 'string');
    const text = value instanceof Date ? value.toISOString() : String(value);
    expect(Date.parse(text)).toBe(Date.parse(expiresAt ?? ZERO_TIME));
    copy.token_expires_at = value;
  }
  copy.feature_flags = { ...((old.feature_flags as Record<string, unknown> | undefined) ?? {}), [FLAG]: true };
  return copy;
}

describe('update-runner-token.sh --mode add', () => {
  it('finds runners to copy in the fixture corpus', () => {
    expect(REFS.length).toBeGreaterThanOrEqual(20);
  });

  describe.each(REFS.map((ref) => ({ ...ref, label: label(ref) })))('$label', (ref) => {
    it('appends a copy right after the old runner with only id, token, timestamps and the flag changed; a second run is already current', async () => {
      const ws = await workspace(await fixture(ref.fixture));
      const before = parse(ws.original.toString('utf8')) as Doc;
      const runners = before.runners as Runner[];
      const newId = 990000 + ref.index;
      const result = await run(addArgs(ws, ref.url, newId, ref.id));
      expectNoSecrets(result, ws.token);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(`status=added runner_id=${newId} config=${ws.config} system_id= reload=none\n`);
      expect(result.code).toBe(0);

      const text = await readFile(ws.config, 'utf8');
      const after = parse(text) as Doc;
      const copy = (after.runners as Runner[])[ref.index + 1] as Runner;
      const old = runners[ref.index] as Runner;
      const expected = { ...before, runners: [...runners.slice(0, ref.index + 1), expectedCopy(old, copy, newId, ws.token), ...runners.slice(ref.index + 1)] };
      expect(after).toEqual(expected);
      // The original bytes all stay; the copy is one block of lines, starting with a blank line.
      expectOneBlock(ws.original.toString('utf8'), text, 'inserted', /^\r?\n[ \t]*\[\[[ \t]*runners[ \t]*\]\]/);
      expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
      expect((await stat(ws.config)).mode & 0o777).toBe(0o600);

      const again = await run(addArgs(ws, ref.url, newId, ref.id));
      expectNoSecrets(again, ws.token);
      expect(again.stdout).toBe(`status=already-current runner_id=${newId} config=${ws.config} system_id= reload=skipped\n`);
      expect(again.code).toBe(0);
      expect(await readFile(ws.config, 'utf8')).toBe(text);
    });
  });

  it('writes --expires-at into the copy, in UTC', async () => {
    const ws = await workspace(await fixture('several-runners.toml'));
    const result = await run(addArgs(ws, 'https://gitlab.example.com', 10, 8, '--expires-at', '2026-03-01T12:00:00.000+02:00'));
    expect(result.code).toBe(0);
    const copy = ((parse(await readFile(ws.config, 'utf8')) as Doc).runners as Runner[])[2] as Runner;
    expect(copy.id).toBe(10);
    expect((copy.token_expires_at as Date).toISOString()).toBe('2026-03-01T10:00:00.000Z');
  });

  it('keeps the name of the old runner', async () => {
    const ws = await workspace(await fixture('several-runners.toml'));
    await run(addArgs(ws, 'https://gitlab.example.com', 10, 8));
    const runners = (parse(await readFile(ws.config, 'utf8')) as Doc).runners as Runner[];
    expect(runners.map((r) => [r.name, r.id])).toEqual([['shell-runner', 7], ['docker-runner', 8], ['docker-runner', 10], ['staging-runner', 9]]);
  });

  it('writes exactly these lines on the fixture with several runners, before the comment that leads into the next one', async () => {
    const ws = await workspace(await fixture('several-runners.toml'));
    await run(addArgs(ws, 'https://gitlab.example.com/', 10, 8));
    const text = await readFile(ws.config, 'utf8');
    const block = expectOneBlock(ws.original.toString('utf8'), text, 'inserted', /^\n\[\[runners\]\]\n {2}name = "docker-runner"\n/);
    const stamp = /token_obtained_at = (\S+)/.exec(block)?.[1];
    expect(block).toBe(
      [
        '',
        '[[runners]]',
        '  name = "docker-runner"',
        '  url = "https://gitlab.example.com/"',
        '  id = 10',
        `  token = "${ws.token}"`,
        `  token_obtained_at = ${stamp}`,
        `  token_expires_at = ${ZERO_TIME}`,
        '  executor = "docker"',
        '  limit = 4',
        '  [runners.custom_build_dir]',
        '  [runners.cache]',
        '    MaxUploadedArchiveSize = 0',
        '  [runners.docker]',
        '    image = "ubuntu:22.04"',
        '    privileged = false',
        '    volumes = ["/cache", "/var/run/docker.sock:/var/run/docker.sock"]',
        '  [runners.feature_flags]',
        `    ${FLAG} = true`,
        '',
      ].join('\n'),
    );
    expect(text).toContain(`${FLAG} = true\n\n# Canary runner on the staging instance`);
  });

  it('copies a CRLF runner with CRLF line breaks', async () => {
    const ws = await workspace(await fixture('crlf.toml'));
    const result = await run(addArgs(ws, 'https://gitlab.example.com', 901, 900));
    expect(result.code).toBe(0);
    const text = await readFile(ws.config, 'utf8');
    const block = expectOneBlock(ws.original.toString('utf8'), text, 'inserted', /^\r\n\[\[runners\]\]\r\n/);
    expect(block.replace(/\r\n/g, '')).not.toContain('\n');
    expect((parse(text) as Doc).runners).toHaveLength(2);
  });

  it('copies the last runner of a file without a final newline and leaves the file without one', async () => {
    const ws = await workspace(await fixture('no-final-newline.toml'));
    const result = await run(addArgs(ws, 'http://gitlab.lan:8080', 13, 12));
    expect(result.code).toBe(0);
    const text = await readFile(ws.config, 'utf8');
    expect(text.endsWith('\n')).toBe(false);
    expect(text.startsWith(`${ws.original.toString('utf8')}\n\n[[runners]]\n`)).toBe(true);
    expect(((parse(text) as Doc).runners as Runner[]).map((r) => r.id)).toEqual([12, 13]);
  });

  it('updates the token of a runner that is already there with another token, as update mode would', async () => {
    const ws = await workspace(await fixture('kubernetes.toml'));
    expect((await run(addArgs(ws, 'https://gitlab.example.com', 2002, 2001))).code).toBe(0);
    const first = await readFile(ws.config, 'utf8');
    const firstToken = ws.token;
    const second = await newToken(ws);
    const result = await run(addArgs(ws, 'https://gitlab.example.com', 2002, 2001, '--expires-at', '2027-01-01T00:00:00Z'));
    expectNoSecrets(result, firstToken, second);
    expect(result.stdout).toBe(`status=updated runner_id=2002 config=${ws.config} system_id= reload=none\n`);
    const text = await readFile(ws.config, 'utf8');
    const runners = (parse(text) as Doc).runners as Runner[];
    expect(runners).toHaveLength(2);
    expect(runners[1]?.token).toBe(second);
    expect((runners[1]?.token_expires_at as Date).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    // Only the copy's token and timestamp lines changed.
    const changed = first.split('\n').filter((line, i) => line !== text.split('\n')[i]);
    // (token_obtained_at is rewritten with the time of this run: the same text within one second.)
    expect(changed.filter((line) => !line.startsWith('  token_obtained_at = '))).toEqual([`  token = "${firstToken}"`, `  token_expires_at = ${ZERO_TIME}`]);
    expect(changed.length).toBeLessThanOrEqual(3);
    expect(await readFile(`${ws.config}.bak`, 'utf8')).toBe(first);
  });

  it('is already current once the copy exists, even after the old runner is gone', async () => {
    const ws = await workspace(await fixture('several-runners.toml'));
    expect((await run(addArgs(ws, 'https://gitlab.example.com', 10, 8))).code).toBe(0);
    expect((await run(removeArgs(ws, 'https://gitlab.example.com', 8))).code).toBe(0);
    const text = await readFile(ws.config);
    const result = await run(addArgs(ws, 'https://gitlab.example.com', 10, 8));
    expect(result.stdout).toMatch(/^status=already-current runner_id=10 /);
    expect(await readFile(ws.config)).toEqual(text);
  });

  it('reloads after adding, as update mode does', async () => {
    const ws = await workspace(await fixture('single-docker.toml'));
    const args = addArgs(ws, 'https://gitlab.example.com', 102, 101).filter((a) => a !== '--reload' && a !== 'none');
    const result = await run(args, { UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false', UPDATE_RUNNER_TOKEN_PKILL: 'true' });
    expect(result.stdout).toMatch(/^status=added runner_id=102 .* reload=sighup\n$/);
  });

  it('reloads after removing, and not when there was nothing to remove', async () => {
    const ws = await workspace(await fixture('single-docker.toml'));
    const args = removeArgs(ws, 'https://gitlab.example.com', 101).filter((a) => a !== '--reload' && a !== 'none');
    const env = { UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false', UPDATE_RUNNER_TOKEN_PKILL: 'true' };
    expect((await run(args, env)).stdout).toMatch(/^status=removed runner_id=101 .* reload=sighup\n$/);
    expect((await run(args, env)).stdout).toMatch(/^status=already-current runner_id=101 .* reload=skipped\n$/);
  });
});

describe('update-runner-token.sh --mode remove', () => {
  describe.each(REFS.map((ref) => ({ ...ref, label: label(ref) })))('$label', (ref) => {
    it('removes exactly that runner as one block of lines; a second run is already current', async () => {
      const ws = await workspace(await fixture(ref.fixture), 0o640);
      const before = parse(ws.original.toString('utf8')) as Doc;
      const runners = before.runners as Runner[];
      const result = await run(removeArgs(ws, ref.url, ref.id));
      expectNoSecrets(result, String(runners[ref.index]?.token));
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(`status=removed runner_id=${ref.id} config=${ws.config} system_id= reload=none\n`);
      expect(result.code).toBe(0);

      const text = await readFile(ws.config, 'utf8');
      const rest = runners.filter((_, i) => i !== ref.index);
      const others = { ...before };
      delete others.runners;
      expect(parse(text)).toEqual(rest.length > 0 ? { ...before, runners: rest } : others);
      expectOneBlock(ws.original.toString('utf8'), text, 'removed', /^(?:[ \t]*(?:#.*)?\r?\n)*[ \t]*\[\[[ \t]*runners[ \t]*\]\]/);
      expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
      expect((await stat(ws.config)).mode & 0o777).toBe(0o640);

      const again = await run(removeArgs(ws, ref.url, ref.id));
      expect(again.stdout).toBe(`status=already-current runner_id=${ref.id} config=${ws.config} system_id= reload=skipped\n`);
      expect(again.code).toBe(0);
      expect(await readFile(ws.config, 'utf8')).toBe(text);
    });
  });

  it('takes the comment right above the header and one gap, and keeps the comment that leads into the next table', async () => {
    const ws = await workspace(await fixture('several-runners.toml'));
    expect((await run(removeArgs(ws, 'https://gitlab-staging.example.com', 9))).code).toBe(0);
    const original = ws.original.toString('utf8');
    expect(await readFile(ws.config, 'utf8')).toBe(original.slice(0, original.indexOf('\n# Canary runner')));
    const middle = await workspace(await fixture('several-runners.toml'));
    expect((await run(removeArgs(middle, 'https://gitlab.example.com', 8))).code).toBe(0);
    const text = await readFile(middle.config, 'utf8');
    expect(text).toContain('    MaxUploadedArchiveSize = 0\n\n# Canary runner on the staging instance: do not touch by hand.\n[[runners]]\n  name = "staging-runner"');
    expect(text).not.toContain('docker-runner');
  });

  it('removes a runner at the very start of the file with the blank lines after it', async () => {
    const config = '[[runners]]\n  url = "https://gitlab.example.com"\n  id = 1\n  token = "glrt-OLDTOKEN-A"\n\n\n[[runners]]\n  url = "https://gitlab.example.com"\n  id = 2\n  token = "glrt-OLDTOKEN-B"\n';
    const ws = await workspace(config);
    expect((await run(removeArgs(ws, 'https://gitlab.example.com', 1))).code).toBe(0);
    expect(await readFile(ws.config, 'utf8')).toBe('[[runners]]\n  url = "https://gitlab.example.com"\n  id = 2\n  token = "glrt-OLDTOKEN-B"\n');
  });

  it('keeps the gap before a runner whose next table follows without a blank line', async () => {
    const config = 'concurrent = 2\n\n[[runners]]\n  url = "https://gitlab.example.com"\n  id = 1\n  token = "glrt-OLDTOKEN-A"\n[[runners]]\n  url = "https://gitlab.example.com"\n  id = 2\n  token = "glrt-OLDTOKEN-B"\n';
    const ws = await workspace(config);
    expect((await run(removeArgs(ws, 'https://gitlab.example.com/', 1))).code).toBe(0);
    expect(await readFile(ws.config, 'utf8')).toBe('concurrent = 2\n\n[[runners]]\n  url = "https://gitlab.example.com"\n  id = 2\n  token = "glrt-OLDTOKEN-B"\n');
  });

  it('removes the only runner of a file (gitlab-runner accepts a config without runners)', async () => {
    const ws = await workspace(await fixture('single-docker.toml'));
    const result = await run(removeArgs(ws, 'https://gitlab.example.com', 101));
    expect(result.stdout).toMatch(/^status=removed runner_id=101 /);
    const after = parse(await readFile(ws.config, 'utf8')) as Doc;
    expect(after.runners).toBeUndefined();
    const rest = parse(ws.original.toString('utf8')) as Doc;
    delete rest.runners;
    expect(after).toEqual(rest);
  });

  it('removes a CRLF runner and keeps CRLF', async () => {
    const ws = await workspace(await fixture('crlf.toml'));
    expect((await run(removeArgs(ws, 'https://gitlab.example.com', 900))).code).toBe(0);
    const text = await readFile(ws.config, 'utf8');
    expect(text).toContain('\r\n');
    expect(text.replace(/\r\n/g, '')).not.toContain('\n');
    expect(text).not.toContain('[[runners]]');
  });

  it('leaves a file without a final newline without one', async () => {
    const ws = await workspace(await fixture('no-final-newline.toml'));
    expect((await run(removeArgs(ws, 'http://gitlab.lan:8080', 12))).code).toBe(0);
    expect(await readFile(ws.config, 'utf8')).toBe('concurrent = 1\ncheck_interval = 0');
  });

  it('is already current when the url has no runner at all', async () => {
    const ws = await workspace(await fixture('single-docker.toml'));
    const result = await run(removeArgs(ws, 'https://elsewhere.example.com', 101));
    expect(result.stdout).toMatch(/^status=already-current runner_id=101 .* reload=skipped\n$/);
    expect(await readFile(ws.config)).toEqual(ws.original);
    expect(existsSync(`${ws.config}.bak`)).toBe(false);
  });

  it.runIf(OTHER_USER_SKIP_REASON === undefined)('needs no write access when there is nothing to remove', async () => {
    const ws = await workspace(await fixture('single-docker.toml'), 0o400);
    if (IS_ROOT) await chown(ws.config, NOBODY, NOBODY);
    await chmod(ws.dir, 0o555);
    const wrap = IS_ROOT ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'bash'] : ['bash'];
    const result = await run(removeArgs(ws, 'https://gitlab.example.com', 5), {}, wrap);
    await chmod(ws.dir, 0o700);
    expect(result.stdout).toMatch(/^status=already-current runner_id=5 .* reload=skipped\n$/);
    expect(result.code).toBe(0);
  });
});

describe('update-runner-token.sh --mode add|remove on bad input', () => {
  const dupe = (id2: number): string =>
    `concurrent = 1\n\n[[runners]]\n  name = "a"\n  url = "https://gitlab.example.com"\n  id = 5\n  token = "glrt-OLDTOKEN-A"\n\n[[runners]]\n  name = "b"\n  url = "https://gitlab.example.com/"\n  id = ${id2}\n  token = "glrt-OLDTOKEN-B"\n`;
  const orphan =
    'concurrent = 1\n\n[[runners]]\n  url = "https://gitlab.example.com"\n  id = 5\n  token = "glrt-OLDTOKEN-A"\n\n[session_server]\n  session_timeout = 1800\n\n[runners.docker]\n  image = "alpine"\n';

  const cases: Array<{ what: string; text: () => Promise<string | Buffer>; args: (ws: Workspace) => string[]; code: number; message: RegExp }> = [
    { what: 'add: the runner to copy is missing', text: () => fixture('several-runners.toml'), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 10, 99), code: 5, message: /no \[\[runners\]\] table has url https:\/\/gitlab\.example\.com and id 99 \(the runner to copy\)/ },
    { what: 'add: the url is missing', text: () => fixture('several-runners.toml'), args: (ws) => addArgs(ws, 'https://other.example.com', 10, 8), code: 5, message: /and id 8/ },
    { what: 'add: the runner to copy is ambiguous', text: async () => dupe(5), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 10, 5), code: 6, message: /2 \[\[runners\]\] tables have url https:\/\/gitlab\.example\.com and id 5 \(lines 3, 9\)/ },
    { what: 'add: the new id is ambiguous', text: async () => dupe(5), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 5, 6), code: 6, message: /id 5 \(lines 3, 9\)/ },
    { what: 'add: no table of the url has an id', text: () => fixture('legacy-no-ids.toml'), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 10, 8), code: 5, message: /has an id; --mode add selects by id/ },
    { what: 'add: a sub-table of the old runner follows another table', text: async () => orphan, args: (ws) => addArgs(ws, 'https://gitlab.example.com', 6, 5), code: 4, message: /malformed TOML at line 11: .*--mode add will not edit it/ },
    { what: 'add: malformed TOML', text: async () => '[[runners]]\n  url = "https://gitlab.example.com"\n  id = 5\n  token = "glrt-OLDTOKEN-A\n', args: (ws) => addArgs(ws, 'https://gitlab.example.com', 6, 5), code: 4, message: /malformed TOML at line 4: unterminated string/ },
    { what: 'add: the new id equals the old one', text: () => fixture('several-runners.toml'), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 8, 8), code: 2, message: /other than --runner-id, got '8' \(--from-runner-id\)/ },
    { what: 'add: --from-runner-id is missing', text: () => fixture('several-runners.toml'), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 10, 8).slice(0, -4).concat('--reload', 'none'), code: 2, message: /missing required option\(s\) --from-runner-id/ },
    { what: 'add: --from-runner-id is not a positive integer', text: () => fixture('several-runners.toml'), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 10, '08'), code: 2, message: /\(--from-runner-id\)/ },
    { what: 'add: --previous-token-file is given', text: () => fixture('several-runners.toml'), args: (ws) => addArgs(ws, 'https://gitlab.example.com', 10, 8, '--previous-token-file', ws.tokenFile), code: 2, message: /option --previous-token-file is not used by --mode add/ },
    { what: 'add: --token-file is missing', text: () => fixture('several-runners.toml'), args: (ws) => ['--mode', 'add', '--config', ws.config, '--runner-id', '10', '--url', 'https://gitlab.example.com', '--from-runner-id', '8'], code: 2, message: /missing required option\(s\) --token-file/ },
    { what: 'update: --from-runner-id is given', text: () => fixture('several-runners.toml'), args: (ws) => ['--config', ws.config, '--runner-id', '8', '--url', 'https://gitlab.example.com', '--token-file', ws.tokenFile, '--from-runner-id', '7'], code: 2, message: /option --from-runner-id is not used by --mode update/ },
    { what: 'an unknown mode', text: () => fixture('several-runners.toml'), args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 8).map((a) => (a === 'remove' ? 'delete' : a)), code: 2, message: /mode must be update, add or remove, got 'delete' \(--mode\)/ },
    { what: 'a mode given twice', text: () => fixture('several-runners.toml'), args: (ws) => ['--mode', 'add', ...removeArgs(ws, 'https://gitlab.example.com', 8)], code: 2, message: /option --mode given twice/ },
    { what: 'remove: --token-file is given', text: () => fixture('several-runners.toml'), args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 8, '--token-file', ws.tokenFile), code: 2, message: /option --token-file is not used by --mode remove/ },
    { what: 'remove: --expires-at is given', text: () => fixture('several-runners.toml'), args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 8, '--expires-at', '2026-01-01T00:00:00Z'), code: 2, message: /option --expires-at is not used by --mode remove/ },
    { what: 'remove: the runner is ambiguous', text: async () => dupe(5), args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 5), code: 6, message: /2 \[\[runners\]\] tables have url/ },
    { what: 'remove: no table of the url has an id', text: () => fixture('legacy-no-ids.toml'), args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 8), code: 5, message: /--mode remove selects by id/ },
    { what: 'remove: a sub-table of the runner follows another table', text: async () => orphan, args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 5), code: 4, message: /--mode remove will not edit it/ },
    { what: 'remove: malformed TOML', text: async () => `${dupe(6)}[[runners]\n`, args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 5), code: 4, message: /malformed TOML at line 14: bad table header/ },
    { what: 'remove: the config file is missing', text: () => fixture('several-runners.toml'), args: (ws) => removeArgs(ws, 'https://gitlab.example.com', 8).map((a) => (a === ws.config ? `${ws.config}.nope` : a)), code: 3, message: /config file does not exist/ },
  ];

  it.each(cases)('$what: exit $code, one line, file untouched', async ({ text, args, code, message }) => {
    const ws = await workspace(await text());
    const result = await run(args(ws));
    expectNoSecrets(result, ws.token);
    expectOneErrorLine(result, code, message);
    expect(await readFile(ws.config)).toEqual(ws.original);
    expect((await readdir(ws.dir)).sort()).toEqual(['config.toml', 'new-token']);
  });

  it.runIf(OTHER_USER_SKIP_REASON === undefined)('fails with 7 and leaves the file as it was when the directory is read-only', async () => {
    for (const args of [(ws: Workspace) => addArgs(ws, 'https://gitlab.example.com', 102, 101), (ws: Workspace) => removeArgs(ws, 'https://gitlab.example.com', 101)]) {
      const ws = await workspace(await fixture('single-docker.toml'), 0o644);
      await chmod(ws.tokenFile, 0o644);
      if (IS_ROOT) await chown(ws.config, NOBODY, NOBODY);
      await chmod(ws.dir, 0o555);
      const wrap = IS_ROOT ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'bash'] : ['bash'];
      const result = await run(args(ws), {}, wrap);
      await chmod(ws.dir, 0o700);
      expectNoSecrets(result, ws.token);
      expectOneErrorLine(result, 7, /config directory is not writable/);
      expect(await readFile(ws.config)).toEqual(ws.original);
    }
  });
});
