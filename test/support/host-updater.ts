import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
