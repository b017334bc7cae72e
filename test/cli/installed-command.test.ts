import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Runs a command with its stdout's reading end closed at once, as `| head` does once it has its lines. */
function runWithStdoutClosed(command: string, args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** `exit` and both streams of a command that may fail. */
async function attempt(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  try {
    const { stdout, stderr } = await run(command, args, options);
    return { exit: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { exit: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

// npm's own install of this folder into a prefix (what `npm install -g --prefix P .` does; offline: the
// folder is linked, its node_modules already there), then the command run from another working folder.
describe('the installed rotator command', () => {
  let prefix: string;
  let work: string;
  let rotator: string;

  beforeAll(async () => {
    prefix = await mkdtemp(join(tmpdir(), 'rotator-prefix-'));
    work = await mkdtemp(join(tmpdir(), 'rotator-cwd-'));
    await run('npm', ['install', '--global', '--prefix', prefix, REPO, '--offline', '--no-audit', '--no-fund']);
    rotator = join(prefix, 'bin', 'rotator');
  }, 120_000);

  afterAll(async () => {
    await rm(prefix, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('prints its help and exits 0 from any working folder', async () => {
    const { stdout } = await run(rotator, ['--help'], { cwd: work });
    expect(stdout).toMatch(/^Usage: rotator \[options\] \[command\]/);
    expect(stdout).toContain('rotate');
  }, 60_000);

  it('prints the version of package.json with --version', async () => {
    const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const { stdout } = await run(rotator, ['--version'], { cwd: work });
    expect(stdout.trim()).toBe(version);
  }, 60_000);

  it('exits 2 with no fleet file, naming --fleet and ROTATOR_FLEET, rather than doing nothing', async () => {
    const missing = join(work, 'no-such-fleet.json');
    const result = await attempt(rotator, ['rotate', '--due'], { cwd: work, env: { ...process.env, ROTATOR_FLEET: missing } });
    expect(result.exit).toBe(2);
    expect(result.stderr).toContain(`${missing}: no fleet file here`);
    expect(result.stderr).toContain('--fleet');
    expect(result.stderr).toContain('ROTATOR_FLEET');
    expect(result.stderr).not.toContain('    at ');
  }, 60_000);

  it('keeps the demo in a relative folder whose fleet file the next command reads from the same place', async () => {
    const demo = await run(rotator, ['demo', '--keep', './kept'], { cwd: work });
    expect(demo.stdout).toContain('3/3 runners rotated (reset)');
    const status = await run(rotator, ['--fleet', 'kept/fleet.json', 'status'], { cwd: work });
    expect(status.stdout.match(/^(docker-builders|shell-deployers|arm64-builders) /gm)).toHaveLength(3);
  }, 120_000);

  it('stops quietly with its own exit code when the reader closes the pipe early (`| head`)', async () => {
    const result = await runWithStdoutClosed(rotator, ['--help'], work);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }, 60_000);
});
