/**
 * Each Lambda bundle as `cdk synth` builds it: esbuild with the options NodejsFunction gets
 * (lib/constructs/function-bundling.ts, functionEsbuildOptions: the same settings as rotatorBundling), with nothing of the fleet compiled in (its settings are an environment variable, its runners secret tags). Size: the `index.mjs` only (the source map is a separate
 * file that Node reads only when a stack trace needs it). Init: a fresh `node` imports the bundle, with
 * the function's environment (COMMON_FUNCTION_ENVIRONMENT, NODE_OPTIONS included), timed inside it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { functionEsbuildOptions } from '../lib/constructs/function-bundling.ts';
import { COMMON_FUNCTION_ENVIRONMENT } from '../lib/constructs/rotation-functions.ts';
import { fleetSettingsText, parseAwsFleetConfig } from '../src/config/aws-fleet-config.ts';
import { percentile } from './outage-bench.ts';

const ROOT = new URL('../', import.meta.url);

export interface BundleMeasurement {
  entry: string;
  bytes: number;
  sourceMapBytes: number;
  /** Median and slowest of `runs` imports in a fresh node, ms. */
  initP50Ms: number;
  initMaxMs: number;
  /** The largest packages in the bundle (minified bytes). */
  top: Array<{ module: string; bytes: number }>;
}

/** Time to import the bundle in a fresh node process (what Lambda's init phase does with our code). */
function importTime(file: string, env: Record<string, string>): Promise<number> {
  const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t));`;
  return new Promise((resolve, reject) => {
    const { NODE_OPTIONS, ...rest } = env;
    execFile(process.execPath, [...(NODE_OPTIONS ? NODE_OPTIONS.split(' ') : []), '--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '', ...rest } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`importing ${file} failed: ${stderr.trim() || error.message}`));
      else resolve(Number(stdout));
    });
  });
}

export async function runBundles(runs: number): Promise<BundleMeasurement[]> {
  const fleetText = await readFile(new URL('fleet.aws.example.json', ROOT), 'utf8');
  // The bundling options cdk synth uses (function-bundling.ts), plus what the bench reads back: the metafile.
  const options: BuildOptions = { ...functionEsbuildOptions(), metafile: true, logLevel: 'warning' };
  const entries = (await readdir(new URL('functions/', ROOT))).filter((f) => f.endsWith('.ts')).sort();
  const out = await mkdtemp(join(tmpdir(), 'bench-bundles-'));
  // What Lambda sets, plus what the stack sets for every function; the handlers build their clients lazily.
  const env: Record<string, string> = {
    ...COMMON_FUNCTION_ENVIRONMENT,
    AWS_REGION: 'eu-west-1',
    AWS_LAMBDA_FUNCTION_NAME: 'bench',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    LEDGER_TABLE_NAME: 'ledger',
    HOST_DOCUMENT_NAME: 'HostUpdate',
    ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:alerts',
    // What the stack sets: the fleet file's settings (its runners are the secrets' tags).
    ROTATOR_SETTINGS_JSON: fleetSettingsText(parseAwsFleetConfig(fleetText, 'fleet.aws.example.json')),
  };
  try {
    const measurements: BundleMeasurement[] = [];
    for (const entry of entries) {
      const name = entry.replace(/\.ts$/, '');
      const outfile = join(out, name, 'index.mjs');
      const result = await build({ ...options, entryPoints: [fileURLToPathSafe(new URL(`functions/${entry}`, ROOT))], outfile, absWorkingDir: fileURLToPathSafe(ROOT) });
      const bytes = (await stat(outfile)).size;
      const sourceMapBytes = await stat(`${outfile}.map`).then((s) => s.size, () => 0);
      const times: number[] = [];
      for (let i = 0; i < runs; i += 1) times.push(await importTime(outfile, env));
      const outputs = Object.values(result.metafile?.outputs ?? {}).find((o) => o.entryPoint !== undefined);
      const byModule = new Map<string, number>();
      for (const [path, input] of Object.entries(outputs?.inputs ?? {})) {
        const parts = path.split('node_modules/').pop()!.split('/');
        const module = path.includes('node_modules/') ? (parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!) : '(this project)';
        byModule.set(module, (byModule.get(module) ?? 0) + input.bytesInOutput);
      }
      const top = [...byModule].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([module, b]) => ({ module, bytes: b }));
      measurements.push({ entry: `functions/${entry}`, bytes, sourceMapBytes, initP50Ms: percentile(times, 0.5), initMaxMs: Math.max(...times), top });
    }
    return measurements;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

function fileURLToPathSafe(url: URL): string {
  return decodeURIComponent(url.pathname);
}
