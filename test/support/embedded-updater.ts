/**
 * `npm run test:embedded-updater`: every host test against the updater and its TOML walker as the SSM
 * documents embed them (src/adapters/aws/host-update-document.ts readScript: comment lines and indentation
 * dropped), not only the files in host/. The copies are written side by side to a private temporary folder,
 * as the documents write them on a host (the updater finds toml-edit.awk next to itself), and the updater's
 * copy is named to the tests by UPDATER_SCRIPT_UNDER_TEST (test/support/host-updater.ts, which stages the
 * walker beside it for the runs as another user too). CI runs it after `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readScript } from '../../src/adapters/aws/host-update-document.ts';

const dir = mkdtempSync(join(tmpdir(), 'embedded-updater-'));
// The host tests run the updater as `nobody` too: the folder and the copies must be readable by anyone.
chmodSync(dir, 0o755);
const embedded = (name: string) => `${readScript(new URL(`../../host/${name}`, import.meta.url)).join('\n')}\n`;
writeFileSync(join(dir, 'toml-edit.awk'), embedded('toml-edit.awk'), { mode: 0o644 });
const copy = join(dir, 'update-runner-token.sh');
writeFileSync(copy, embedded('update-runner-token.sh'), { mode: 0o755 });
const run = spawnSync('npx', ['vitest', 'run', 'test/host'], { stdio: 'inherit', env: { ...process.env, UPDATER_SCRIPT_UNDER_TEST: copy } });
rmSync(dir, { recursive: true, force: true });
process.exit(run.status ?? 1);
