/**
 * gitlab-runner versions as the doctor reads them: the `Version:` line of `gitlab-runner --version`, or
 * the `version` of a runner manager in `GET /runners/:id/managers`. Pure.
 *
 * Why the doctor cares: FF_DISABLE_AUTOMATIC_TOKEN_ROTATION, which the host updater sets so that
 * gitlab-runner leaves the shared token alone, exists only from gitlab-runner 17.0.0. An older runner
 * ignores it, rotates the token itself at 75 % of its lifetime, writes the new one only to its own
 * config.toml, and every other host of the runner is left with a dead token (runner.version-too-old).
 */

/** The first gitlab-runner version that knows FF_DISABLE_AUTOMATIC_TOKEN_ROTATION. */
export const MIN_SHARED_RUNNER_VERSION = '17.0.0';

/** A version as shown in evidence: digits, letters and `.~+_-` (gitlab-runner's `17.2.0~pre.12.gabc`), at most 64. */
const VERSION_TEXT = /^[0-9A-Za-z.~+_-]{1,64}$/;

/**
 * The value of the `Version:` line of `gitlab-runner --version` (`Version:      16.11.0`), or null
 * when there is no such line or it holds something that is not a version.
 */
export function versionFromOutput(output: string): string | null {
  for (const line of output.split('\n')) {
    const match = /^\s*Version:\s*(\S+)\s*$/.exec(line);
    if (match) return VERSION_TEXT.test(match[1]!) ? match[1]! : null;
  }
  return null;
}

/** major.minor.patch of `16.11.0`, `v17.0.0`, `17.2.0~pre.12.gabc` (the suffix is ignored), or null. */
export function parseRunnerVersion(version: string): [number, number, number] | null {
  const match = /^v?(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?![0-9])/.exec(version.trim());
  if (!match) return null;
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

/** true: older than 17.0.0 (numerically, part by part); false: 17.0.0 or later; null: not a version. */
export function isBeforeSelfRotationFlag(version: string): boolean | null {
  const parts = parseRunnerVersion(version);
  if (parts === null) return null;
  const min = parseRunnerVersion(MIN_SHARED_RUNNER_VERSION)!;
  for (let i = 0; i < 3; i++) {
    if (parts[i]! !== min[i]!) return parts[i]! < min[i]!;
  }
  return false;
}
