import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../../src/adapters/local/file-secret-store.ts';
import { LocalFleet } from '../../../src/adapters/local/local-fleet.ts';
import { systemClock } from '../../../src/adapters/local/system-clock.ts';
import { serializeSecretValue } from '../../../src/core/secret-value.ts';
import { DEFAULT_EXPIRY_POLICY, type ManagedRunner } from '../../../src/core/types.ts';

/**
 * The local fleet's own paths, with a stand-in updater (a bash script) where the real one cannot show
 * them: a host whose updater never finishes, and a host whose shell prints the token it was handed.
 */
let dir: string;
let store: FileSecretStore;
const SECRET = 'runner-a';
const VERSION = '0f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b';
// A legacy token has no prefix a pattern could find: only the fleet, which knows it, can redact it.
const TOKEN = 'x7Hq2LmN9pRs4TvWlegacy';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-fleet-'));
  store = new FileSecretStore({ dir: join(dir, 'secrets') });
  await store.adoptCurrent(SECRET, VERSION, serializeSecretValue({ runnerId: 7, gitlabUrl: 'https://gitlab.example.com', token: TOKEN, tokenExpiresAt: null, tokenObtainedAt: '2026-11-23T00:00:00.000Z' }));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function updater(body: string): Promise<string> {
  const path = join(dir, 'updater.sh');
  await writeFile(path, `#!/usr/bin/env bash\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

const runner = (hosts: string[]): ManagedRunner => ({
  name: SECRET,
  secretId: SECRET,
  gitlabUrl: 'https://gitlab.example.com',
  runnerId: 7,
  hosts: { kind: 'config-files', files: hosts.map((name) => ({ name, configPath: join(dir, `${name}.toml`) })) },
  reload: 'none',
  policy: DEFAULT_EXPIRY_POLICY,
  strategy: 'reset',
});

const delivery = { secretId: SECRET, versionId: VERSION, previousVersionId: null, tokenExpiresAt: null };

/** The files under `folder` (recursively) whose bytes hold any of `secrets`. */
async function filesHolding(folder: string, secrets: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path);
    if (secrets.some((secret) => bytes.includes(secret))) found.push(path);
  }
  return found;
}

describe('the local fleet', () => {
  it('reports a host whose updater never finishes as timed-out, and the others as they are', async () => {
    const path = await updater('case "$*" in *slow.toml*) exec sleep 30 ;; esac\necho "status=updated runner_id=7 config=x system_id=s_1 reload=none"');
    const fleet = new LocalFleet({ secrets: store, clock: systemClock, updaterPath: path, timeoutMs: 300 });

    const results = await fleet.push(runner(['fast', 'slow']), delivery);

    expect(results.map((r) => [r.host, r.status])).toEqual([
      ['fast', 'updated'],
      ['slow', 'timed-out'],
    ]);
    expect(results[1]?.detail).toBe('updater did not finish within 300 ms');
  });

  it('redacts the token it handed the host, even one no pattern could recognise, from what the host printed', async () => {
    // The token comes on descriptor 3 (--token-file /dev/fd/3), a pipe that is read, not opened.
    const path = await updater('echo "bash: line 1: $(head -n 1 <&3): command not found" >&2\nexit 1');
    const fleet = new LocalFleet({ secrets: store, clock: systemClock, updaterPath: path });

    const [result] = await fleet.push(runner(['h1']), delivery);

    expect(result).toMatchObject({ host: 'h1', status: 'failed', detail: 'exit 1: bash: line 1: [redacted]: command not found' });
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });

  it('hands the updater both tokens on pipes, so no file under TMPDIR holds them while it runs or after it is killed on timeout', async () => {
    const NEXT = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
    const NEXT_TOKEN = 'glrt-NEXTlocalFleetToken01';
    await store.putPendingValue(SECRET, NEXT, serializeSecretValue({ runnerId: 7, gitlabUrl: 'https://gitlab.example.com', token: NEXT_TOKEN, tokenExpiresAt: null, tokenObtainedAt: '2026-11-24T00:00:00.000Z' }));
    const tmp = join(dir, 'tmp');
    await mkdir(tmp);
    const started = join(dir, 'started');
    // Says what it was handed (descriptors, never a path to open), then hangs until the fleet kills it.
    const path = await updater(`printf '%s\\n' "$*" > "$(dirname "$0")/args"\n: > ${JSON.stringify(started)}\nexec sleep 30`);
    const fleet = new LocalFleet({ secrets: store, clock: systemClock, updaterPath: path, timeoutMs: 1_500 });
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      let settled = false;
      const pushing = fleet.push(runner(['h1']), { ...delivery, versionId: NEXT, previousVersionId: VERSION }).finally(() => {
        settled = true;
      });
      for (let i = 0; i < 200 && !existsSync(started); i++) await new Promise((r) => setTimeout(r, 10));

      expect(existsSync(started), 'the updater did not start').toBe(true);
      expect(settled).toBe(false);
      expect(await filesHolding(tmp, [NEXT_TOKEN, TOKEN])).toEqual([]);
      const [result] = await pushing;
      expect(result?.status).toBe('timed-out');
      expect(await filesHolding(tmp, [NEXT_TOKEN, TOKEN])).toEqual([]);
      expect(await readFile(join(dir, 'args'), 'utf8')).toMatch(/--token-file \/dev\/fd\/3 .*--previous-token-file \/dev\/fd\/4/);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('removes a runner table without reading or writing any token', async () => {
    const path = await updater('printf "%s\\n" "$*" > "$(dirname "$0")/args"\necho "status=removed runner_id=7 config=x system_id=s_1 reload=none"');
    const fleet = new LocalFleet({ secrets: store, clock: systemClock, updaterPath: path });

    const [result] = await fleet.remove(runner(['h1']), { secretId: SECRET, versionId: VERSION });

    expect(result).toMatchObject({ status: 'updated', detail: 'removed, reload=none' });
    const args = await readFile(join(dir, 'args'), 'utf8');
    expect(args).toContain('--mode remove');
    expect(args).not.toContain('--token-file');
  });
});
