/** The JSON shapes GitLab's REST API v4 gives for runners and runner managers. */
import type { RunnerView, SimulatedManager } from './simulator-state.ts';

/** GitLab's Ci::Runner::ONLINE_CONTACT_TIMEOUT. */
const ONLINE_CONTACT_TIMEOUT_MS = 2 * 60 * 60 * 1000;
/** GitLab's Ci::Runner::STALE_TIMEOUT. */
const STALE_TIMEOUT_MS = 7 * 24 * 60 * 60 * 1000;

export type RunnerStatus = 'online' | 'offline' | 'stale' | 'never_contacted';

/** GitLab's status rule: online within 2 h of contact; stale after 7 days without contact. */
export function contactStatus(contactedAt: Date | null, createdAt: Date, now: Date): RunnerStatus {
  const nowMs = now.getTime();
  if (contactedAt === null) return createdAt.getTime() <= nowMs - STALE_TIMEOUT_MS ? 'stale' : 'never_contacted';
  if (contactedAt.getTime() > nowMs - ONLINE_CONTACT_TIMEOUT_MS) return 'online';
  if (contactedAt.getTime() <= nowMs - STALE_TIMEOUT_MS) return 'stale';
  return 'offline';
}

export function runnerStatus(runner: RunnerView, now: Date): RunnerStatus {
  return contactStatus(runner.contactedAt, runner.createdAt, now);
}

/** An item of `GET /runners` and `GET /runners/all`. */
export function runnerSummary(runner: RunnerView, now: Date): Record<string, unknown> {
  const status = runnerStatus(runner, now);
  const latest = latestManager(runner);
  return {
    id: runner.id,
    description: runner.description,
    ip_address: latest?.ipAddress ?? null,
    active: !runner.paused,
    paused: runner.paused,
    is_shared: runner.runnerType === 'instance_type',
    runner_type: runner.runnerType,
    name: null,
    online: status === 'online',
    status,
  };
}

/**
 * `GET /runners/:id` (lib/api/ci/runners.rb, Entities::Ci::RunnerDetails): no `token_expires_at` (only the
 * replies that issue or verify a token carry it).
 */
export function runnerDetail(runner: RunnerView, now: Date): Record<string, unknown> {
  const latest = latestManager(runner);
  return {
    ...runnerSummary(runner, now),
    contacted_at: isoOrNull(runner.contactedAt),
    created_at: runner.createdAt.toISOString(),
    maintenance_note: runner.maintenanceNote,
    tag_list: [...runner.tagList],
    run_untagged: runner.runUntagged,
    locked: runner.locked,
    maximum_timeout: runner.maximumTimeout,
    access_level: runner.accessLevel,
    version: orNull(latest?.version),
    revision: orNull(latest?.revision),
    platform: orNull(latest?.platform),
    architecture: orNull(latest?.architecture),
    projects: runner.projectIds.map((id) => ({
      id,
      description: null,
      name: `project-${id}`,
      name_with_namespace: `group / project-${id}`,
      path: `project-${id}`,
      path_with_namespace: `group/project-${id}`,
    })),
    groups: runner.groupId === null ? [] : [{ id: runner.groupId, web_url: `http://gitlab.example.com/groups/group-${runner.groupId}`, name: `group-${runner.groupId}` }],
  };
}

/** An item of `GET /runners/:id/managers`. */
export function managerView(manager: Readonly<SimulatedManager>, now: Date): Record<string, unknown> {
  return {
    id: manager.id,
    system_id: manager.systemId,
    version: orNull(manager.version),
    revision: orNull(manager.revision),
    platform: orNull(manager.platform),
    architecture: orNull(manager.architecture),
    created_at: manager.createdAt.toISOString(),
    contacted_at: manager.contactedAt.toISOString(),
    ip_address: manager.ipAddress,
    status: contactStatus(manager.contactedAt, manager.createdAt, now),
  };
}

/** The reply to a reset, a registration or a creation: `{id?, token, token_expires_at}`. */
export function issuedTokenBody(token: string, tokenExpiresAt: Date | null, id?: number): Record<string, unknown> {
  return id === undefined
    ? { token, token_expires_at: isoOrNull(tokenExpiresAt) }
    : { id, token, token_expires_at: isoOrNull(tokenExpiresAt) };
}

export function isoOrNull(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

function latestManager(runner: RunnerView): Readonly<SimulatedManager> | undefined {
  let latest: Readonly<SimulatedManager> | undefined;
  for (const manager of runner.managers.values()) {
    if (!latest || manager.contactedAt.getTime() >= latest.contactedAt.getTime()) latest = manager;
  }
  return latest;
}

function orNull(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}
