import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const LAUNCHER = fileURLToPath(new URL('../../../src/cli/rotator.mjs', import.meta.url));

/** Why a private mount namespace cannot be made here (not root, no unshare), or undefined when it can. */
function unavailable(): string | undefined {
  try {
    execFileSync('unshare', ['-m', '--propagation', 'private', 'true'], { stdio: 'ignore' });
    return undefined;
  } catch (error) {
    return `unshare -m failed (${(error as Error).message.split('\n')[0]}): it needs root or CAP_SYS_ADMIN`;
  }
}
const reason = unavailable();
if (reason) console.warn(`skipping the read-only root checks: ${reason}`);

/**
 * What the service's ProtectSystem=strict, ReadWritePaths=, ProtectHome= and PrivateTmp= leave, made by
 * hand in a private mount namespace: the whole file system read-only but one folder (standing for
 * /etc/gitlab-runner and the stateDir), /root and /home empty and read-only, the temporary folder inside the
 * writable one. Exit 90 when the root is still writable: the setup failed, the run proves nothing.
 */
const SANDBOX = `set -eu
dir=$1; shift
mount --bind "$dir" "$dir"
mount -o remount,bind,ro /
for home in /root /home; do if [ -d "$home" ]; then mount -t tmpfs -o ro,mode=000 tmpfs "$home"; fi; done
if touch /rotator-read-only-probe 2>/dev/null; then echo "the root is still writable" >&2; exit 90; fi
cd "$dir"
TMPDIR="$dir/tmp" exec "$@"`;

describe.skipIf(reason !== undefined)('the local engine on a read-only root (the service\'s sandbox, by hand)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rotator-read-only-'));
    await mkdir(join(dir, 'tmp'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('cannot write outside its folder there (the setup holds)', async () => {
    const outside = join(tmpdir(), `rotator-outside-${process.pid}`);
    await expect(run('unshare', ['-m', '--propagation', 'private', 'bash', '-c', SANDBOX, '_', dir, 'mkdir', outside])).rejects.toMatchObject({ stderr: expect.stringContaining('Read-only file system') });
    await expect(stat(outside)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 60_000);

  it('rotates every runner of the demo, each host updater writing config.toml and its backup in that folder only', async () => {
    const { stdout } = await run('unshare', ['-m', '--propagation', 'private', 'bash', '-c', SANDBOX, '_', dir, process.execPath, LAUNCHER, 'demo', '--keep', join(dir, 'kept')]);
    expect(stdout).toContain('demo: 3/3 runners rotated (reset), 8/8 hosts hold a token GitLab accepts, 0 problems');
    const hosts = await readdir(join(dir, 'kept', 'hosts'));
    expect(hosts).toHaveLength(8);
    for (const host of hosts) expect(await readdir(join(dir, 'kept', 'hosts', host))).toEqual(expect.arrayContaining(['config.toml', 'config.toml.bak']));
    expect(await readdir(join(dir, 'kept', 'state'))).not.toEqual([]);
  }, 180_000);
});
