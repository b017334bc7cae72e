import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type { BuildOptions } from 'esbuild';

/**
 * Lets CommonJS modules bundled into the ESM output `require()` Node built-ins. Without it the bundles fail
 * at import with `Dynamic require of "util" is not supported` (esbuild's `__require` shim has no `require`
 * to call in ESM; tried on functions/rotate-secret.ts).
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as topLevelCreateRequire } from 'node:module'; const require = topLevelCreateRequire(import.meta.url);";

/**
 * How every Lambda is bundled, in esbuild's terms: the one place these settings are written. `cdk synth`
 * gets them through rotatorBundling (NodejsFunction), the bundle bench through functionEsbuildOptions (esbuild's API).
 * - ESM (`index.mjs`), like the rest of the project ("type": "module"): ESM-only dependencies
 *   (p-limit, @gitbeaker/rest, @middy/core) and top-level await work as they do in the tests. `mainFields`
 *   prefers each package's ESM build; the banner gives the CommonJS ones that remain a real `require`.
 * - Everything is bundled, @aws-sdk/* included (`external: []`): the Node 22 runtime ships an SDK v3,
 *   but of whatever version Lambda last installed; bundling deploys the SDK version the tests ran against.
 *   Node built-ins stay external (`platform: 'node'`, which NodejsFunction always passes).
 * - Nothing of the fleet is compiled in: the settings travel in the environment (ROTATOR_SETTINGS_JSON) and
 *   the runners are the secrets' tags, so every bundle is the same bytes whatever the fleet (issue 15).
 */
const FUNCTION_ESBUILD = {
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  external: [],
} as const;

/**
 * The bundling options of every NodejsFunction, by the esbuild in node_modules (never Docker): aws-cdk-lib
 * finds esbuild with require.resolve and, for an npm lock file, runs `npx --no-install esbuild` in
 * `projectRoot`, i.e. node_modules/.bin/esbuild; `forceDockerBundling: false` keeps it from falling back to Docker.
 * NodejsFunction turns these into esbuild flags (aws-lambda-nodejs/lib/bundling.js, buildEsbuildArgs) with
 * `--bundle --platform=node`.
 */
export function rotatorBundling(): nodejs.BundlingOptions {
  return {
    forceDockerBundling: false,
    format: FUNCTION_ESBUILD.format === 'esm' ? nodejs.OutputFormat.ESM : nodejs.OutputFormat.CJS,
    target: FUNCTION_ESBUILD.target,
    mainFields: [...FUNCTION_ESBUILD.mainFields],
    banner: FUNCTION_ESBUILD.banner,
    minify: FUNCTION_ESBUILD.minify,
    sourceMap: FUNCTION_ESBUILD.sourcemap,
    sourcesContent: FUNCTION_ESBUILD.sourcesContent,
    externalModules: [...FUNCTION_ESBUILD.external],
  };
}

/** The same settings as esbuild API options, as NodejsFunction passes them on its command line: what the bundle bench builds with. */
export function functionEsbuildOptions(): BuildOptions {
  return {
    bundle: true,
    platform: FUNCTION_ESBUILD.platform,
    format: FUNCTION_ESBUILD.format,
    target: FUNCTION_ESBUILD.target,
    mainFields: [...FUNCTION_ESBUILD.mainFields],
    banner: { js: FUNCTION_ESBUILD.banner },
    minify: FUNCTION_ESBUILD.minify,
    sourcemap: FUNCTION_ESBUILD.sourcemap,
    sourcesContent: FUNCTION_ESBUILD.sourcesContent,
    external: [...FUNCTION_ESBUILD.external],
  };
}
