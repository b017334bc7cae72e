import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../../src/adapters/local/file-secret-store.ts';
import { LocalFleet } from '../../../src/adapters/local/local-fleet.ts';
import { systemClock } from '../../../src/adapters/local/system-clock.ts';
import { serializeSecretValue } from '../../../src/core/secret-value.ts';
import { DEFAULT_EXPIRY_POLICY, hostHoldsVersion, type ManagedRunner } from '../../../src/core/types.ts';
import { fakeToken } from '../../support/host-updater.ts';

/**
 * Runners that share one config.toml rotate at the same moment (the scanner starts due rotations
 * together; runners adopted together come due together): the local fleet runs their updaters at once, as
 * SSM runs commands for one instance at once, and every token must land.
 */
let dir: string;
const URL = 'https://gitlab.example.com';
const COUNT = 6;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-fleet-shared-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const runnerOf = (i: number, config: string): ManagedRunner => ({
  name: `runner-${i}`,
  secretId: `runner-${i}`,
  gitlabUrl: URL,
  runnerId: 101 + i,
  hosts: { kind: 'config-files', files: [{ name: 'host-1', configPath: config }] },
  reload: 'none',
  policy: DEFAULT_EXPIRY_POLICY,
  strategy: 'reset',
});

describe('the local fleet on a config.toml shared by several runners', () => {
  it('lands every runner\'s token when their pushes run at the same time', async () => {
    const config = join(dir, 'config.toml');
    await writeFile(config, Array.from({ length: COUNT }, (_, i) => `[[runners]]\n  name = "r${i}"\n  url = "${URL}"\n  id = ${101 + i}\n  token = "glrt-OLD-${i}"\n  executor = "shell"\n`).join('\n'), { mode: 0o600 });
    const store = new FileSecretStore({ dir: join(dir, 'secrets') });
    const tokens = Array.from({ length: COUNT }, () => fakeToken());
    const versions = tokens.map((_, i) => `0f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a${String(i).padStart(2, '0')}`);
    for (const [i, token] of tokens.entries()) {
      await store.adoptCurrent(`runner-${i}`, versions[i]!, serializeSecretValue({ runnerId: 101 + i, gitlabUrl: URL, token, tokenExpiresAt: null, tokenObtainedAt: '2026-12-01T00:00:00.000Z' }));
    }
    const fleet = new LocalFleet({ secrets: store, clock: systemClock });

    const results = await Promise.all(
      tokens.map((_, i) => fleet.push(runnerOf(i, config), { secretId: `runner-${i}`, versionId: versions[i]!, previousVersionId: null, tokenExpiresAt: null })),
    );

    expect(results.flat().map((r) => r.status)).toEqual(tokens.map(() => 'updated'));
    expect(results.flat().every(hostHoldsVersion)).toBe(true);
    const runners = (parse(await readFile(config, 'utf8')) as { runners: Array<{ id: number; token: string }> }).runners;
    expect(Object.fromEntries(runners.map((r) => [r.id, r.token]))).toEqual(Object.fromEntries(tokens.map((t, i) => [101 + i, t])));
  });
});
