import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect } from 'vitest';

/**
 * The real host updater, run by every test of it. `UPDATER_SCRIPT_UNDER_TEST` names another copy (an older
 * one from git, to see a test fail without the fix it covers).
 */
export const UPDATER_SCRIPT = process.env.UPDATER_SCRIPT_UNDER_TEST ?? fileURLToPath(new URL('../../host/update-runner-token.sh', import.meta.url));
/** Its TOML walker, which the updater finds next to itself (host/toml-edit.awk, or the copy beside UPDATER_SCRIPT_UNDER_TEST). */
export const UPDATER_WALKER = join(dirname(UPDATER_SCRIPT), 'toml-edit.awk');
/** The config.toml corpus of test/host/fixtures. */
export const UPDATER_FIXTURES = fileURLToPath(new URL('../host/fixtures', import.meta.url));
export const SELF_ROTATION_FLAG = 'FF_DISABLE_AUTOMATIC_TOKEN_ROTATION';
/** For the owner and permission cases: only root can chown, and setpriv runs the updater as another user. */
export const IS_ROOT = process.getuid?.() === 0;
export const NOBODY = 65534;
export const HAS_SETPRIV = existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv');

/** A config.toml (created with `mode`) and a token file holding `token`, in `dir`. */
export interface UpdaterWorkspace {
  dir: string;
  config: string;
  tokenFile: string;
  token: string;
  original: Buffer;
}

export async function writeWorkspace(dir: string, text: string | Buffer, mode: number, token = fakeToken()): Promise<UpdaterWorkspace> {
  const config = join(dir, 'config.toml');
  await writeFile(config, text);
  await chmod(config, mode);
  const tokenFile = join(dir, 'new-token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  return { dir, config, tokenFile, token, original: await readFile(config) };
}

/** Lines with their terminators, so CRLF and a missing final newline are compared too. */
export const linesOf = (text: string): string[] => text.match(/[^\n]*\n|[^\n]+$/g) ?? [];

/** Neither stream of the run holds any of `secrets`. */
export function expectNoSecrets(result: UpdaterResult, secrets: readonly string[]): void {
  for (const secret of secrets) {
    expect(result.stdout).not.toContain(secret);
    expect(result.stderr).not.toContain(secret);
  }
}

export interface UpdaterResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface UpdaterRunOptions {
  env?: Record<string, string>;
  /** A command that runs `bash SCRIPT args…` differently (a resource limit, another user). */
  wrap?: string[];
}

/**
 * Runs `bash host/update-runner-token.sh args…` with real bash; never throws on a non-zero exit. Any
 * reload a test did not ask for fails visibly instead of signalling a real gitlab-runner.
 */
export function runUpdater(args: string[], options: UpdaterRunOptions = {}): Promise<UpdaterResult> {
  const [command, ...prefix] = options.wrap ?? ['bash'];
  const env = { ...process.env, UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false', UPDATE_RUNNER_TOKEN_PKILL: 'false', ...options.env };
  // Run as another user, the script must be where that user can read it: not inside a checkout that only
  // its owner may enter (a `mktemp -d` clone is 0700).
  const script = options.wrap ? stagedScript() : UPDATER_SCRIPT;
  return new Promise((done) => {
    execFile(command ?? 'bash', [...prefix, script, ...args], { env }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

let staged: string | undefined;

/**
 * A copy of the updater any user may read, with its walker beside it where it looks for it, in a folder
 * of its own under the temp folder (made once).
 */
function stagedScript(): string {
  if (staged === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'updater-stage-'));
    chmodSync(dir, 0o755);
    // An older updater under test (its walker still inside it) has none.
    if (existsSync(UPDATER_WALKER)) {
      const walker = join(dir, 'toml-edit.awk');
      copyFileSync(UPDATER_WALKER, walker);
      chmodSync(walker, 0o644);
    }
    staged = join(dir, 'update-runner-token.sh');
    copyFileSync(UPDATER_SCRIPT, staged);
    chmodSync(staged, 0o644);
  }
  return staged;
}

/**
 * Why tests that run the updater as another user (`nobody`) cannot run here, or undefined when they can:
 * that needs root and setpriv, and a temp folder every user may enter, all the way up (the workspaces and
 * the staged script live there; a checkout's own location does not matter).
 */
export function otherUserUnavailable(): string | undefined {
  if (!IS_ROOT) return undefined; // the tests run as this user, who is not root: permissions apply as they are
  if (!HAS_SETPRIV) return 'setpriv (util-linux) is not installed: no way to run the updater as an unprivileged user';
  for (let dir = resolve(tmpdir()); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return `${dir} is not searchable by other users, so nobody cannot reach the temp folder ${tmpdir()} (set TMPDIR elsewhere)`;
    if (dir === dirname(dir)) return undefined;
  }
}

/** Computed once: why the other-user tests are skipped, or undefined when they run. */
export const OTHER_USER_SKIP_REASON = otherUserUnavailable();

/** A fresh token-shaped value for the updater to write (never a real token). */
export const fakeToken = (prefix = ''): string => `glrt-${prefix}${randomBytes(15).toString('base64url')}`;

/** Temp folders made for the updater's runs, removed after the file's tests (made writable first). */
export function tempFolders(): { make(prefix: string): Promise<string> } {
  const made: string[] = [];
  afterAll(async () => {
    for (const dir of made) {
      await chmod(dir, 0o700).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
  return {
    make: async (prefix) => {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
  };
}
