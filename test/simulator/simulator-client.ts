/** A tiny fetch client for the simulator tests: real HTTP over the simulator's socket. */
import { afterEach } from 'vitest';
import { GitLabSimulator, type SimulatorOptions } from '../../src/simulator/gitlab-simulator.ts';

export interface ClientCall {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface SimulatorClient {
  get(path: string, call?: ClientCall): Promise<Response>;
  /** JSON body. */
  post(path: string, body?: Record<string, unknown>, call?: ClientCall): Promise<Response>;
  /** application/x-www-form-urlencoded body, as gitlab-runner sends it. */
  postForm(path: string, fields: Record<string, string>, call?: ClientCall): Promise<Response>;
  delete(path: string, body?: Record<string, unknown>, call?: ClientCall): Promise<Response>;
}

export function clientFor(baseUrl: string): SimulatorClient {
  const url = (path: string): string => `${baseUrl}/api/v4${path}`;
  const withJson = (method: string, path: string, body: Record<string, unknown> | undefined, call: ClientCall = {}): Promise<Response> =>
    fetch(url(path), {
      method,
      headers: { ...(body ? { 'Content-Type': 'application/json' } : {}), ...call.headers },
      body: body ? JSON.stringify(body) : undefined,
      signal: call.signal,
    });
  return {
    get: (path, call = {}) => fetch(url(path), { headers: call.headers, signal: call.signal }),
    post: (path, body, call) => withJson('POST', path, body, call),
    postForm: (path, fields, call = {}) =>
      fetch(url(path), {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...call.headers },
        body: new URLSearchParams(fields).toString(),
        signal: call.signal,
      }),
    delete: (path, body, call) => withJson('DELETE', path, body, call),
  };
}

export const asAccessToken = (token: string): ClientCall => ({ headers: { 'PRIVATE-TOKEN': token } });

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export type StartSimulator = (options?: SimulatorOptions) => Promise<{ sim: GitLabSimulator; api: SimulatorClient }>;

/** Call at the top of a test file: every simulator the returned function starts is stopped after each test. */
export function useSimulators(): StartSimulator {
  let running: GitLabSimulator[] = [];
  afterEach(async () => {
    const stopping = running;
    running = [];
    await Promise.all(stopping.map((sim) => sim.stop()));
  });
  return async (options = {}) => {
    const sim = new GitLabSimulator(options);
    running.push(sim);
    return { sim, api: clientFor(await sim.start()) };
  };
}
