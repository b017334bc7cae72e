import { readFile } from 'node:fs/promises';
import { parse } from 'smol-toml';
import { pollForJobs, type SimulatedHost } from './simulated-fleet.ts';

export interface RunnerDaemonsOptions {
  /** gitlab-runner's check_interval: how often every host polls for every runner of its config. Default 50 ms. */
  intervalMs?: number;
  /**
   * Which `[[runners]]` tables stand for the runner being measured (default: every table of the
   * simulator's url). A tick in which none of them was accepted is a tick the host could take no job.
   */
  counts?: (table: Record<string, unknown>) => boolean;
}

/** What a host's gitlab-runner did in one poll of one runner: the runner id, and GitLab's status (204 = accepted). */
export interface DaemonPoll {
  runnerId: number | null;
  status: number;
}

/** One host's polls in one tick, and whether any counted table was accepted (the host could take a job). */
export interface DaemonTick {
  host: string;
  served: boolean;
  polls: DaemonPoll[];
}

/**
 * gitlab-runner on each simulated host, as the `replace` strategy meets it: every `intervalMs` it reads
 * its config.toml (with a TOML parser, as gitlab-runner does after a SIGHUP or a file change) and polls
 * GitLab once for each `[[runners]]` table of the simulator's url, with that table's token and the host's
 * system_id, so GitLab records the host as a manager of each runner it runs.
 *
 * `stop(host)` kills one host's gitlab-runner (it never polls again): the host that "never picks up the new
 * runner". A config.toml that does not parse is skipped, as gitlab-runner keeps its last good config.
 *
 * The outage a host sees is counted per tick, not per poll: in a replace rotation the old runner's table
 * may be polled once more, from a config read just before its removal, after the old runner was deleted;
 * GitLab refuses that poll, but the new runner's poll of the same tick is accepted and jobs still run.
 */
export class RunnerDaemons {
  private readonly intervalMs: number;
  private readonly stopped = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private tick: Promise<void> = Promise.resolve();
  private running = false;
  private readonly counts: (table: Record<string, unknown>) => boolean;
  /** Every host's every tick, oldest first (no token is kept). */
  readonly ticks: DaemonTick[] = [];

  constructor(
    private readonly url: string,
    private readonly hosts: SimulatedHost[],
    options: RunnerDaemonsOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 50;
    this.counts = options.counts ?? (() => true);
  }

  /** Where the record stands now: pass it to offlineSince. */
  mark(): number {
    return this.ticks.length;
  }

  /** Since `mark`: host ticks in which the host could take no job (no counted table accepted), of all host ticks. */
  offlineSince(mark: number): { offline: number; ticks: number } {
    const since = this.ticks.slice(mark);
    return { offline: since.filter((t) => !t.served).length, ticks: since.length };
  }

  start(): this {
    this.running = true;
    this.schedule();
    return this;
  }

  /** Kills the named host's gitlab-runner. */
  stop(hostName: string): void {
    this.stopped.add(hostName);
  }

  /** Starts the named host's gitlab-runner again. */
  resume(hostName: string): void {
    this.stopped.delete(hostName);
  }

  /** Stops every host and waits for a poll in flight. */
  async stopAll(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.tick = this.pollAll().finally(() => {
        if (this.running) this.schedule();
      });
    }, this.intervalMs);
  }

  private async pollAll(): Promise<void> {
    await Promise.all(this.hosts.filter((h) => !this.stopped.has(h.name)).map((host) => this.pollHost(host)));
  }

  private async pollHost(host: SimulatedHost): Promise<void> {
    let tables: Array<Record<string, unknown>>;
    try {
      tables = (parse(await readFile(host.configPath, 'utf8')) as { runners?: Array<Record<string, unknown>> }).runners ?? [];
    } catch {
      return;
    }
    const polls: DaemonPoll[] = [];
    let served = false;
    for (const table of tables) {
      if (typeof table.url !== 'string' || table.url.replace(/\/+$/, '') !== this.url || typeof table.token !== 'string') continue;
      const status = await pollForJobs(this.url, table.token, host.systemId).catch(() => 0);
      polls.push({ runnerId: typeof table.id === 'number' ? table.id : null, status });
      if (status === 204 && this.counts(table)) served = true;
    }
    this.ticks.push({ host: host.name, served, polls });
  }
}
