/**
 * host/update-runner-token.sh --unless-newer: the guard of a converge (a periodic re-apply of the secret's
 * AWSCURRENT to every host) against a rotation that has just pushed a newer token to the same host. The
 * folder lock orders the two writes but cannot tell which should win; the expiry can: a table whose
 * `token_expires_at` is a later instant than --expires-at, and whose token is another one, is kept.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { expectNoSecrets, fakeToken, runUpdater, SELF_ROTATION_FLAG, tempFolders, writeWorkspace, type UpdaterWorkspace } from '../support/host-updater.ts';

const URL = 'https://gitlab.example.com';
const HELD = 'glrt-HOST-HOLDS-THIS-ONE';
const folders = tempFolders();

/** One runner (id 42) holding HELD; `expiry` is the whole `token_expires_at = …` line, or none. */
const config = (expiry: string | null): string => `concurrent = 1

[[runners]]
  name = "converged"
  url = "${URL}"
  id = 42
  token = "${HELD}"
  token_obtained_at = 2026-01-01T00:00:00Z
${expiry === null ? '' : `  ${expiry}\n`}  executor = "shell"
  [runners.feature_flags]
    ${SELF_ROTATION_FLAG} = true
`;

const workspace = async (text: string): Promise<UpdaterWorkspace> => writeWorkspace(await folders.make('urt-unless-newer-'), text, 0o600);

/** Update mode for runner 42; reload sighup (the test hooks make a reload that runs fail visibly). */
const args = (ws: UpdaterWorkspace, ...more: string[]): string[] => ['--config', ws.config, '--runner-id', '42', '--url', URL, '--token-file', ws.tokenFile, ...more];

const tableOf = (text: string): Record<string, unknown> => (parse(text) as { runners: Array<Record<string, unknown>> }).runners[0] ?? {};

describe('update-runner-token.sh --unless-newer', () => {
  it.each([
    ['a bare date-time', 'token_expires_at = 2027-01-01T00:00:00Z', '2026-06-01T00:00:00Z'],
    ['a quoted one', 'token_expires_at = "2027-01-01T00:00:00Z"', '2026-06-01T00:00:00Z'],
    ['a literal string', "token_expires_at = '2027-01-01T00:00:00Z'", '2026-06-01T00:00:00.000Z'],
    ['one second later, through an offset on the host', 'token_expires_at = 2026-06-01T02:00:01+02:00', '2026-06-01T00:00:00Z'],
    ['one second later, through an offset in --expires-at', 'token_expires_at = 2026-05-31T23:00:01Z', '2026-06-01T01:00:00+02:00'],
    ['a later instant across the end of a year, in another zone', 'token_expires_at = 2027-01-01T00:30:00+01:00', '2026-12-31T23:00:00Z'],
    ['a later fraction of the same second', 'token_expires_at = 2026-06-01T00:00:00.5Z', '2026-06-01T00:00:00.25Z'],
    ['a space, lower-case t and z', 'token_expires_at = 2026-06-01 00:00:01z', '2026-06-01t00:00:00Z'],
  ])('keeps a table whose token expires later (%s): kept-newer, nothing written, no reload', async (_what, expiry, expiresAt) => {
    const ws = await workspace(config(expiry));

    const result = await runUpdater(args(ws, '--expires-at', expiresAt, '--unless-newer'));

    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout).toBe(`status=kept-newer runner_id=42 config=${ws.config} system_id= reload=skipped\n`);
    expectNoSecrets(result, [ws.token, HELD]);
    expect(await readFile(ws.config)).toEqual(ws.original);
    expect(existsSync(`${ws.config}.bak`)).toBe(false);
  });

  it.each([
    ['an earlier expiry', 'token_expires_at = 2026-01-01T00:00:00Z', '2026-06-01T00:00:00Z'],
    ['the same instant spelled in another zone', 'token_expires_at = 2026-06-01T02:00:00+02:00', '2026-06-01T00:00:00.000Z'],
    ['an expiry that reads later as text but is an earlier instant', 'token_expires_at = 2026-06-01T01:00:00+02:00', '2026-06-01T00:00:00Z'],
    ['an earlier fraction of the same second', 'token_expires_at = 2026-06-01T00:00:00.25Z', '2026-06-01T00:00:00.5Z'],
    ['the unknown expiry of gitlab-runner (year 0001)', 'token_expires_at = 0001-01-01T00:00:00Z', '2026-06-01T00:00:00Z'],
    ['an expiry without a zone (not an instant)', 'token_expires_at = 2027-01-01T00:00:00', '2026-06-01T00:00:00Z'],
    ['an expiry that is not a date', 'token_expires_at = "soon"', '2026-06-01T00:00:00Z'],
    ['no expiry at all', null, '2026-06-01T00:00:00Z'],
  ])('updates as without it when the table has %s', async (_what, expiry, expiresAt) => {
    const ws = await workspace(config(expiry));

    const result = await runUpdater(args(ws, '--expires-at', expiresAt, '--unless-newer', '--reload', 'none'));

    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout).toBe(`status=updated runner_id=42 config=${ws.config} system_id= reload=none\n`);
    expectNoSecrets(result, [ws.token, HELD]);
    const table = tableOf(await readFile(ws.config, 'utf8'));
    expect(table.token).toBe(ws.token);
    // The expiry is written where the key is (in UTC, whole seconds, in the same style), and never added.
    if (expiry === null) expect(table).not.toHaveProperty('token_expires_at');
    else expect(await readFile(ws.config, 'utf8')).toContain(expiry.includes('"') ? 'token_expires_at = "2026-06-01T00:00:00Z"\n' : 'token_expires_at = 2026-06-01T00:00:00Z\n');
    expect(await readFile(`${ws.config}.bak`)).toEqual(ws.original);
  });

  it('is already current, not kept-newer, when the table holds the same token with a later expiry', async () => {
    const ws = await workspace(config('token_expires_at = 2027-01-01T00:00:00Z'));
    await writeFile(ws.tokenFile, `${HELD}\n`);

    const result = await runUpdater(args(ws, '--expires-at', '2026-06-01T00:00:00Z', '--unless-newer'));

    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout).toMatch(/^status=already-current runner_id=42 .* reload=skipped\n$/);
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it('is opt-in: without it, a table whose token expires later is overwritten as before', async () => {
    const ws = await workspace(config('token_expires_at = 2027-01-01T00:00:00Z'));

    const result = await runUpdater(args(ws, '--expires-at', '2026-06-01T00:00:00Z', '--reload', 'none'));

    expect(result.stdout).toMatch(/^status=updated /);
    expect(tableOf(await readFile(ws.config, 'utf8')).token).toBe(ws.token);
  });

  it.each([
    ['without --expires-at', [], /option --unless-newer needs --expires-at \(--unless-newer\)$/],
    ['in add mode', ['--mode', 'add', '--from-runner-id', '41', '--expires-at', '2026-06-01T00:00:00Z'], /option --unless-newer is not used by --mode add \(--unless-newer\)$/],
    ['with a value', ['--expires-at', '2026-06-01T00:00:00Z', '--unless-newer=yes'], /option --unless-newer takes no value \(arguments\)$/],
    ['twice', ['--expires-at', '2026-06-01T00:00:00Z', '--unless-newer'], /option --unless-newer given twice \(arguments\)$/],
  ])('is refused %s: exit 2, one line, nothing written', async (_what, more, message) => {
    const ws = await workspace(config('token_expires_at = 2027-01-01T00:00:00Z'));

    const result = await runUpdater(args(ws, '--unless-newer', ...more));

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toHaveLength(2);
    expect(result.stderr.trimEnd()).toMatch(/^update-runner-token: error: /);
    expect(result.stderr.trimEnd()).toMatch(message);
    expect(await readFile(ws.config)).toEqual(ws.original);
  });

  it('is refused in remove mode', async () => {
    const ws = await workspace(config(null));

    const result = await runUpdater(['--mode', 'remove', '--config', ws.config, '--runner-id', '42', '--url', URL, '--unless-newer']);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^update-runner-token: error: option --unless-newer is not used by --mode remove \(--unless-newer\)\n$/);
    expect(await readFile(ws.config)).toEqual(ws.original);
  });
});

describe('a converge racing a rotation on one host', () => {
  const OLDER_EXPIRY = '2026-06-01T00:00:00Z';
  const NEWER_EXPIRY = '2026-09-01T00:00:00Z';

  /** A host still on the token before both; the converge's (older) and the rotation's (newer) token files. */
  async function race(): Promise<{ ws: UpdaterWorkspace; older: string; newer: string; converge: string[]; rotate: string[] }> {
    const ws = await workspace(config('token_expires_at = 2026-03-01T00:00:00Z'));
    const older = fakeToken('older-');
    const newer = fakeToken('newer-');
    await writeFile(join(ws.dir, 'older'), `${older}\n`);
    await writeFile(join(ws.dir, 'newer'), `${newer}\n`);
    const base = ['--config', ws.config, '--runner-id', '42', '--url', URL, '--reload', 'none'];
    return {
      ws,
      older,
      newer,
      converge: [...base, '--token-file', join(ws.dir, 'older'), '--expires-at', OLDER_EXPIRY, '--unless-newer'],
      rotate: [...base, '--token-file', join(ws.dir, 'newer'), '--expires-at', NEWER_EXPIRY],
    };
  }

  const tokenIn = async (ws: UpdaterWorkspace): Promise<unknown> => tableOf(await readFile(ws.config, 'utf8')).token;

  it('keeps the newer token when the converge comes second', async () => {
    const { ws, newer, converge, rotate } = await race();

    expect((await runUpdater(rotate)).stdout).toMatch(/^status=updated /);
    expect((await runUpdater(converge)).stdout).toMatch(/^status=kept-newer /);

    expect(await tokenIn(ws)).toBe(newer);
  });

  it('ends with the newer token when the converge comes first', async () => {
    const { ws, newer, converge, rotate } = await race();

    expect((await runUpdater(converge)).stdout).toMatch(/^status=updated /);
    expect((await runUpdater(rotate)).stdout).toMatch(/^status=updated /);

    expect(await tokenIn(ws)).toBe(newer);
  });

  it('ends with the newer token whichever of the two, started at once, takes the lock first', async () => {
    for (let round = 0; round < 8; round += 1) {
      const { ws, older, newer, converge, rotate } = await race();

      const [c, r] = await Promise.all([runUpdater(converge), runUpdater(rotate)]);

      expect([c.code, c.stderr, r.code, r.stderr]).toEqual([0, '', 0, '']);
      expect(c.stdout).toMatch(/^status=(updated|kept-newer) /);
      expect(r.stdout).toMatch(/^status=updated /);
      expectNoSecrets(c, [older, newer, HELD]);
      expectNoSecrets(r, [older, newer, HELD]);
      expect(await tokenIn(ws)).toBe(newer);
      expect(await readFile(ws.config, 'utf8')).toContain(`token_expires_at = ${NEWER_EXPIRY}\n`);
    }
  }, 120_000);
});
