import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import {
  expectNoSecrets as expectNoneOf,
  OTHER_USER_SKIP_REASON,
  IS_ROOT,
  linesOf,
  NOBODY,
  runUpdater,
  SELF_ROTATION_FLAG as FLAG,
  tempFolders,
  UPDATER_FIXTURES as FIXTURES,
  writeWorkspace,
  type UpdaterResult,
} from '../support/host-updater.ts';

type Doc = Record<string, unknown>;
type Runner = Record<string, unknown>;

type RunResult = UpdaterResult;

const run = runUpdater;

const folders = tempFolders();

interface Workspace {
  dir: string;
  config: string;
  tokenFile: string;
  previousFile: string;
  newToken: string;
  original: Buffer;
}

/** A temp dir with config.toml (created with `mode`), a token file holding a fresh fake token, and the previous token's file. */
async function workspace(text: string | Buffer, mode = 0o600, previousToken = 'glrt-OLDTOKEN-A'): Promise<Workspace> {
  const { token: newToken, ...base } = await writeWorkspace(await folders.make('urt-'), text, mode);
  const previousFile = join(base.dir, 'previous-token');
  await writeFile(previousFile, `${previousToken}\n`, { mode: 0o600 });
  return { ...base, previousFile, newToken };
}

const fixture = (name: string): Promise<Buffer> => readFile(join(FIXTURES, name));

const expectNoSecrets = (result: RunResult, ...secrets: string[]): void => expectNoneOf(result, secrets);

/**
 * Every original line except `changed` (1-based) must still be there, in order; the new text may
 * hold only `changed.length + added` other lines. An unterminated last line may gain the line
 * break that separates it from lines appended after it.
 */
function expectOnlyLinesChanged(before: string, after: string, changed: number[], added: number): void {
  const kept = linesOf(before).filter((_, i) => !changed.includes(i + 1));
  const eol = before.includes('\r\n') ? '\r\n' : '\n';
  const same = (line: string, original: string | undefined): boolean =>
    original !== undefined &&
    (line === original || (!original.endsWith('\n') && line === `${original}${eol}`));
  const next = linesOf(after);
  let k = 0;
  let other = 0;
  for (const line of next) {
    if (k < kept.length && same(line, kept[k])) k++;
    else other++;
  }
  expect(kept.slice(k), 'original lines missing or out of order').toEqual([]);
  expect(other).toBe(changed.length + added);
  expect(next.length).toBe(linesOf(before).length + added);
}

function runnersOf(doc: Doc): Runner[] {
  const runners = doc.runners;
  if (!Array.isArray(runners)) throw new Error('no [[runners]] in document');
  return runners as Runner[];
}

function runnerAt(doc: Doc, index: number): Runner {
  const runner = runnersOf(doc)[index];
  if (runner === undefined) throw new Error(`no runner #${index}`);
  return runner;
}

function baseArgs(ws: Workspace, url: string, runnerId: number | string): string[] {
  return ['--config', ws.config, '--runner-id', String(runnerId), '--url', url, '--token-file', ws.tokenFile];
}

async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith('.config.toml.'));
}

// ---------------------------------------------------------------------------------------------------
// The corpus: one row per config.toml shape.
// ---------------------------------------------------------------------------------------------------
interface Shape {
  does: string;
  fixture: string;
  url: string;
  runnerId: number;
  /** Select by previous token (tables without `id`). */
  previous?: string;
  /** Index of the runner that must change, in document order. */
  target: number;
  /** 1-based lines of the original that change, and how many lines are added. */
  changed: number[];
  added: number;
  expiresAt?: string;
  transform?: 'crlf';
}

const SHAPES: Shape[] = [
  {
    does: 'updates a stock single docker runner and appends a feature_flags table',
    fixture: 'single-docker.toml',
    url: 'https://gitlab.example.com',
    runnerId: 101,
    target: 0,
    changed: [13, 14, 15],
    added: 2,
    expiresAt: '2025-05-01T00:00:00.000Z',
  },
  {
    does: 'picks the middle runner of several and inserts the flag table before the next runner',
    fixture: 'several-runners.toml',
    url: 'https://gitlab.example.com',
    runnerId: 8,
    target: 1,
    changed: [29, 30],
    added: 2,
  },
  {
    does: 'picks the right id among many runners of one url',
    fixture: 'one-url-many-ids.toml',
    url: 'https://gitlab.com',
    runnerId: 31002,
    target: 1,
    changed: [17],
    added: 2,
  },
  {
    does: 'tells apart one id registered on two urls',
    fixture: 'one-id-two-urls.toml',
    url: 'https://gitlab.example.com',
    runnerId: 4242,
    target: 1,
    changed: [15],
    added: 2,
  },
  {
    does: 'keeps comments, trailing comments and a commented-out token in the target table',
    fixture: 'comments.toml',
    url: 'https://gitlab.example.com/',
    runnerId: 555,
    target: 0,
    changed: [13, 15, 16],
    added: 2,
    expiresAt: '2025-02-02T02:02:02+00:00',
  },
  {
    does: 'leaves a CRLF file in CRLF',
    fixture: 'crlf.toml',
    url: 'https://gitlab.example.com',
    runnerId: 900,
    target: 0,
    changed: [11, 12],
    added: 2,
  },
  {
    does: 'keeps a missing final newline missing when appending at the end of the file',
    fixture: 'no-final-newline.toml',
    url: 'http://gitlab.lan:8080/',
    runnerId: 12,
    target: 0,
    changed: [8],
    added: 2,
  },
  {
    does: 'keeps a single-quoted token single-quoted',
    fixture: 'quoting.toml',
    url: 'https://gitlab.example.com',
    runnerId: 77,
    target: 0,
    changed: [8, 9, 10],
    added: 2,
    expiresAt: '2025-01-07T07:07:07Z',
  },
  {
    does: 'copes with tabs, tight and wide spacing around the equals sign',
    fixture: 'odd-spacing.toml',
    url: 'https://gitlab.example.com',
    runnerId: 3,
    target: 0,
    changed: [11, 12],
    added: 2,
    expiresAt: '2026-01-01T00:00:00Z',
  },
  {
    does: 'appends the flag table after kubernetes volume arrays of tables',
    fixture: 'kubernetes.toml',
    url: 'https://gitlab.example.com',
    runnerId: 2001,
    target: 0,
    changed: [12, 13],
    added: 2,
  },
  {
    does: 'turns a false flag in an existing feature_flags table true',
    fixture: 'ff-table-false.toml',
    url: 'https://gitlab.example.com',
    runnerId: 300,
    target: 0,
    changed: [8, 9, 14],
    added: 0,
  },
  {
    does: 'adds the flag to an existing feature_flags table that lacks it',
    fixture: 'ff-table-without-flag.toml',
    url: 'https://gitlab.example.com',
    runnerId: 301,
    target: 0,
    changed: [8],
    added: 1,
  },
  {
    does: 'adds the flag inside an inline feature_flags table',
    fixture: 'ff-inline.toml',
    url: 'https://gitlab.example.com',
    runnerId: 400,
    target: 0,
    changed: [8, 10],
    added: 0,
  },
  {
    does: 'selects a table without id by its previous token',
    fixture: 'legacy-no-ids.toml',
    url: 'https://gitlab.example.com',
    runnerId: 31337,
    previous: 'glrt-OLDTOKEN-B',
    target: 1,
    changed: [18],
    added: 2,
  },
  {
    does: 'keeps quoted timestamps quoted',
    fixture: 'timestamps-quoted.toml',
    url: 'https://gitlab.example.com',
    runnerId: 500,
    target: 0,
    changed: [8, 9, 10],
    added: 2,
    expiresAt: '2025-08-05T05:05:05Z',
  },
  {
    does: 'updates a docker+machine autoscaler with multi-line arrays',
    fixture: 'docker-machine.toml',
    url: 'https://gitlab.example.com',
    runnerId: 6001,
    target: 0,
    changed: [15, 16, 17],
    added: 2,
    expiresAt: '2025-06-12T12:12:12Z',
  },
  {
    does: 'is not fooled by TOML-looking text inside multi-line strings',
    fixture: 'multiline-strings.toml',
    url: 'https://gitlab.example.com',
    runnerId: 700,
    target: 0,
    changed: [8],
    added: 2,
  },
  {
    does: 'changes only the token when the flag is already true',
    fixture: 'ff-already-true.toml',
    url: 'https://gitlab.example.com',
    runnerId: 800,
    target: 0,
    changed: [8, 9],
    added: 0,
  },
  {
    does: 'adds a dotted flag key next to dotted feature_flags keys',
    fixture: 'ff-dotted.toml',
    url: 'https://gitlab.example.com',
    runnerId: 810,
    target: 0,
    changed: [8],
    added: 1,
  },
  {
    does: 'writes CRLF on inserted lines in the middle of a CRLF file',
    fixture: 'ff-table-without-flag.toml',
    url: 'https://gitlab.example.com',
    runnerId: 301,
    target: 0,
    changed: [8],
    added: 1,
    transform: 'crlf',
  },
  {
    does: 'keeps a CRLF file without final newline in CRLF without final newline',
    fixture: 'no-final-newline.toml',
    url: 'http://gitlab.lan:8080',
    runnerId: 12,
    target: 0,
    changed: [8],
    added: 2,
    transform: 'crlf',
  },
  {
    does: 'writes CRLF on an inserted table of a CRLF kubernetes config',
    fixture: 'kubernetes.toml',
    url: 'https://gitlab.example.com',
    runnerId: 2001,
    target: 0,
    changed: [12, 13],
    added: 2,
    transform: 'crlf',
  },
];

async function shapeWorkspace(shape: Shape, mode = 0o600): Promise<Workspace> {
  let text = (await fixture(shape.fixture)).toString('utf8');
  if (shape.transform === 'crlf') text = text.replace(/\n/g, '\r\n');
  return workspace(text, mode, shape.previous ?? 'glrt-OLDTOKEN-A');
}

function shapeArgs(shape: Shape, ws: Workspace): string[] {
  const args = [...baseArgs(ws, shape.url, shape.runnerId), '--reload', 'none'];
  if (shape.previous !== undefined) args.push('--previous-token-file', ws.previousFile);
  if (shape.expiresAt !== undefined) args.push('--expires-at', shape.expiresAt);
  return args;
}

/** The original document with exactly the documented changes applied (timestamps checked, then copied). */
function expectedDocument(shape: Shape, ws: Workspace, actual: Doc, window: { from: number; to: number }): Doc {
  const expected = parse(ws.original.toString('utf8')) as Doc;
  const before = runnerAt(expected, shape.target);
  const after = runnerAt(actual, shape.target);
  const tokenChanged = before.token !== ws.newToken;
  before.token = ws.newToken;
  const flags = (before.feature_flags ?? {}) as Record<string, unknown>;
  before.feature_flags = { ...flags, [FLAG]: true };

  if ('token_obtained_at' in before && tokenChanged) {
    const value = after.token_obtained_at;
    const text = value instanceof Date ? value.toISOString() : String(value);
    expect(typeof value === 'string').toBe(typeof before.token_obtained_at === 'string');
    if (typeof value === 'string') expect(value).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const at = Date.parse(text);
    expect(at).toBeGreaterThanOrEqual(window.from);
    expect(at).toBeLessThanOrEqual(window.to);
    before.token_obtained_at = value;
  }
  if ('token_expires_at' in before && shape.expiresAt !== undefined) {
    const value = after.token_expires_at;
    expect(typeof value === 'string').toBe(typeof before.token_expires_at === 'string');
    const text = value instanceof Date ? value.toISOString() : String(value);
    expect(Date.parse(text)).toBe(Date.parse(shape.expiresAt));
    if (typeof value === 'string') expect(value).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    before.token_expires_at = value;
  }
  return expected;
}

describe('update-runner-token.sh on the fixture corpus', () => {
  it('has a realistic corpus of at least 15 config.toml shapes that all parse', async () => {
    const names = (await readdir(FIXTURES)).filter((name) => name.endsWith('.toml'));
    expect(names.length).toBeGreaterThanOrEqual(15);
    for (const name of names) expect(() => parse(readFileSync(join(FIXTURES, name), 'utf8'))).not.toThrow();
    expect((await fixture('crlf.toml')).includes('\r\n')).toBe(true);
    expect((await fixture('no-final-newline.toml')).at(-1)).not.toBe(0x0a);
  });

  const labelled = SHAPES.map((shape) => ({
    ...shape,
    label: shape.transform ? `${shape.fixture} (${shape.transform})` : shape.fixture,
  }));
  describe.each(labelled)('$label', (shape) => {
    it(`${shape.does}`, async () => {
      const ws = await shapeWorkspace(shape);
      const previous = runnerAt(parse(ws.original.toString('utf8')) as Doc, shape.target).token as string;
      const from = Math.floor(Date.now() / 1000) * 1000;
      const result = await run(shapeArgs(shape, ws));
      const to = Date.now();

      expectNoSecrets(result, ws.newToken, previous);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(
        `status=updated runner_id=${shape.runnerId} config=${ws.config} system_id= reload=none\n`,
      );

      const text = await readFile(ws.config, 'utf8');
      const actual = parse(text) as Doc;
      const runner = runnerAt(actual, shape.target);
      expect(runner.token).toBe(ws.newToken);
      expect((runner.feature_flags as Record<string, unknown>)[FLAG]).toBe(true);
      expect(actual).toEqual(expectedDocument(shape, ws, actual, { from, to }));

      const originalText = ws.original.toString('utf8');
      expectOnlyLinesChanged(originalText, text, shape.changed, shape.added);
      if (originalText.includes('\r\n')) expect(linesOf(text).every((l) => l.endsWith('\r\n') || !l.endsWith('\n'))).toBe(true);
      expect(text.endsWith('\n')).toBe(originalText.endsWith('\n'));
      if (shape.fixture === 'quoting.toml') expect(text).toContain(`token = '${ws.newToken}'`);

      expect((await stat(ws.config)).mode & 0o7777).toBe(0o600);
      expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
      expect((await stat(`${ws.config}.bak`)).mode & 0o7777).toBe(0o600);
      expect(await leftovers(ws.dir)).toEqual([]);
    });

    it(`is already current on a second run and leaves the file byte-identical`, async () => {
      const ws = await shapeWorkspace(shape);
      const first = await run(shapeArgs(shape, ws));
      expect(first.code).toBe(0);
      const written = await readFile(ws.config);
      const statBefore = await stat(ws.config);
      const backup = await readFile(`${ws.config}.bak`);

      const second = await run(shapeArgs(shape, ws));
      expectNoSecrets(second, ws.newToken, 'glrt-OLDTOKEN-A', 'glrt-OLDTOKEN-B');
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      expect(second.stdout).toBe(
        `status=already-current runner_id=${shape.runnerId} config=${ws.config} system_id= reload=skipped\n`,
      );
      const statAfter = await stat(ws.config);
      expect(await readFile(ws.config)).toEqual(written);
      expect(statAfter.ino).toBe(statBefore.ino);
      expect(statAfter.mtimeMs).toBe(statBefore.mtimeMs);
      expect(await readFile(`${ws.config}.bak`)).toEqual(backup);
    });
  });
});

describe('update-runner-token.sh file handling', () => {
  const shape = SHAPES[0] as Shape;

  it('prints its usage with --help', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: update-runner-token\.sh --config PATH --runner-id ID --url GITLAB_URL --token-file FILE/);
  });

  it('keeps a 0640 file at 0640 and the backup at 0600', async () => {
    const ws = await shapeWorkspace(shape, 0o640);
    const result = await run(shapeArgs(shape, ws));
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect((await stat(ws.config)).mode & 0o7777).toBe(0o640);
    expect((await stat(`${ws.config}.bak`)).mode & 0o7777).toBe(0o600);
  });

  it.runIf(IS_ROOT)('keeps the owner and group of the original on the new file and the backup', async () => {
    const ws = await shapeWorkspace(shape, 0o600);
    await chown(ws.config, NOBODY, NOBODY);
    const result = await run(shapeArgs(shape, ws));
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    for (const file of [ws.config, `${ws.config}.bak`]) {
      const info = await stat(file);
      expect([info.uid, info.gid]).toEqual([NOBODY, NOBODY]);
    }
  });

  it('replaces an older backup with the content it just replaced', async () => {
    const ws = await shapeWorkspace(shape);
    await writeFile(`${ws.config}.bak`, 'stale backup\n', { mode: 0o644 });
    const result = await run(shapeArgs(shape, ws));
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
    expect((await stat(`${ws.config}.bak`)).mode & 0o7777).toBe(0o600);
  });

  it('edits the file a symlinked config points at and keeps the link', async () => {
    const ws = await shapeWorkspace(shape);
    const link = join(ws.dir, 'linked.toml');
    await symlink(ws.config, link);
    const args = shapeArgs(shape, ws).map((arg) => (arg === ws.config ? link : arg));
    const result = await run(args);
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`config=${link} `);
    expect(runnerAt(parse(await readFile(ws.config, 'utf8')) as Doc, 0).token).toBe(ws.newToken);
    expect((await stat(link)).isFile()).toBe(true);
    expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
  });

  it('reads a config whose path holds spaces and an equals sign', async () => {
    const ws = await shapeWorkspace(shape);
    const odd = join(ws.dir, 'gitlab runner=prod');
    await mkdir(odd);
    const config = join(odd, 'config.toml');
    await writeFile(config, ws.original, { mode: 0o600 });
    const args = shapeArgs(shape, ws).map((arg) => (arg === ws.config ? config : arg));
    const result = await run(args);
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(runnerAt(parse(await readFile(config, 'utf8')) as Doc, 0).token).toBe(ws.newToken);
  });

  it('prints the system_id from .runner_system_id beside config.toml, also when already current', async () => {
    const ws = await shapeWorkspace(shape);
    await writeFile(join(ws.dir, '.runner_system_id'), '  s_0a1b2c3d4e5f \n');
    const first = await run(shapeArgs(shape, ws));
    expectNoSecrets(first, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(first.stdout).toBe(
      `status=updated runner_id=101 config=${ws.config} system_id=s_0a1b2c3d4e5f reload=none\n`,
    );
    const second = await run(shapeArgs(shape, ws));
    expectNoSecrets(second, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(second.stdout).toContain(' system_id=s_0a1b2c3d4e5f reload=skipped');
  });

  it('updates a table without id that already holds the new token only by adding the flag', async () => {
    const ws = await workspace(await fixture('legacy-no-ids.toml'), 0o600, 'glrt-OLDTOKEN-GONE');
    const text = ws.original.toString('utf8').replace('glrt-OLDTOKEN-B', ws.newToken);
    await writeFile(ws.config, text);
    const result = await run([
      ...baseArgs(ws, 'https://gitlab.example.com', 1),
      '--previous-token-file',
      ws.previousFile,
      '--reload',
      'none',
    ]);
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-GONE');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^status=updated /);
    const runner = runnerAt(parse(await readFile(ws.config, 'utf8')) as Doc, 1);
    expect(runner.token).toBe(ws.newToken);
    expect(runner.feature_flags).toEqual({ [FLAG]: true });
  });
});

// ---------------------------------------------------------------------------------------------------
// Bad input: the file stays byte-identical, one stderr line, the documented exit code.
// ---------------------------------------------------------------------------------------------------
interface BadCase {
  does: string;
  code: number;
  message: RegExp;
  /** Config text from the single-docker fixture (default) or a function of it. */
  config?: (text: string) => string;
  args?: (ws: Workspace) => string[];
  prepare?: (ws: Workspace) => Promise<void>;
  wrap?: string[];
  /** Files other than the usual ones that the case leaves (or creates) in the directory. */
  extraFiles?: string[];
}

const replaceLine = (n: number, line: string) => (text: string): string =>
  text
    .split('\n')
    .map((l, i) => (i === n - 1 ? line : l))
    .join('\n');

const DEFAULT_URL = 'https://gitlab.example.com';
const defaultArgs = (ws: Workspace): string[] => [...baseArgs(ws, DEFAULT_URL, 101), '--reload', 'none'];

const BAD: BadCase[] = [
  {
    does: 'rejects an unterminated string with its line number',
    code: 4,
    message: /malformed TOML at line 13: unterminated string/,
    config: replaceLine(13, '  token = "glrt-OLDTOKEN-A'),
  },
  {
    does: 'rejects a bad table header',
    code: 4,
    message: /malformed TOML at line 23: bad table header/,
    config: replaceLine(23, '  [runners.docker'),
  },
  {
    does: 'rejects a garbage line',
    code: 4,
    message: /malformed TOML at line 17: expected a table header or key = value/,
    config: replaceLine(17, '  this is not toml'),
  },
  {
    does: 'rejects an array that is never closed before the next key',
    code: 4,
    message: /malformed TOML at line 30: unbalanced brackets/,
    config: replaceLine(29, '    volumes = ["/cache"'),
  },
  {
    does: 'rejects an array still open at the end of the file',
    code: 4,
    message: /malformed TOML at line 33: unbalanced brackets/,
    config: (text) => `${text}  extra = [\n`,
  },
  {
    does: 'rejects a closing bracket too many',
    code: 4,
    message: /malformed TOML at line 29: unbalanced brackets/,
    config: replaceLine(29, '    volumes = ["/cache"]]'),
  },
  {
    does: 'rejects a multi-line string that never ends',
    code: 4,
    message: /malformed TOML at line 33: unterminated multi-line string/,
    config: (text) => `${text}  pre_build_script = """\necho hi\n`,
  },
  {
    does: 'rejects a key without a value',
    code: 4,
    message: /malformed TOML at line 25: missing value/,
    config: replaceLine(25, '    image ='),
  },
  {
    does: 'rejects a bare word as a value',
    code: 4,
    message: /malformed TOML at line 25: invalid value/,
    config: replaceLine(25, '    image = alpine'),
  },
  {
    does: 'rejects a duplicate token key in the target table',
    code: 4,
    message: /malformed TOML at line 14: duplicate key token/,
    config: replaceLine(14, '  token = "glrt-OLDTOKEN-Z"'),
  },
  {
    does: 'reports no match when no table has the runner id',
    code: 5,
    message: /no \[\[runners\]\] table has url https:\/\/gitlab\.example\.com and id 999/,
    args: (ws) => [...baseArgs(ws, DEFAULT_URL, 999), '--reload', 'none'],
  },
  {
    does: 'reports no match when no table has the url',
    code: 5,
    message: /no \[\[runners\]\] table has url https:\/\/elsewhere\.example\.com/,
    args: (ws) => [...baseArgs(ws, 'https://elsewhere.example.com', 101), '--reload', 'none'],
  },
  {
    does: 'reports no match when no id-less table holds the previous token',
    code: 5,
    message: /holds the previous token/,
    config: () => readFileSync(join(FIXTURES, 'legacy-no-ids.toml'), 'utf8').replace('OLDTOKEN-A', 'OLDTOKEN-X'),
    args: (ws) => [...defaultArgs(ws), '--previous-token-file', ws.previousFile],
  },
  {
    does: 'asks for a previous token when the tables of the url have no id',
    code: 5,
    message: /has an id; --previous-token-file is needed/,
    config: () => readFileSync(join(FIXTURES, 'legacy-no-ids.toml'), 'utf8'),
  },
  {
    does: 'refuses two tables with the same url and id',
    code: 6,
    message: /2 \[\[runners\]\] tables have url https:\/\/gitlab\.com and id 31002 \(lines 13, 22\)/,
    config: () => readFileSync(join(FIXTURES, 'one-url-many-ids.toml'), 'utf8').replace('id = 31003', 'id = 31002'),
    args: (ws) => [...baseArgs(ws, 'https://gitlab.com/', 31002), '--reload', 'none'],
  },
  {
    does: 'refuses two id-less tables holding the previous token',
    code: 6,
    message: /2 \[\[runners\]\] tables with url https:\/\/gitlab\.example\.com hold the previous or new token/,
    config: () => readFileSync(join(FIXTURES, 'legacy-no-ids.toml'), 'utf8').replace('OLDTOKEN-B', 'OLDTOKEN-A'),
    args: (ws) => [...defaultArgs(ws), '--previous-token-file', ws.previousFile],
  },
  {
    does: 'reports a missing config file',
    code: 3,
    message: /config file does not exist \(.*\/missing\.toml\)/,
    args: (ws) => [...defaultArgs(ws).map((a) => (a === ws.config ? join(ws.dir, 'missing.toml') : a))],
  },
  {
    does: 'reports a config path that is a directory',
    code: 3,
    message: /config file is not a regular file/,
    args: (ws) => [...defaultArgs(ws).map((a) => (a === ws.config ? ws.dir : a))],
  },
  {
    does: 'reports a missing token file',
    code: 2,
    message: /token file does not exist \(--token-file .*\/nope\)/,
    args: (ws) => [...defaultArgs(ws).map((a) => (a === ws.tokenFile ? join(ws.dir, 'nope') : a))],
  },
  {
    does: 'reports an empty token file',
    code: 2,
    message: /token file is empty/,
    prepare: (ws) => writeFile(ws.tokenFile, '\n'),
  },
  {
    does: 'reports a token file with two lines',
    code: 2,
    message: /token file must hold exactly one line/,
    prepare: (ws) => writeFile(ws.tokenFile, `${ws.newToken}\nsecond\n`),
  },
  {
    does: 'reports a token with whitespace or quotes',
    code: 2,
    message: /token file must hold one token without whitespace, quotes or backslashes/,
    prepare: (ws) => writeFile(ws.tokenFile, `"${ws.newToken}" \n`),
  },
  {
    does: 'reports a token file with CRLF',
    code: 2,
    message: /without whitespace/,
    prepare: (ws) => writeFile(ws.tokenFile, `${ws.newToken}\r\n`),
  },
  {
    does: 'reports a runner id that is not a number',
    code: 2,
    message: /runner id must be a positive integer, got 'abc' \(--runner-id\)/,
    args: (ws) => [...baseArgs(ws, DEFAULT_URL, 'abc'), '--reload', 'none'],
  },
  {
    does: 'reports a runner id of zero',
    code: 2,
    message: /runner id must be a positive integer/,
    args: (ws) => [...baseArgs(ws, DEFAULT_URL, '0'), '--reload', 'none'],
  },
  {
    does: 'reports a url without a scheme',
    code: 2,
    message: /url must start with http:\/\/ or https:\/\//,
    args: (ws) => [...baseArgs(ws, 'gitlab.example.com', 101), '--reload', 'none'],
  },
  {
    does: 'reports an unknown reload mode',
    code: 2,
    message: /reload mode must be sighup, restart or none/,
    args: (ws) => [...baseArgs(ws, DEFAULT_URL, 101), '--reload', 'kill'],
  },
  {
    does: 'reports an expiry that is not an ISO 8601 date-time',
    code: 2,
    message: /expiry must be an ISO 8601 date-time/,
    args: (ws) => [...defaultArgs(ws), '--expires-at', 'tomorrow'],
  },
  {
    does: 'reports a missing required option',
    code: 2,
    message: /missing required option\(s\) --token-file/,
    args: (ws) => ['--config', ws.config, '--runner-id', '101', '--url', DEFAULT_URL],
  },
  {
    does: 'names an unknown option without echoing its value',
    code: 2,
    message: /unknown option --token;/,
    args: (ws) => [...defaultArgs(ws), `--token=${ws.newToken}`],
  },
  {
    does: 'reports a stray argument without echoing it',
    code: 2,
    message: /unexpected argument #11;/,
    args: (ws) => [...defaultArgs(ws), ws.newToken],
  },
  {
    // Root ignores permission bits, so this failure is made with a file that truly cannot be
    // replaced: a non-empty directory sits where the backup goes (mv -T refuses to replace it).
    does: 'fails with 7 and keeps the original when the backup cannot be put in place',
    code: 7,
    message: /cannot replace the backup file \(.*config\.toml\.bak\)/,
    prepare: async (ws) => {
      await mkdir(join(ws.config + '.bak', 'keep'), { recursive: true });
    },
    extraFiles: ['config.toml.bak'],
  },
  {
    // A file size limit of 0 makes every data write fail with EFBIG/SIGXFSZ, for root as well:
    // the honest stand-in for a full disk or quota.
    does: 'fails with 7 and keeps the original when writing runs out of space',
    code: 7,
    message: /writing the backup copy failed/,
    wrap: ['bash', '-c', 'ulimit -f 0 && exec bash "$@"', 'bash'],
  },
];

describe('update-runner-token.sh on bad input', () => {
  it.each(BAD)('$does', async (bad) => {
    const base = (await fixture('single-docker.toml')).toString('utf8');
    const ws = await workspace(bad.config ? bad.config(base) : base);
    await bad.prepare?.(ws);
    const before = await readdir(ws.dir);
    const result = await run(bad.args ? bad.args(ws) : defaultArgs(ws), bad.wrap ? { wrap: bad.wrap } : {});

    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A', 'glrt-OLDTOKEN-B');
    expect(result.code).toBe(bad.code);
    expect(result.stdout).toBe('');
    const lines = result.stderr.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    expect(lines[0]).toMatch(/^update-runner-token: error: .+ \(.+\)$/);
    expect(lines[0]).toMatch(bad.message);
    expect(await readFile(ws.config)).toEqual(ws.original);
    expect((await readdir(ws.dir)).sort()).toEqual(before.sort());
    expect(existsSync(`${ws.config}.bak`)).toBe((bad.extraFiles ?? []).includes('config.toml.bak'));
  });
});

/**
 * Permission checks need an unprivileged user: as root, use setpriv to run as nobody; otherwise
 * the current user already is one.
 */
if (OTHER_USER_SKIP_REASON) it.skip(`update-runner-token.sh without write permission is not tested here: ${OTHER_USER_SKIP_REASON}`, () => undefined);
describe.runIf(OTHER_USER_SKIP_REASON === undefined)('update-runner-token.sh without write permission', () => {
  const asUser = IS_ROOT
    ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'bash']
    : ['bash'];

  async function unprivileged(fileMode: number, dirMode: number, ownFile: boolean): Promise<Workspace> {
    const ws = await workspace(await fixture('single-docker.toml'), fileMode);
    await chmod(ws.tokenFile, 0o644);
    if (IS_ROOT && ownFile) await chown(ws.config, NOBODY, NOBODY);
    await chmod(ws.dir, dirMode);
    return ws;
  }

  it('fails with 7 on a read-only config file', async () => {
    const ws = await unprivileged(0o444, 0o777, false);
    const result = await run(defaultArgs(ws), { wrap: asUser });
    await chmod(ws.dir, 0o700);
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(7);
    expect(result.stderr).toMatch(/^update-runner-token: error: config file is not writable \(.*config\.toml\)\n$/);
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it('fails with 7 when the config directory is read-only', async () => {
    const ws = await unprivileged(0o644, 0o555, true);
    const result = await run(defaultArgs(ws), { wrap: asUser });
    await chmod(ws.dir, 0o700);
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(7);
    expect(result.stderr).toMatch(/^update-runner-token: error: config directory is not writable \(.*\)\n$/);
    expect(await readFile(ws.config)).toEqual(ws.original);
    expect(await leftovers(ws.dir)).toEqual([]);
  });

  it('needs no write access when the file is already current', async () => {
    const ws = await unprivileged(0o600, 0o700, false);
    expect((await run(defaultArgs(ws))).code).toBe(0);
    await chmod(ws.config, 0o444);
    await chmod(ws.dir, 0o555);
    const current = await readFile(ws.config);
    const result = await run(defaultArgs(ws), { wrap: asUser });
    await chmod(ws.dir, 0o700);
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^status=already-current runner_id=101 .* reload=skipped\n$/);
    expect(await readFile(ws.config)).toEqual(current);
  });

  it('updates a config owned by an unprivileged user as that user', async () => {
    const ws = await unprivileged(0o600, 0o700, true);
    if (IS_ROOT) await chown(ws.dir, NOBODY, NOBODY);
    const result = await run(defaultArgs(ws), { wrap: asUser });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(runnerAt(parse(await readFile(ws.config, 'utf8')) as Doc, 0).token).toBe(ws.newToken);
    expect((await stat(ws.config)).mode & 0o7777).toBe(0o600);
    expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
  });

  it('fails with 3 on an unreadable config file', async () => {
    const ws = await unprivileged(0o600, 0o777, false);
    const result = await run(defaultArgs(ws), { wrap: asUser });
    await chmod(ws.dir, 0o700);
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^update-runner-token: error: config file is not readable \(.*\)\n$/);
    expect(await readFile(ws.config)).toEqual(ws.original);
  });
});

// ---------------------------------------------------------------------------------------------------
// Reload, through fake systemctl / pkill on disk.
// ---------------------------------------------------------------------------------------------------
interface Fakes {
  env: Record<string, string>;
  calls: (tool: 'systemctl' | 'pkill') => Promise<string[]>;
  /** Everything the fakes saw: arguments, environment and the script's own command line. */
  seen: () => Promise<string>;
}

async function fakes(ws: Workspace, behaviour: { isActive: number; kill?: number; restart?: number; pkill?: number }): Promise<Fakes> {
  const bin = join(ws.dir, 'fakebin');
  await mkdir(bin);
  const log = (tool: string): string => join(bin, `${tool}.log`);
  const record = (tool: string): string =>
    [
      '#!/usr/bin/env bash',
      `printf '%s\\n' "$*" >> '${log(tool)}'`,
      `{ env; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; } >> '${join(bin, 'seen')}' 2>/dev/null || true`,
    ].join('\n');
  await writeFile(
    join(bin, 'systemctl'),
    `${record('systemctl')}
case "$1" in
  is-active) exit ${behaviour.isActive} ;;
  kill) exit ${behaviour.kill ?? 0} ;;
  restart) exit ${behaviour.restart ?? 0} ;;
esac
exit 99
`,
    { mode: 0o755 },
  );
  await writeFile(join(bin, 'pkill'), `${record('pkill')}\nexit ${behaviour.pkill ?? 0}\n`, { mode: 0o755 });
  return {
    env: { UPDATE_RUNNER_TOKEN_SYSTEMCTL: join(bin, 'systemctl'), UPDATE_RUNNER_TOKEN_PKILL: join(bin, 'pkill') },
    calls: async (tool) => {
      const text = await readFile(log(tool), 'utf8').catch(() => '');
      return text.split('\n').filter((line) => line !== '');
    },
    seen: () => readFile(join(bin, 'seen'), 'utf8').catch(() => ''),
  };
}

describe('update-runner-token.sh reload', () => {
  const args = (ws: Workspace, ...more: string[]): string[] => [...baseArgs(ws, DEFAULT_URL, 101), ...more];

  async function updated(): Promise<Workspace> {
    return workspace(await fixture('single-docker.toml'));
  }

  it('sends SIGHUP with pkill when systemd does not run gitlab-runner', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 3, pkill: 0 });
    const result = await run(args(ws, '--reload', 'sighup'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/ reload=sighup\n$/);
    expect(await fake.calls('systemctl')).toEqual(['is-active --quiet gitlab-runner']);
    expect(await fake.calls('pkill')).toEqual(['-HUP -x gitlab-runner']);
  });

  it('uses sighup when no reload mode is given', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 3, pkill: 0 });
    const result = await run(args(ws), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.stdout).toMatch(/^status=updated .* reload=sighup\n$/);
    expect(await fake.calls('pkill')).toEqual(['-HUP -x gitlab-runner']);
  });

  it('signals only the main process of an active systemd unit', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 0, kill: 0 });
    const result = await run(args(ws, '--reload', 'sighup'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.stdout).toMatch(/ reload=sighup\n$/);
    expect(await fake.calls('systemctl')).toEqual([
      'is-active --quiet gitlab-runner',
      'kill --kill-who=main --signal=SIGHUP gitlab-runner',
    ]);
    expect(await fake.calls('pkill')).toEqual([]);
  });

  it('reports not-running when no gitlab-runner process exists', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 3, pkill: 1 });
    const result = await run(args(ws, '--reload', 'sighup'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^status=updated .* reload=not-running\n$/);
  });

  it('keeps the update and warns once when the signal cannot be sent', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 3, pkill: 3 });
    const result = await run(args(ws, '--reload', 'sighup'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^status=updated .* reload=failed\n$/);
    expect(result.stderr).toMatch(/^update-runner-token: warning: [^\n]+\n$/);
    expect(runnerAt(parse(await readFile(ws.config, 'utf8')) as Doc, 0).token).toBe(ws.newToken);
  });

  it('restarts the service with systemctl in restart mode', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 0, restart: 0 });
    const result = await run(args(ws, '--reload', 'restart'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.stdout).toMatch(/ reload=restart\n$/);
    expect(await fake.calls('systemctl')).toEqual(['restart gitlab-runner']);
  });

  it('keeps the update and warns once when the restart fails', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 0, restart: 1 });
    const result = await run(args(ws, '--reload', 'restart'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ reload=failed\n$/);
    expect(result.stderr.split('\n')).toHaveLength(2);
    expect(result.stderr).toMatch(/^update-runner-token: warning: systemctl restart gitlab-runner failed/);
    expect(runnerAt(parse(await readFile(ws.config, 'utf8')) as Doc, 0).token).toBe(ws.newToken);
  });

  it('calls no tool in none mode', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 0 });
    const result = await run(args(ws, '--reload', 'none'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.stdout).toMatch(/ reload=none\n$/);
    expect(await fake.calls('systemctl')).toEqual([]);
    expect(await fake.calls('pkill')).toEqual([]);
  });

  it('does not reload when the file is already current', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 3, pkill: 0 });
    expect((await run(args(ws, '--reload', 'none'), { env: fake.env })).code).toBe(0);
    const result = await run(args(ws, '--reload', 'sighup'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    expect(result.stdout).toMatch(/^status=already-current .* reload=skipped\n$/);
    expect(await fake.calls('systemctl')).toEqual([]);
    expect(await fake.calls('pkill')).toEqual([]);
  });

  it('never hands the token to the reload tools or its own command line', async () => {
    const ws = await updated();
    const fake = await fakes(ws, { isActive: 3, pkill: 0 });
    const result = await run(args(ws, '--reload', 'sighup'), { env: fake.env });
    expectNoSecrets(result, ws.newToken, 'glrt-OLDTOKEN-A');
    const seen = await fake.seen();
    expect(seen).toContain('--token-file');
    expect(seen).not.toContain(ws.newToken);
    expect(seen).not.toContain('glrt-OLDTOKEN-A');
  });
});
