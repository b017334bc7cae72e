/**
 * The host updater (host/update-runner-token.sh) on a config.toml of many runners (200, and about 1 MB),
 * and on one whose target table holds a single line of 400 KB: each run is a fresh `bash` process on a
 * fresh copy of the file, so the time includes the process spawn, the awk pass, the atomic replace and
 * the backup, as on a host (reload `none`: no gitlab-runner to signal here).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from './outage-bench.ts';
import { UPDATER_SCRIPT } from '../test/support/host-updater.ts';

/** `UPDATER_SCRIPT_UNDER_TEST` names another copy (an older one from git, to compare before and after): test/support/host-updater.ts. */
const UPDATER = UPDATER_SCRIPT;
const URL_ = 'https://gitlab.example.com';

export interface UpdaterMeasurement {
  runnersInConfig: number;
  configBytes: number;
  runs: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  /** A second run with the token already in place (no change, no reload). */
  alreadyCurrentP50Ms: number;
}

function configToml(runners: number): string {
  const tables = Array.from({ length: runners }, (_, i) => {
    const id = 1000 + i;
    return `[[runners]]
  name = "runner-${id}"
  url = "${URL_}/"
  id = ${id}
  token = "glrt-${'x'.repeat(20)}${String(id).padStart(6, '0')}"
  token_obtained_at = 2025-01-01T00:00:00Z
  token_expires_at = 2025-02-01T00:00:00Z
  executor = "docker"
  [runners.cache]
    MaxUploadedArchiveSize = 0
  [runners.docker]
    image = "alpine:3.20"
    privileged = false
    volumes = ["/cache"]
  [runners.feature_flags]
    FF_USE_FASTZIP = true
`;
  });
  return `concurrent = 16\ncheck_interval = 0\nshutdown_timeout = 0\n\n[session_server]\n  session_timeout = 1800\n\n${tables.join('\n')}`;
}

function run(args: string[]): Promise<{ ms: number; stdout: string }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    execFile('bash', [UPDATER, ...args], (error, stdout, stderr) => {
      if (error) reject(new Error(`updater failed: ${stderr.trim() || error.message}`));
      else resolve({ ms: performance.now() - start, stdout });
    });
  });
}

/** The number of runners of `configToml` that makes a file of about `bytes` bytes. */
export function runnersForBytes(bytes: number): number {
  const perRunner = configToml(2).length - configToml(1).length;
  return Math.max(1, Math.round((bytes - configToml(0).length) / perRunner));
}

/**
 * The red-team shape: a config of a few runners where the target's table holds one line of about
 * `bytes` bytes (a long `pre_build_script` string with escapes, which the walker decodes).
 */
export function longLineToml(bytes: number): { text: string; runners: number } {
  const unit = 'echo step \\"$CI_JOB_ID\\" >> \\\\tmp\\\\log\\n';
  const line = `  pre_build_script = "${unit.repeat(Math.ceil(bytes / unit.length))}"\n`;
  // In the middle table, the target (id 1001).
  return { text: configToml(3).replace('  id = 1001\n', `  id = 1001\n${line}`), runners: 3 };
}

/** `runUpdater` on a config.toml of `runners` tables (about 480 bytes each). */
export async function runUpdater(runners: number, runs: number): Promise<UpdaterMeasurement> {
  return runUpdaterOn(configToml(runners), runners, runs);
}

/** Each run: a fresh copy of `text`; the target is the middle one of its `runners` tables (id 1000 + runners/2). */
export async function runUpdaterOn(text: string, runners: number, runs: number): Promise<UpdaterMeasurement> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-updater-'));
  try {
    const template = join(dir, 'template.toml');
    await writeFile(template, text, { mode: 0o600 });
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `glrt-${'n'.repeat(26)}\n`, { mode: 0o600 });
    // The table in the middle of the file: half the tables before it, half after.
    const target = String(1000 + Math.floor(runners / 2));
    const times: number[] = [];
    const again: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      const config = join(dir, `config-${i}.toml`);
      await copyFile(template, config);
      const args = ['--config', config, '--runner-id', target, '--url', URL_, '--token-file', tokenFile, '--expires-at', '2025-03-01T12:00:00.000Z', '--reload', 'none'];
      times.push((await run(args)).ms);
      again.push((await run(args)).ms);
      if (!(await readFile(config, 'utf8')).includes('n'.repeat(26))) throw new Error('the updater did not write the token');
    }
    return {
      runnersInConfig: runners,
      configBytes: (await readFile(template)).length,
      runs,
      meanMs: times.reduce((a, b) => a + b, 0) / times.length,
      p50Ms: percentile(times, 0.5),
      p95Ms: percentile(times, 0.95),
      alreadyCurrentP50Ms: percentile(again, 0.5),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
