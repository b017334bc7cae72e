/** Token minting for the simulator: the shapes GitLab hands out, from crypto-grade randomness. */
import { randomBytes } from 'node:crypto';

/** The prefix of runner authentication tokens (GitLab 15.10+). */
export const RUNNER_TOKEN_PREFIX = 'glrt-';

/** `glrt-` + 24 base64url characters; a legacy token is 20 random characters without prefix. */
export function newRunnerToken(legacy: boolean): string {
  return legacy ? randomBytes(15).toString('base64url') : `${RUNNER_TOKEN_PREFIX}${randomBytes(18).toString('base64url')}`;
}

/** A personal access token: `glpat-` + 20 base64url characters. */
export function newAccessToken(): string {
  return `glpat-${randomBytes(15).toString('base64url')}`;
}
