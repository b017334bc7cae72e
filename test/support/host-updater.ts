import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

/** The real host updater, run by every test of it. */
export const UPDATER_SCRIPT = fileURLToPath(new URL('../../host/update-runner-token.sh', import.meta.url));

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
  return new Promise((done) => {
    execFile(command ?? 'bash', [...prefix, UPDATER_SCRIPT, ...args], { env }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

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
