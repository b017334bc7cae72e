/**
 * The GitLab simulator in a process of its own, driven over IPC, so that the scan benchmark measures the
 * scanner's memory and CPU, not the simulated GitLab's (on a 2-core machine they get a core each).
 * Run as a child: `node --import tsx bench/simulator-process.ts`; the parent uses `startSimulatorProcess`.
 *
 * Its clock can run faster than real time (`setTimeScale`): simulated now = simAnchorMs + (Date.now() −
 * realAnchorMs) × speed, the same formula the scanner's clock uses in the parent (`scaledClock`), so both
 * see the same simulated minute and a run that GitLab's limit stretches over minutes takes seconds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GitLabSimulator, type SimulatorOptions, type SimulatorStats } from '../src/simulator/gitlab-simulator.ts';

type Request =
  | { op: 'addRunners'; count: number; tokenObtainedAt: string; tokenExpiresAt: string }
  | { op: 'addAccessToken' }
  | { op: 'stats' }
  | { op: 'resetStats' }
  | { op: 'setRateLimit'; requestsPerMinute: number | null; windowEndsInMs?: number }
  | { op: 'setTimeScale'; scale: TimeScale | null }
  | { op: 'stop' };

/** Simulated time = simAnchorMs + (real time − realAnchorMs) × speed. */
export interface TimeScale {
  realAnchorMs: number;
  simAnchorMs: number;
  speed: number;
}

export function scaledNow(scale: TimeScale, realNowMs = Date.now()): number {
  return scale.simAnchorMs + (realNowMs - scale.realAnchorMs) * scale.speed;
}

export interface SimulatorProcess {
  url: string;
  addRunners(count: number, tokenObtainedAt: Date, tokenExpiresAt: Date): Promise<Array<{ id: number; token: string }>>;
  addAccessToken(): Promise<string>;
  stats(): Promise<SimulatorStats>;
  resetStats(): Promise<void>;
  /**
   * A new limit from empty windows. `windowEndsInMs` shifts the simulator's clock so that its current
   * 60 s window ends that many ms from now: the same phase in every run, so the wall time is repeatable.
   */
  setRateLimit(requestsPerMinute: number | null, windowEndsInMs?: number): Promise<void>;
  /** The simulator's clock runs at `scale` from now on (null: real time again, no offset). */
  setTimeScale(scale: TimeScale | null): Promise<void>;
  stop(): Promise<void>;
}

export async function startSimulatorProcess(options: Pick<SimulatorOptions, 'latencyMs' | 'tokenLifetimeSeconds' | 'rateLimitHeadersOnEveryReply'>): Promise<SimulatorProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [JSON.stringify(options)], {
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_SIM_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let next = 0;
  const waiting = new Map<number, (value: unknown) => void>();
  child.on('message', (message: { id: number; value: unknown }) => {
    waiting.get(message.id)?.(message.value);
    waiting.delete(message.id);
  });
  const call = <T>(request: Request): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = (next += 1);
      waiting.set(id, resolve as (value: unknown) => void);
      child.send({ id, request }, (error) => error && reject(error));
    });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url?: string }) => (m.url ? resolve(m.url) : reject(new Error('simulator process did not start'))));
    child.once('exit', (code) => reject(new Error(`simulator process exited with ${code}`)));
  });
  return {
    url,
    addRunners: (count, obtained, expires) => call({ op: 'addRunners', count, tokenObtainedAt: obtained.toISOString(), tokenExpiresAt: expires.toISOString() }),
    addAccessToken: () => call({ op: 'addAccessToken' }),
    stats: () => call({ op: 'stats' }),
    resetStats: () => call({ op: 'resetStats' }),
    setRateLimit: (requestsPerMinute, windowEndsInMs) => call({ op: 'setRateLimit', requestsPerMinute, windowEndsInMs }),
    setTimeScale: (scale) => call({ op: 'setTimeScale', scale }),
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await call({ op: 'stop' }).catch(() => undefined);
      await exited;
    },
  };
}

async function serve(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as SimulatorOptions;
  let offsetMs = 0;
  let timeScale: TimeScale | null = null;
  const simulator = new GitLabSimulator({ ...options, now: () => new Date(timeScale ? scaledNow(timeScale) : Date.now() + offsetMs) });
  const url = await simulator.start();
  process.send?.({ url });
  process.on('message', ({ id, request }: { id: number; request: Request }) => {
    void answer(id, request);
  });

  async function answer(id: number, request: Request): Promise<void> {
    let value: unknown;
    switch (request.op) {
      case 'addRunners': {
        const runners = [];
        for (let i = 0; i < request.count; i += 1) {
          runners.push(simulator.addRunner({ description: `bench-${i}`, tokenObtainedAt: new Date(request.tokenObtainedAt), tokenExpiresAt: new Date(request.tokenExpiresAt) }));
        }
        value = runners;
        break;
      }
      case 'addAccessToken':
        value = simulator.addAccessToken({ scopes: ['manage_runner'], admin: true });
        break;
      case 'stats':
        value = simulator.stats;
        break;
      case 'resetStats':
        simulator.resetStats();
        break;
      case 'setRateLimit':
        if (request.windowEndsInMs !== undefined) {
          const real = Date.now();
          offsetMs = 0;
          offsetMs = 60_000 - request.windowEndsInMs - (real % 60_000);
        }
        simulator.setRateLimit(request.requestsPerMinute === null ? null : { requestsPerMinute: request.requestsPerMinute });
        break;
      case 'setTimeScale':
        timeScale = request.scale;
        offsetMs = 0;
        break;
      case 'stop':
        await simulator.stop();
        process.send?.({ id, value: null }, () => process.exit(0));
        return;
    }
    process.send?.({ id, value });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await serve();
