import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import type { GitLabSimulator } from './gitlab-simulator.ts';

const DAY_MS = 86_400_000;

/** One runner of a simulated fleet: its token is shared by `hosts` hosts. */
export interface SimulatedRunnerSpec {
  name: string;
  hosts: number;
  tokenObtainedAt?: Date;
  tokenExpiresAt?: Date | null;
}

/** A simulated runner host: a folder with config.toml and .runner_system_id, as gitlab-runner keeps them. */
export interface SimulatedHost {
  runner: string;
  runnerId: number;
  name: string;
  configPath: string;
  systemId: string;
}

export interface SimulatedFleet {
  url: string;
  hosts: SimulatedHost[];
  runners: Array<{ name: string; id: number }>;
  /** Every token the fleet was set up with (tests look for them in captured output). */
  tokens: string[];
  /** A fleet file for the local engine over these hosts. */
  fleetFile(stateDir: string, reload?: 'sighup' | 'restart' | 'none'): object;
}

/**
 * Builds runner hosts on disk for the simulator's runners: each host's config.toml holds its runner's
 * table and a neighbour runner's table (which a rotation must leave alone), and each host has polled
 * GitLab once, so GitLab knows its manager (system_id).
 */
export async function createSimulatedFleet(simulator: GitLabSimulator, workDir: string, specs: SimulatedRunnerSpec[]): Promise<SimulatedFleet> {
  const url = simulator.url;
  const hosts: SimulatedHost[] = [];
  const runners: SimulatedFleet['runners'] = [];
  const neighbour = simulator.addRunner({ description: 'neighbour' });
  const tokens = [neighbour.token];
  for (const spec of specs) {
    const { id, token } = simulator.addRunner({ description: spec.name, tokenObtainedAt: spec.tokenObtainedAt, tokenExpiresAt: spec.tokenExpiresAt });
    const expiresAt = simulator.runner(id)?.tokenExpiresAt ?? null;
    runners.push({ name: spec.name, id });
    tokens.push(token);
    for (let i = 1; i <= spec.hosts; i += 1) {
      const name = `${spec.name}-${i}`;
      const dir = join(workDir, 'hosts', name);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const systemId = `s_${randomBytes(6).toString('hex')}`;
      await writeFile(join(dir, '.runner_system_id'), `${systemId}\n`, { mode: 0o600 });
      const configPath = join(dir, 'config.toml');
      await writeFile(configPath, hostConfigToml(url, { name, id, token, expiresAt }, neighbour), { mode: 0o600 });
      await pollForJobs(url, token, systemId);
      hosts.push({ runner: spec.name, runnerId: id, name, configPath, systemId });
    }
  }
  return {
    url,
    hosts,
    runners,
    tokens,
    fleetFile: (stateDir, reload = 'sighup') => ({
      stateDir,
      defaults: { reload },
      runners: runners.map((r) => ({
        name: r.name,
        gitlabUrl: url,
        runnerId: r.id,
        hosts: hosts.filter((h) => h.runner === r.name).map((h) => ({ name: h.name, config: h.configPath })),
      })),
    }),
  };
}

/** A config.toml as gitlab-runner writes it: the target runner (url with a trailing slash) and a neighbour. */
function hostConfigToml(url: string, runner: { name: string; id: number; token: string; expiresAt: Date | null }, neighbour: { id: number; token: string }): string {
  const stamp = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const now = new Date();
  return `concurrent = 4
check_interval = 0
shutdown_timeout = 0

[session_server]
  session_timeout = 1800

[[runners]]
  name = "${runner.name}"
  url = "${url}/"
  id = ${runner.id}
  token = "${runner.token}"
  token_obtained_at = ${stamp(new Date(now.getTime() - 27 * DAY_MS))}
  token_expires_at = ${runner.expiresAt ? stamp(runner.expiresAt) : '0001-01-01T00:00:00Z'}
  executor = "docker"
  [runners.cache]
    MaxUploadedArchiveSize = 0
  [runners.docker]
    image = "alpine:3.20"
    privileged = false
    volumes = ["/cache"]

[[runners]]
  name = "neighbour"
  url = "${url}"
  id = ${neighbour.id}
  token = "${neighbour.token}"
  executor = "shell"
`;
}

/** The tables of the managed runners, not the neighbour every simulated host also runs (for RunnerDaemons' `counts`). */
export function isManagedTable(table: Record<string, unknown>): boolean {
  return table.name !== 'neighbour';
}

/** The ids of a host's `[[runners]]` tables of the managed runners (not the neighbour), in file order. */
export async function managedRunnerIds(host: Pick<SimulatedHost, 'configPath'>): Promise<number[]> {
  const document = parse(await readFile(host.configPath, 'utf8')) as { runners?: Array<Record<string, unknown>> };
  return (document.runners ?? []).filter(isManagedTable).map((r) => Number(r.id));
}

/** What gitlab-runner does every few seconds: POST /jobs/request with its token and system_id (204: no job). */
export async function pollForJobs(url: string, token: string, systemId: string): Promise<number> {
  const response = await fetch(`${url}/api/v4/jobs/request`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, system_id: systemId }),
  });
  await response.arrayBuffer();
  return response.status;
}

export interface HostCheck {
  host: SimulatedHost;
  /** The runner id whose table was checked. */
  runnerId: number;
  /** Tables of other runners of this GitLab than `runnerId` and the neighbour: a replaced runner left behind. */
  leftoverRunnerIds: number[];
  /** GitLab's answer to a job request with the token this host's config.toml holds (204 = accepted). */
  status: number;
  accepted: boolean;
  /** FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true in the runner's [runners.feature_flags]. */
  selfRotationDisabled: boolean;
  token: string | undefined;
}

/**
 * Reads each host's config.toml with a TOML parser and polls GitLab with the token it holds for the
 * runner: `runnerIdOf` says which runner id to look for (after a `replace` rotation, the new one).
 */
export async function checkHosts(hosts: SimulatedHost[], url: string, runnerIdOf: (host: SimulatedHost) => number = (host) => host.runnerId): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  for (const host of hosts) {
    const runnerId = runnerIdOf(host);
    const document = parse(await readFile(host.configPath, 'utf8')) as { runners?: Array<Record<string, unknown>> };
    const table = document.runners?.find((r) => r.id === runnerId);
    const token = typeof table?.token === 'string' ? table.token : undefined;
    const flags = table?.feature_flags as Record<string, unknown> | undefined;
    const status = token === undefined ? 0 : await pollForJobs(url, token, host.systemId);
    const leftoverRunnerIds = (document.runners ?? []).filter((r) => r.id !== runnerId && isManagedTable(r)).map((r) => Number(r.id));
    checks.push({ host, runnerId, leftoverRunnerIds, status, accepted: status === 204, selfRotationDisabled: flags?.FF_DISABLE_AUTOMATIC_TOKEN_ROTATION === true, token });
  }
  return checks;
}
