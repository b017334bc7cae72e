import type { RunnerManager } from './types.ts';

/**
 * The system_id the rotator sends with every call it makes with a runner token: the reset by token and
 * POST /runners/verify. GitLab runs `authenticate_runner!` for both (lib/api/ci/helpers/runner.rb): it
 * refreshes the runner's contacted_at and a runner manager of the request's system_id, `<legacy>` when
 * none is sent, with the caller's IP. Sending a host's system_id would make that host look alive from the
 * rotator's address; sending none would leave a `<legacy>` record that looks like an old gitlab-runner
 * host. So the rotator speaks as itself: GitLab shows one runner manager named `gitlab-runner-token-rotator`
 * (removed by GitLab's stale-manager cleanup 7 days after the last rotation), and nothing of this project
 * takes it for a host: the GitLab adapter leaves it out of every list of managers.
 *
 * A reset by id (admin token) heartbeats nothing.
 */
export const ROTATOR_SYSTEM_ID = 'gitlab-runner-token-rotator';

/** A manager record of a host (any record but the rotator's own). */
export function isHostManager(manager: RunnerManager): boolean {
  return manager.systemId !== ROTATOR_SYSTEM_ID;
}
