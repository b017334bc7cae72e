import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { parse } from 'smol-toml';
import { readTextIfExists } from './state-files.ts';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { InvalidInputError } from '../../core/errors.ts';
import type { Clock, Delivery, Fleet, SecretStore } from '../../core/ports.ts';
import { parseSecretValue } from '../../core/secret-value.ts';
import { interpretUpdaterRun, type UpdaterRun } from '../../core/updater-output.ts';
import type { HostResult, HostTarget, ManagedRunner } from '../../core/types.ts';

export const HOST_UPDATER_PATH = fileURLToPath(new URL('../../../host/update-runner-token.sh', import.meta.url));

export interface LocalFleetOptions {
  /** Where the hosts fetch the token from, as a host fetches it from Secrets Manager with its role. */
  secrets: SecretStore;
  clock: Clock;
  updaterPath?: string;
  /** Hosts updated at once. Default 16: every host of a typical runner at once, so the outage window is one update long. */
  concurrency?: number;
  /** A host whose updater runs longer is reported timed-out. Default 60 s. */
  timeoutMs?: number;
}


/**
 * The local engine's fleet: each host of a runner is a config.toml on this machine (one runner may list
 * several, standing for several hosts). For each it runs host/update-runner-token.sh (`--mode add` for a
 * replacement runner, `--mode remove` for the replaced one) and hands it the token on a pipe, descriptor 3
 * (`--token-file /dev/fd/3`; the previous token on 4): the token is never written to a file, so a host
 * killed on timeout leaves none behind, and it never travels in arguments, the environment or output.
 */
export class LocalFleet implements Fleet {
  private readonly updaterPath: string;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly timeoutMs: number;

  constructor(private readonly options: LocalFleetOptions) {
    this.updaterPath = options.updaterPath ?? HOST_UPDATER_PATH;
    this.limit = pLimit(options.concurrency ?? 16);
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  async push(runner: ManagedRunner, delivery: Delivery, onResult?: (result: HostResult) => void): Promise<HostResult[]> {
    const token = await this.tokenOf(delivery.secretId, delivery.versionId);
    // `--mode add` finds the old table by id: no previous token needed.
    const previous = delivery.previousVersionId && delivery.addFromRunnerId === undefined ? await this.tokenOf(delivery.secretId, delivery.previousVersionId) : undefined;
    const args = ['--runner-id', String(runner.runnerId), '--url', runner.gitlabUrl, '--token-file', '/dev/fd/3', '--reload', runner.reload];
    if (delivery.addFromRunnerId !== undefined) args.push('--mode', 'add', '--from-runner-id', String(delivery.addFromRunnerId));
    if (previous !== undefined) args.push('--previous-token-file', '/dev/fd/4');
    if (delivery.tokenExpiresAt) args.push('--expires-at', delivery.tokenExpiresAt);
    return this.onEveryHost(runner, args, onResult, previous === undefined ? [token] : [token, previous]);
  }

  async remove(runner: ManagedRunner, _removal: { secretId: string; versionId: string }, onResult?: (result: HostResult) => void): Promise<HostResult[]> {
    return this.onEveryHost(runner, ['--mode', 'remove', '--runner-id', String(runner.runnerId), '--url', runner.gitlabUrl, '--reload', runner.reload], onResult);
  }

  /** `secrets`: the tokens, handed to each host's updater on descriptors 3 and 4, and redacted from what it prints. */
  private async onEveryHost(runner: ManagedRunner, args: string[], onResult?: (result: HostResult) => void, secrets: string[] = []): Promise<HostResult[]> {
    return Promise.all(
      localHosts(runner).map((host) =>
        this.limit(async () => {
          const result = await this.runOnHost(host, args, secrets);
          onResult?.(result);
          return result;
        }),
      ),
    );
  }

  /** Each host's token for the runner, read from its config.toml (smol-toml), with its system_id. */
  async hostTokens(runner: ManagedRunner): Promise<Array<{ host: string; systemId: string | null; token: string }>> {
    const found: Array<{ host: string; systemId: string | null; token: string }> = [];
    for (const host of localHosts(runner)) {
      const text = await readTextIfExists(host.configPath).catch(() => undefined);
      if (text === undefined) continue;
      let document: { runners?: Array<Record<string, unknown>> };
      try {
        document = parse(text) as typeof document;
      } catch {
        continue;
      }
      const table = document.runners?.find((r) => r.id === runner.runnerId && typeof r.url === 'string' && r.url.replace(/\/+$/, '') === runner.gitlabUrl);
      if (typeof table?.token !== 'string') continue;
      const systemId = (await readTextIfExists(join(dirname(host.configPath), '.runner_system_id')).catch(() => undefined))?.split('\n')[0]?.trim() || null;
      found.push({ host: host.name, systemId, token: table.token });
    }
    return found;
  }

  private async runOnHost(host: HostTarget, args: string[], secrets: string[]): Promise<HostResult> {
    const run = await runBash([this.updaterPath, '--config', host.configPath, ...args], secrets, this.timeoutMs);
    const finishedAt = this.options.clock.now().toISOString();
    if (run.timedOut) return { host: host.name, status: 'timed-out', systemId: null, detail: `updater did not finish within ${this.timeoutMs} ms`, finishedAt };
    return { host: host.name, ...interpretUpdaterRun(run, secrets), finishedAt };
  }

  private async tokenOf(secretId: string, versionId: string): Promise<string> {
    const raw = await this.options.secrets.getValue(secretId, { versionId });
    if (raw === undefined) throw new Error(`${secretId} has no value at version ${versionId} to push`);
    return parseSecretValue(raw, `${secretId} version ${versionId}`).token;
  }
}

function localHosts(runner: ManagedRunner): HostTarget[] {
  if (runner.hosts.kind !== 'config-files') {
    throw new InvalidInputError(`runner ${runner.name}`, `the local engine updates config files on this machine, not ${runner.hosts.kind} hosts`);
  }
  return runner.hosts.files;
}

/** Output kept per stream, as execFile's default maxBuffer: the updater prints one line. */
const MAX_OUTPUT = 1024 * 1024;

/**
 * Runs `bash args…` with `inputs[i]` (plus a newline) on descriptor 3 + i, through a pipe that is closed
 * once written: the only way a token reaches the updater. Killed with SIGKILL after `timeoutMs`.
 */
function runBash(args: string[], inputs: string[], timeoutMs: number): Promise<UpdaterRun & { timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'pipe', ...inputs.map(() => 'pipe' as const)] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const finish = (exitCode: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ exitCode, timedOut, stdout, stderr });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk;
    });
    inputs.forEach((input, i) => {
      const pipe = child.stdio[3 + i] as Writable;
      // An updater that exits before reading (a bad argument) closes the pipe: EPIPE is no failure here.
      pipe.on('error', () => undefined);
      pipe.end(`${input}\n`);
    });
    child.on('error', () => finish(null));
    child.on('close', (code) => finish(code));
  });
}
