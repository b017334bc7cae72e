/** Token minting for the simulator: the shapes GitLab hands out, from crypto-grade randomness. */
import { randomBytes } from 'node:crypto';

/** The prefix of runner authentication tokens (GitLab 15.10+). */
export const RUNNER_TOKEN_PREFIX = 'glrt-';

/** The prefix GitLab gives a new token of a runner registered with a registration token (legacy `POST /runners`). */
export const REGISTERED_RUNNER_TOKEN_PREFIX = 'glrtr-';

/**
 * What a runner token looks like:
 * - `created`: a runner created with `POST /user/runners` (or in the UI): `glrt-` + 24 base64url characters;
 * - `legacy`: a token from before GitLab 15.10's prefixes: 20 random characters, no prefix;
 * - `registered`: what a reset gives a runner registered with a registration token: `glrtr-` + 24
 *   (app/models/ci/runner.rb: `REGISTRATION_RUNNER_TOKEN_PREFIX = 'glrtr-'`, used by `prefix_for_new_and_legacy_runner`
 *   for every runner not created through the new workflow).
 */
export type RunnerTokenKind = 'created' | 'legacy' | 'registered';

export function newRunnerToken(kind: RunnerTokenKind): string {
  switch (kind) {
    case 'legacy':
      return randomBytes(15).toString('base64url');
    case 'registered':
      return `${REGISTERED_RUNNER_TOKEN_PREFIX}${randomBytes(18).toString('base64url')}`;
    case 'created':
      return `${RUNNER_TOKEN_PREFIX}${randomBytes(18).toString('base64url')}`;
  }
}

/** A personal access token: `glpat-` + 20 base64url characters. */
export function newAccessToken(): string {
  return `glpat-${randomBytes(15).toString('base64url')}`;
}
