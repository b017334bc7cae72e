/**
 * `npm run test:embedded-updater`: every host test against the updater as the SSM documents embed it
 * (src/adapters/aws/host-update-document.ts readScript: comment lines and indentation dropped), not only the
 * file in host/. The copy is written to a private temporary folder and named to the tests by
 * UPDATER_SCRIPT_UNDER_TEST (test/support/host-updater.ts). CI runs it after `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readScript } from '../../src/adapters/aws/host-update-document.ts';

const dir = mkdtempSync(join(tmpdir(), 'embedded-updater-'));
// The host tests run the updater as `nobody` too: the folder and the copy must be readable by anyone.
chmodSync(dir, 0o755);
const copy = join(dir, 'update-runner-token.sh');
writeFileSync(copy, `${readScript(new URL('../../host/update-runner-token.sh', import.meta.url)).join('\n')}\n`, { mode: 0o755 });
const run = spawnSync('npx', ['vitest', 'run', 'test/host'], { stdio: 'inherit', env: { ...process.env, UPDATER_SCRIPT_UNDER_TEST: copy } });
rmSync(dir, { recursive: true, force: true });
process.exit(run.status ?? 1);
