/**
 * What the simulated GitLab knows: runners, their managers, runner tokens and access tokens.
 * Every lookup by id or by token is a Map access, so per-request work stays O(1) however many
 * runners a benchmark adds. Time comes only from the injected clock.
 */
import { newAccessToken, newRunnerToken, type RunnerTokenKind } from './tokens.ts';

export type RunnerType = 'instance_type' | 'group_type' | 'project_type';
export type AccessLevel = 'not_protected' | 'ref_protected';
export type AccessScope = 'api' | 'read_api' | 'manage_runner' | 'create_runner';

export interface AddRunnerInit {
  description?: string;
  runnerType?: RunnerType;
  groupId?: number;
  projectIds?: number[];
  tagList?: string[];
  runUntagged?: boolean;
  locked?: boolean;
  accessLevel?: AccessLevel;
  maximumTimeout?: number | null;
  paused?: boolean;
  /** Default: now + tokenLifetimeSeconds, or null when tokens never expire. */
  tokenExpiresAt?: Date | null;
  /** Default: now. */
  tokenObtainedAt?: Date;
  /** A token without the glrt- prefix (a runner registered with a registration token). */
  legacyToken?: boolean;
  maintenanceNote?: string;
}

/** One runner manager (one host running gitlab-runner with this runner's token). */
export interface SimulatedManager {
  id: number;
  systemId: string;
  contactedAt: Date;
  createdAt: Date;
  ipAddress: string;
  /** gitlab-runner version the host reported with `/jobs/request`; '' until it reported one. */
  version: string;
  revision: string;
  platform: string;
  architecture: string;
}

/** A copy of a runner's record, for assertions. Mutating it changes nothing in the simulator. */
export interface SimulatedRunner {
  id: number;
  token: string;
  tokenExpiresAt: Date | null;
  tokenObtainedAt: Date;
  description: string;
  runnerType: RunnerType;
  paused: boolean;
  managers: SimulatedManager[];
  groupId: number | null;
  projectIds: number[];
  tagList: string[];
  runUntagged: boolean;
  locked: boolean;
  accessLevel: AccessLevel;
  maximumTimeout: number | null;
  maintenanceNote: string | null;
  createdAt: Date;
  /** Last contact by any means (verify, jobs/request), with or without a system_id. */
  contactedAt: Date | null;
  legacyToken: boolean;
  /** How many times the token was reset (by token, by id, or revoked by a test). */
  tokenResets: number;
}

export interface AccessTokenRecord {
  scopes: ReadonlySet<AccessScope>;
  admin: boolean;
}

/** What a runner reports about itself with `/jobs/request` (the `info` object gitlab-runner sends). */
export interface ManagerReport {
  systemId: string;
  ipAddress: string;
  version?: string;
  revision?: string;
  platform?: string;
  architecture?: string;
}

interface RunnerRecord extends Omit<SimulatedRunner, 'managers'> {
  managers: Map<string, SimulatedManager>;
}

export interface SimulatorStateOptions {
  now: () => Date;
  tokenLifetimeSeconds: number | null;
}

export class SimulatorState {
  readonly now: () => Date;
  readonly tokenLifetimeSeconds: number | null;
  private readonly runners = new Map<number, RunnerRecord>();
  private readonly runnerIdByToken = new Map<string, number>();
  private readonly accessTokens = new Map<string, AccessTokenRecord>();
  private nextRunnerId = 1;
  private nextManagerId = 1;

  constructor(options: SimulatorStateOptions) {
    this.now = options.now;
    this.tokenLifetimeSeconds = options.tokenLifetimeSeconds;
  }

  get runnerCount(): number {
    return this.runners.size;
  }

  addRunner(init: AddRunnerInit = {}): { id: number; token: string } {
    const now = this.now();
    const legacyToken = init.legacyToken ?? false;
    const token = this.mintUniqueToken(legacyToken ? 'legacy' : 'created');
    const record: RunnerRecord = {
      id: this.nextRunnerId++,
      token,
      tokenExpiresAt: init.tokenExpiresAt === undefined ? this.expiryFrom(now) : copyDate(init.tokenExpiresAt),
      tokenObtainedAt: new Date((init.tokenObtainedAt ?? now).getTime()),
      description: init.description ?? '',
      runnerType: init.runnerType ?? 'instance_type',
      paused: init.paused ?? false,
      managers: new Map(),
      groupId: init.groupId ?? null,
      projectIds: [...(init.projectIds ?? [])],
      tagList: [...(init.tagList ?? [])],
      runUntagged: init.runUntagged ?? true,
      locked: init.locked ?? false,
      accessLevel: init.accessLevel ?? 'not_protected',
      maximumTimeout: init.maximumTimeout ?? null,
      maintenanceNote: init.maintenanceNote ?? null,
      createdAt: now,
      contactedAt: null,
      legacyToken,
      tokenResets: 0,
    };
    this.runners.set(record.id, record);
    this.runnerIdByToken.set(token, record.id);
    return { id: record.id, token };
  }

  addAccessToken(init: { scopes: AccessScope[]; admin?: boolean }): string {
    const token = newAccessToken();
    this.accessTokens.set(token, { scopes: new Set(init.scopes), admin: init.admin ?? false });
    return token;
  }

  accessToken(token: string): AccessTokenRecord | undefined {
    return this.accessTokens.get(token);
  }

  hasRunner(id: number): boolean {
    return this.runners.has(id);
  }

  /** The runner a token belongs to if GitLab would accept it now: known, current, not expired. */
  runnerIdForToken(token: string): number | undefined {
    const id = this.runnerIdByToken.get(token);
    if (id === undefined) return undefined;
    const runner = this.runners.get(id);
    if (!runner || runner.token !== token) return undefined;
    if (runner.tokenExpiresAt !== null && runner.tokenExpiresAt.getTime() <= this.now().getTime()) return undefined;
    return id;
  }

  /** Issues a new token; the old one stops working at once (GitLab has no grace period). */
  resetToken(id: number): { token: string; tokenExpiresAt: Date | null } | undefined {
    const runner = this.runners.get(id);
    if (!runner) return undefined;
    const now = this.now();
    this.runnerIdByToken.delete(runner.token);
    // A runner registered with a registration token gets a `glrtr-` token from any reset (tokens.ts).
    runner.token = this.mintUniqueToken(runner.legacyToken ? 'registered' : 'created');
    runner.tokenObtainedAt = now;
    runner.tokenExpiresAt = this.expiryFrom(now);
    runner.tokenResets += 1;
    this.runnerIdByToken.set(runner.token, id);
    return { token: runner.token, tokenExpiresAt: copyDate(runner.tokenExpiresAt) };
  }

  /** The token stops working, as after a reset whose reply was lost: a new token nobody was told. */
  revokeToken(id: number): void {
    this.mustGet(id);
    this.resetToken(id);
  }

  expireToken(id: number): void {
    const runner = this.mustGet(id);
    runner.tokenExpiresAt = new Date(this.now().getTime() - 1000);
  }

  /**
   * A runner's heartbeat as `authenticate_runner!` makes it: the runner's contacted_at, and the runner
   * manager of `report.systemId` (`<legacy>` when the request had none) created or refreshed with the
   * caller's address.
   */
  recordContact(id: number, report: ManagerReport): void {
    const runner = this.runners.get(id);
    if (!runner) return;
    const now = this.now();
    runner.contactedAt = now;
    let manager = runner.managers.get(report.systemId);
    if (!manager) {
      manager = {
        id: this.nextManagerId++,
        systemId: report.systemId,
        contactedAt: now,
        createdAt: now,
        ipAddress: report.ipAddress,
        version: '',
        revision: '',
        platform: '',
        architecture: '',
      };
      runner.managers.set(report.systemId, manager);
    }
    manager.contactedAt = now;
    manager.ipAddress = report.ipAddress;
    manager.version = report.version ?? manager.version;
    manager.revision = report.revision ?? manager.revision;
    manager.platform = report.platform ?? manager.platform;
    manager.architecture = report.architecture ?? manager.architecture;
  }

  /**
   * `POST /projects/:id/runners`: a project runner also serves `projectId`. 'not-project' for an instance
   * or group runner, 'already' when it serves it already.
   */
  enableInProject(id: number, projectId: number): 'enabled' | 'not-project' | 'already' | 'no-runner' {
    const runner = this.runners.get(id);
    if (!runner) return 'no-runner';
    if (runner.runnerType !== 'project_type') return 'not-project';
    if (runner.projectIds.includes(projectId)) return 'already';
    runner.projectIds.push(projectId);
    return 'enabled';
  }

  deleteRunner(id: number): boolean {
    const runner = this.runners.get(id);
    if (!runner) return false;
    this.runnerIdByToken.delete(runner.token);
    this.runners.delete(id);
    return true;
  }

  /** A deep copy, safe to hand to tests. */
  snapshot(id: number): SimulatedRunner | undefined {
    const runner = this.runners.get(id);
    if (!runner) return undefined;
    return {
      ...runner,
      tokenExpiresAt: copyDate(runner.tokenExpiresAt),
      tokenObtainedAt: new Date(runner.tokenObtainedAt.getTime()),
      createdAt: new Date(runner.createdAt.getTime()),
      contactedAt: copyDate(runner.contactedAt),
      projectIds: [...runner.projectIds],
      tagList: [...runner.tagList],
      managers: [...runner.managers.values()].map(copyManager),
    };
  }

  /** Read-only view of one runner for the routes: the live record, not a copy. */
  view(id: number): RunnerView | undefined {
    return this.runners.get(id);
  }

  /** All runners in id order, as live read-only views. */
  views(): Iterable<RunnerView> {
    return this.runners.values();
  }

  private expiryFrom(now: Date): Date | null {
    return this.tokenLifetimeSeconds === null ? null : new Date(now.getTime() + this.tokenLifetimeSeconds * 1000);
  }

  private mintUniqueToken(kind: RunnerTokenKind): string {
    let token = newRunnerToken(kind);
    while (this.runnerIdByToken.has(token)) token = newRunnerToken(kind);
    return token;
  }

  private mustGet(id: number): RunnerRecord {
    const runner = this.runners.get(id);
    if (!runner) throw new RangeError(`no simulated runner with id ${id}`);
    return runner;
  }
}

/** A runner as the routes read it: the live record, read-only. */
export type RunnerView = Readonly<Omit<SimulatedRunner, 'managers'>> & { readonly managers: ReadonlyMap<string, Readonly<SimulatedManager>> };

function copyDate(date: Date | null): Date | null {
  return date === null ? null : new Date(date.getTime());
}

function copyManager(manager: SimulatedManager): SimulatedManager {
  return { ...manager, contactedAt: new Date(manager.contactedAt.getTime()), createdAt: new Date(manager.createdAt.getTime()) };
}
