/**
 * `rotator migrate`: what moving a runner off a legacy registration token will do. The move itself is one
 * rotation by replacement (replace-steps.ts), requested in the ledger so that both engines run it the same
 * way; this file only reads and describes.
 */
import { InvalidInputError } from './errors.ts';
import type { GitLab, SecretStore } from './ports.ts';
import { DEFAULT_REPLACE_TIMING, replacementNeedsAdmin } from './replace-steps.ts';
import { parseSecretValue } from './secret-value.ts';
import { describeHosts, type ManagedRunner, type RunnerSettings } from './types.ts';

/**
 * Runners created with `POST /user/runners` (or in the UI) get tokens with `glrt-` in them (after an
 * optional instance prefix, gitlab-org/gitlab!206149); runners registered with a registration token get
 * tokens without it (gitlab-org/gitlab!110275: "two types of authentication tokens").
 */
export function isLegacyRunnerToken(token: string): boolean {
  return !token.includes('glrt-');
}

export interface MigrationPlan {
  runner: ManagedRunner;
  gitlabUrl: string;
  /** The runner the secret holds now (the one to replace). */
  runnerId: number;
  legacy: boolean;
  settings: RunnerSettings;
  confirmWithinMs: number;
}

export interface MigrationDeps {
  secrets: Pick<SecretStore, 'getValue'>;
  gitlab: Pick<GitLab, 'runner' | 'isAdmin'>;
  adminToken(gitlabUrl: string): Promise<string | undefined>;
}

/** Reads what the migration needs: the runner's current value (adopted), an access token, its settings. */
export async function planMigration(deps: MigrationDeps, runner: ManagedRunner, confirmWithinMs = DEFAULT_REPLACE_TIMING.confirmWithinMs): Promise<MigrationPlan> {
  const raw = await deps.secrets.getValue(runner.secretId, { stage: 'AWSCURRENT' });
  if (raw === undefined) throw new InvalidInputError(`runner ${runner.name}`, `${runner.secretId} has no current token: adopt the runner first`);
  const current = parseSecretValue(raw, `${runner.secretId} AWSCURRENT`);
  const accessToken = await deps.adminToken(current.gitlabUrl);
  if (accessToken === undefined) {
    throw new InvalidInputError(`runner ${runner.name}`, `migrating needs an access token for ${current.gitlabUrl} that may read, create and delete runners (api scope): configure the admin token`);
  }
  const settings = await deps.gitlab.runner(current.gitlabUrl, current.runnerId, accessToken);
  const adminOnly = replacementNeedsAdmin(settings);
  if (adminOnly && !(await deps.gitlab.isAdmin(current.gitlabUrl, accessToken))) {
    throw new InvalidInputError(`runner ${runner.name}`, `migrating needs an administrator's access token for ${current.gitlabUrl}: ${adminOnly}`);
  }
  return { runner, gitlabUrl: current.gitlabUrl, runnerId: current.runnerId, legacy: isLegacyRunnerToken(current.token), settings, confirmWithinMs };
}

/** The plan in an operator's words, one step a line. No token. */
export function describeMigrationPlan(plan: MigrationPlan): string[] {
  const { settings: s, runnerId } = plan;
  const owner =
    s.runnerType === 'group_type' ? ` group_id=${s.groupId ?? '?'}` : s.runnerType === 'project_type' ? ` project_id=${s.projectIds[0] ?? '?'}` : '';
  const fields = [
    `runner_type=${s.runnerType}${owner}`,
    `description=${JSON.stringify(s.description)}`,
    `tag_list=${JSON.stringify(s.tagList.join(','))}`,
    `run_untagged=${s.runUntagged}`,
    `locked=${s.locked}`,
    `access_level=${s.accessLevel}`,
    `maximum_timeout=${s.maximumTimeout ?? 'none'}`,
    `paused=${s.paused}`,
    ...(s.maintenanceNote ? [`maintenance_note=${JSON.stringify(s.maintenanceNote)}`] : []),
  ];
  const lines = [
    `runner ${runnerId} at ${plan.gitlabUrl} (${plan.legacy ? 'legacy registration token' : 'already on a glrt- authentication token'}), ${describeHosts(plan.runner.hosts)}:`,
    `  1. POST /user/runners ${fields.join(' ')}`,
    ...s.projectIds.slice(1).map((id) => `     POST /projects/${id}/runners runner_id=<new runner>`),
    `     store the new runner's token as AWSPENDING of ${plan.runner.secretId}; runner ${runnerId} stays valid`,
    `  2. add the new runner's [[runners]] table on every host, copied from runner ${runnerId}'s (update-runner-token.sh --mode add)`,
    `  3. wait up to ${Math.round(plan.confirmWithinMs / 1000)} s until every host's gitlab-runner has contacted GitLab as the new runner; if one does not, stop here and alert: runner ${runnerId} keeps working everywhere`,
    `  4. remove runner ${runnerId}'s table from every host (--mode remove), DELETE /runners/${runnerId}, make the new runner AWSCURRENT`,
  ];
  return lines;
}
