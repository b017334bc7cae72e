/**
 * The fault matrix: one fault at one boundary per case, in each engine where it applies. A case injects its
 * fault, runs what the product runs (a rotation, a crash and a retry, a scan, a race), may repair what an
 * operator would repair, and may add checks of its own ("nothing made worse"); the shared verdict
 * (verdict.ts) then judges every case the same way, after one more scan.
 */
import { failingPuts } from '../support/failing-store.ts';
import { appendFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { managedRunnerIds } from '../../src/simulator/simulated-fleet.ts';
import type { SecretStore } from '../../src/core/ports.ts';
import type { RotationStep } from '../../src/core/types.ts';
import { ROTATION_STEPS } from '../../src/core/types.ts';
import type { EngineName, World, WorldOptions } from './fault-world.ts';

/** What a case keeps between its phases. */
export type CaseState = Record<string, unknown> & { checks: string[] };

export interface FaultCase {
  /** A sentence: what happens and what must follow. */
  name: string;
  engine: EngineName;
  options?: WorldOptions;
  inject?(w: World, s: CaseState): Promise<void>;
  run(w: World, s: CaseState): Promise<void>;
  /** What an operator fixes before the next scan (bring the host back, configure the admin token …). */
  repair?(w: World, s: CaseState): Promise<void>;
  /** Checks of this case beyond the shared verdict, after the repair scan: each problem in words. */
  expect?(w: World, s: CaseState): Promise<string[]>;
}

type CaseDef = Omit<FaultCase, 'engine' | 'name' | 'options'> & { options?: WorldOptions | ((engine: EngineName) => WorldOptions) };

const RESET_PATH = '/runners/reset_authentication_token';
/** The GitLab adapter's attempts per request (its default): a fault armed this many times exhausts them. */
const ADAPTER_ATTEMPTS = 3;

export function both(name: string, def: CaseDef): FaultCase[] {
  return (['local', 'aws'] as const).map((engine) => only(engine, name, def));
}

export function only(engine: EngineName, name: string, def: CaseDef): FaultCase {
  const options = typeof def.options === 'function' ? def.options(engine) : def.options;
  return { ...def, name: `${name} (${engine === 'local' ? 'local engine' : 'AWS engine'})`, engine, options };
}

// ------------------------------------------------------------------------------------------- helpers

export async function remember(w: World, s: CaseState): Promise<void> {
  s.before = await w.currentToken();
  s.resetsBefore = w.tokenResets();
}

/** After a failed attempt: the token still works, no second token, nothing half-done on the hosts. */
async function nothingMadeWorse(w: World, s: CaseState, label: string): Promise<void> {
  const current = await w.currentToken();
  if (current !== s.before) s.checks.push(`${label}: AWSCURRENT changed`);
  if (current === undefined || !w.simulator.accepts(current)) s.checks.push(`${label}: GitLab no longer accepts AWSCURRENT`);
  for (const host of await w.hostStates()) {
    if (host.token !== s.before || !host.accepted) s.checks.push(`${label}: host ${host.name} no longer holds the working token`);
  }
}

export function expectResets(count: number) {
  return async (w: World, s: CaseState): Promise<string[]> => {
    const made = w.tokenResets() - Number(s.resetsBefore ?? 0);
    return made === count ? [] : [`GitLab reset the token ${made} time(s), expected ${count}`];
  };
}

export function expectRotated(resets: number) {
  return async (w: World, s: CaseState): Promise<string[]> => {
    const problems = await expectResets(resets)(w, s);
    const current = await w.currentToken();
    if (current === s.before) problems.push('AWSCURRENT was never rotated');
    return problems;
  };
}

function alertKinds(w: World): string[] {
  return w.alerts().map((a) => a.kind);
}

export function expectAlert(kind: string) {
  return (w: World, s: CaseState): void => {
    if (!alertKinds(w).includes(kind)) s.checks.push(`no ${kind} alert (got: ${alertKinds(w).join(', ') || 'none'})`);
  };
}


/** The store the core sees fails the promotion (UpdateSecretVersionStage) `count` times, then works. */
function failingPromote(count: number): (store: SecretStore) => SecretStore {
  return (store) => {
    let left = count;
    return {
      describe: (id) => store.describe(id),
      getValue: (id, ref) => store.getValue(id, ref),
      putPendingValue: (id, version, value) => store.putPendingValue(id, version, value),
      promote: async (id, to, from) => {
        if (left > 0) {
          left -= 1;
          throw new Error('InternalServiceError: the secret store is unavailable (injected)');
        }
        return store.promote(id, to, from);
      },
    };
  };
}

/** PutSecretValue fails `count` times: the wrapped store locally, the fake Secrets Manager in AWS. */
function putFails(count: number, extra: WorldOptions = {}) {
  return (engine: EngineName): WorldOptions => (engine === 'local' ? { ...extra, wrapStore: failingPuts(count, 'InternalServiceError: the secret store is unavailable (injected)') } : extra);
}

function armPutFailures(w: World, s: CaseState, count: number): void {
  if (w.aws) s.putFault = w.aws.secretsManager.failNext('PutSecretValue', count);
}

type HostBreak = 'malformed' | 'gone' | 'two-tables' | 'offline' | 'timing-out';

/** Breaks host `index` the way `how` says; `repairHost` undoes it. */
export async function breakHost(w: World, s: CaseState, index: number, how: HostBreak): Promise<void> {
  const host = w.hosts[index]?.sim;
  if (!host) throw new Error(`no host ${index}`);
  s.brokenHost = index;
  s.brokenHow = how;
  s.original = await readFile(host.configPath, 'utf8');
  switch (how) {
    case 'malformed':
      await appendFile(host.configPath, '[[runners]\n');
      return;
    case 'gone':
      await rename(host.configPath, `${host.configPath}.away`);
      return;
    case 'two-tables': {
      const table = String(s.original).slice(String(s.original).indexOf('[[runners]]'), String(s.original).indexOf('[[runners]]', String(s.original).indexOf('[[runners]]') + 1));
      await appendFile(host.configPath, `\n${table}`);
      return;
    }
    case 'offline':
      if (!w.aws) throw new Error('only AWS hosts can be offline');
      w.aws.ssm.offline.add(w.aws.instances[index]?.instanceId ?? '');
      return;
    case 'timing-out':
      if (w.aws) w.aws.ssm.stalled.add(w.aws.instances[index]?.instanceId ?? '');
      else await writeFile(`${dirname(host.configPath)}/.stall`, '');
      return;
  }
}

/** What an operator does: restores the host's config.toml from before the fault, brings the host back. */
export async function repairHost(w: World, s: CaseState): Promise<void> {
  const index = Number(s.brokenHost);
  const host = w.hosts[index]?.sim;
  if (!host) return;
  switch (s.brokenHow as HostBreak) {
    case 'offline':
      w.aws?.ssm.offline.delete(w.aws.instances[index]?.instanceId ?? '');
      return;
    case 'timing-out':
      if (w.aws) w.aws.ssm.stalled.delete(w.aws.instances[index]?.instanceId ?? '');
      else await rm(`${dirname(host.configPath)}/.stall`, { force: true });
      return;
    case 'gone':
      await rename(`${host.configPath}.away`, host.configPath);
      return;
    default:
      await writeFile(host.configPath, String(s.original));
  }
}

export function expectHostAlerted(w: World, s: CaseState): void {
  const index = Number(s.brokenHost);
  const names = w.hosts[index]?.alertNames ?? [];
  const named = w.alerts().some((a) => a.kind === 'host-missed' && a.hosts.some((h) => names.includes(h.host)));
  if (!named) s.checks.push(`no host-missed alert names host ${index + 1}`);
}

/** gitlab-runner on host `index` rotated its own token: GitLab issued it a new one, only its config.toml has it. */
export async function selfRotate(w: World, s: CaseState, index: number): Promise<void> {
  const host = w.hosts[index]?.sim;
  const old = await w.currentToken();
  if (!host || !old) throw new Error('no host or no current token');
  const response = await fetch(`${w.simulator.url}/api/v4/runners/reset_authentication_token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: old }),
  });
  const { token } = (await response.json()) as { token: string };
  const text = await readFile(host.configPath, 'utf8');
  await writeFile(host.configPath, text.replace(old, token));
  s.selfRotated = token;
}

/**
 * Host `index` broken the way `how` says before a rotation: the rotation goes on, that host is named in a
 * host-missed alert (and `check` may look further), the repair undoes the break, and the next scan
 * repairs the host with the one token minted.
 */
function brokenHostCase(index: number, how: HostBreak, check?: (w: World, s: CaseState) => void): CaseDef {
  return {
    inject: async (w, s) => {
      await remember(w, s);
      await breakHost(w, s, index, how);
    },
    run: async (w, s) => {
      await w.rotate();
      expectHostAlerted(w, s);
      check?.(w, s);
    },
    repair: repairHost,
    expect: expectRotated(1),
  };
}

/** The hook's steps 1..k, a crash, then Secrets Manager retries step k (it never heard back) and goes on. */
function crashAfter(k: number): CaseDef {
  return {
    run: async (w, s) => {
      const versionId = await w.begin();
      for (const step of ROTATION_STEPS.slice(0, k)) {
        if (!(await w.step(step, versionId)).ok) s.checks.push(`${step} failed before the crash`);
      }
      w.crash();
      for (const step of ROTATION_STEPS.slice(k - 1)) {
        if (!(await w.step(step, versionId)).ok) s.checks.push(`${step} failed after the crash`);
      }
    },
    expect: expectRotated(1),
  };
}

const STEP_NAMES: Record<number, RotationStep> = { 1: 'createSecret', 2: 'setSecret', 3: 'testSecret', 4: 'finishSecret' };

// ------------------------------------------------------------------------------------ replace strategy

/** Before a replace case: the runner id, and where the hosts' job requests stand. */
async function rememberReplace(w: World, s: CaseState): Promise<void> {
  await remember(w, s);
  s.runnersBefore = w.simulator.runnerCount;
  s.pollsFrom = w.daemons?.mark() ?? 0;
}

/** Polls of the hosts' gitlab-runners since rememberReplace in which a host had no runner GitLab accepted. */
function offlinePolls(w: World, s: CaseState): number {
  return w.daemons?.offlineSince(Number(s.pollsFrom ?? 0)).offline ?? 0;
}

/** The old runner is still current and still works, everywhere (a replacement stopped in time). */
async function oldRunnerKept(w: World, s: CaseState, label: string): Promise<void> {
  if ((await w.currentRunnerId()) !== w.runnerId) s.checks.push(`${label}: AWSCURRENT no longer names runner ${w.runnerId}`);
  if (!w.simulator.runner(w.runnerId)) s.checks.push(`${label}: runner ${w.runnerId} was deleted`);
  await nothingMadeWorse(w, s, label);
}

/** One new runner, current on every host with no other table of this GitLab, the old one deleted, no reset, no host offline. */
function expectReplaced() {
  return async (w: World, s: CaseState): Promise<string[]> => {
    const problems: string[] = [];
    const current = await w.currentRunnerId();
    if (current === w.runnerId) problems.push('AWSCURRENT still names the old runner');
    if (w.simulator.runner(w.runnerId)) problems.push(`old runner ${w.runnerId} still exists in GitLab`);
    // One created, one deleted: a runner left over from a failed attempt would show here.
    const runners = w.simulator.runnerCount - Number(s.runnersBefore);
    if (runners !== 0) problems.push(`GitLab has ${runners} runner(s) more than before the replacement`);
    if (w.resets() !== 0) problems.push(`GitLab reset a token ${w.resets()} time(s); replace must not`);
    const offline = offlinePolls(w, s);
    if (offline > 0) problems.push(`in ${offline} poll(s) a host had no runner GitLab accepted: an outage`);
    for (const host of w.hosts) {
      const ids = await managedRunnerIds(host.sim);
      if (ids.length !== 1 || ids[0] !== current) problems.push(`host ${host.sim.name} has runner tables ${ids.join(', ')}, expected only ${current}`);
    }
    return problems;
  };
}

function expectReplaceAlert(w: World, s: CaseState, hostIndex: number): void {
  const names = w.hosts[hostIndex]?.alertNames ?? [];
  const alert = w.alerts().find((a) => a.kind === 'replacement-stalled');
  if (!alert) s.checks.push('no replacement-stalled alert');
  else if (!alert.hosts.some((h) => names.includes(h.host))) s.checks.push(`the replacement-stalled alert does not name host ${names[0]}`);
}

/** The hook's steps 1..k of a replace rotation, a crash, then the retry of step k and the rest. */
function replaceCrashAfter(k: number): CaseDef {
  return { ...crashAfter(k), options: { replace: true }, inject: rememberReplace, expect: expectReplaced() };
}

export const REPLACE_CASES: FaultCase[] = [
  ...both('A replace rotation moves every host to a new runner with the same settings, no host ever without a working runner, and deletes the old runner', {
    options: { replace: true },
    inject: rememberReplace,
    run: (w) => w.rotate(),
    expect: expectReplaced(),
  }),

  ...both('A host whose gitlab-runner never contacts GitLab as the new runner keeps the old runner, is named in a replacement-stalled alert, and the rotation finishes once it is back', {
    options: { replace: true },
    inject: async (w, s) => {
      await rememberReplace(w, s);
      w.daemons?.stop(w.hosts[1]!.sim.name);
    },
    run: async (w, s) => {
      await w.rotate();
      await oldRunnerKept(w, s, 'after the stalled replacement');
      expectReplaceAlert(w, s, 1);
    },
    repair: async (w) => {
      w.daemons?.resume(w.hosts[1]!.sim.name);
      await w.resume();
    },
    expect: expectReplaced(),
  }),

  ...both('A host whose config.toml is malformed refuses the new runner, keeps the old one, is named in a replacement-stalled alert, and the rotation finishes once it is fixed', {
    options: { replace: true },
    inject: async (w, s) => {
      await rememberReplace(w, s);
      await breakHost(w, s, 0, 'malformed');
    },
    run: async (w, s) => {
      await w.rotate();
      if ((await w.currentRunnerId()) !== w.runnerId) s.checks.push('AWSCURRENT moved although a host refused the new runner');
      if (!w.simulator.runner(w.runnerId)) s.checks.push('the old runner was deleted although a host refused the new one');
      expectReplaceAlert(w, s, 0);
    },
    repair: async (w, s) => {
      await repairHost(w, s);
      await w.resume();
    },
    expect: expectReplaced(),
  }),

  ...both('POST /user/runners answering 500 changes nothing, and the retried rotation replaces the runner', {
    options: { replace: true },
    inject: async (w, s) => {
      await rememberReplace(w, s);
      w.simulator.faults.failNext(1, { status: 500, path: '/user/runners' });
    },
    run: async (w, s) => {
      await w.rotate();
      await oldRunnerKept(w, s, 'after the 500');
      await w.resume();
    },
    expect: expectReplaced(),
  }),

  ...[1, 2, 3, 4].flatMap((k) =>
    both(`The function dying after ${STEP_NAMES[k]} of a replace rotation and the step running again creates one runner and deletes the old one`, replaceCrashAfter(k)),
  ),
];

// --------------------------------------------------------------------------------------------- cases

export const FAULT_CASES: FaultCase[] = [
  ...both('GitLab answering 500 to every reset attempt changes nothing, and the retried rotation succeeds', {
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.faults.failNext(ADAPTER_ATTEMPTS, { status: 500, path: RESET_PATH });
    },
    run: async (w, s) => {
      await w.rotate();
      await nothingMadeWorse(w, s, 'after the 500s');
      await w.resume();
    },
    expect: expectRotated(1),
  }),

  ...both('A reset that times out on every attempt changes nothing, and the retried rotation succeeds', {
    options: { gitlabTimeoutMs: 300 },
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.faults.hangNext(ADAPTER_ATTEMPTS, { path: RESET_PATH });
    },
    run: async (w, s) => {
      await w.rotate();
      await nothingMadeWorse(w, s, 'after the timeouts');
      await w.resume();
    },
    expect: expectRotated(1),
  }),

  ...both('A reset that times out once is retried by the adapter and mints one token', {
    options: { gitlabTimeoutMs: 300 },
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.faults.hangNext(1, { path: RESET_PATH });
    },
    run: (w) => w.rotate(),
    expect: expectRotated(1),
  }),

  ...both('A reset GitLab applied but whose reply was lost is recovered by id with the admin token', {
    options: { adminToken: true },
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.faults.dropNextReset();
    },
    run: (w) => w.rotate(),
    expect: expectRotated(2),
  }),

  ...both('A reset whose reply was lost, with no admin token, raises admin-token-missing and recovers once one is configured', {
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.faults.dropNextReset();
    },
    run: async (w, s) => {
      await w.rotate();
      expectAlert('admin-token-missing')(w, s);
    },
    repair: async (w) => {
      await w.configureAdminToken();
      await w.resume();
    },
    expect: expectRotated(2),
  }),

  ...both('PutSecretValue failing three times is retried until the new token is stored', {
    options: putFails(3),
    inject: async (w, s) => {
      await remember(w, s);
      armPutFailures(w, s, 3);
    },
    run: (w) => w.rotate(),
    expect: expectRotated(1),
  }),

  ...both('PutSecretValue failing until the deadline raises rotation-failed, and the retried step recovers by id with the admin token', {
    options: putFails(1_000_000, { adminToken: true, lambdaRemainingMs: 30_000 }),
    inject: async (w, s) => {
      await remember(w, s);
      armPutFailures(w, s, 1_000_000);
    },
    run: async (w, s) => {
      await w.rotate();
      expectAlert('rotation-failed')(w, s);
      (s.putFault as { disarm(): void } | undefined)?.disarm();
      w.crash();
      await w.resume();
    },
    expect: expectRotated(2),
  }),

  ...[1, 2, 3, 4].flatMap((k) =>
    both(`The function dying after ${STEP_NAMES[k]} and the step running again finishes the rotation with one token`, crashAfter(k)),
  ),

  ...both('The promotion failing once after the rotation was recorded is finished by the re-attempt, and a host that missed is still alerted', {
    options: (engine) => (engine === 'local' ? { wrapStore: failingPromote(1) } : {}),
    inject: async (w, s) => {
      await remember(w, s);
      await breakHost(w, s, 2, 'malformed');
      w.aws?.secretsManager.failNext('UpdateSecretVersionStage', 1);
    },
    run: async (w, s) => {
      await w.rotate();
      if ((await w.currentToken()) !== s.before) s.checks.push('AWSCURRENT moved although the promotion failed');
      await w.resume();
      expectHostAlerted(w, s);
    },
    repair: repairHost,
    expect: expectRotated(1),
  }),

  ...both('Every step of the rotation run twice mints one token and pushes it once', {
    inject: remember,
    run: async (w, s) => {
      const versionId = await w.begin();
      for (const step of ROTATION_STEPS) {
        for (let run = 0; run < 2; run += 1) if (!(await w.step(step, versionId)).ok) s.checks.push(`${step} run ${run + 1} failed`);
      }
    },
    expect: expectRotated(1),
  }),

  only('aws', 'SSM throttling SendCommand twice and ListCommandInvocations three times is waited out and every host is updated', {
    inject: async (w, s) => {
      await remember(w, s);
      w.aws?.ssm.throttleNext('SendCommand', 2);
      w.aws?.ssm.throttleNext('ListCommandInvocations', 3);
    },
    run: async (w, s) => {
      await w.rotate();
      if (w.alerts().length > 0) s.checks.push(`alerts after a throttled push: ${alertKinds(w).join(', ')}`);
    },
    expect: expectRotated(1),
  }),

  only('aws', 'SSM throttling every SendCommand names the hosts in a host-missed alert, and the next scan re-pushes the token', {
    inject: async (w, s) => {
      await remember(w, s);
      s.throttle = w.aws?.ssm.throttleNext('SendCommand', 1_000);
    },
    run: async (w, s) => {
      await w.rotate();
      expectAlert('host-missed')(w, s);
    },
    repair: async (_w, s) => (s.throttle as { disarm(): void }).disarm(),
    expect: expectRotated(1),
  }),

  // The local engine has no offline host apart from a config.toml it cannot reach: that is the next case.
  only('aws', 'A host that is offline is named in a host-missed alert, and the next scan repairs it without a new rotation', brokenHostCase(1, 'offline')),

  ...both('A host whose config.toml is gone is named in a host-missed alert, and the next scan repairs it', brokenHostCase(0, 'gone')),

  ...both('A host whose update never finishes is reported timed out, named in an alert, and repaired by the next scan', {
    options: (engine) => (engine === 'local' ? { stallableHosts: true } : { lambdaRemainingMs: 60_000 }),
    ...brokenHostCase(2, 'timing-out', (w, s) => {
      const statuses = w.alerts().flatMap((a) => a.hosts.map((h) => h.status));
      if (!statuses.includes('timed-out')) s.checks.push(`the stalled host is not reported timed-out (${statuses.join(', ')})`);
    }),
  }),

  ...both('The updater refusing a config.toml with two tables for the runner fails only that host, which is alerted and repaired', brokenHostCase(1, 'two-tables')),

  ...both('A malformed config.toml on one host is left untouched, named in an alert, and repaired by the next scan once fixed', {
    inject: async (w, s) => {
      await remember(w, s);
      await breakHost(w, s, 2, 'malformed');
    },
    run: async (w, s) => {
      const host = w.hosts[2]?.sim;
      const broken = host ? await readFile(host.configPath, 'utf8') : '';
      await w.rotate();
      expectHostAlerted(w, s);
      if (host && (await readFile(host.configPath, 'utf8')) !== broken) s.checks.push('the malformed config.toml was changed');
    },
    repair: repairHost,
    expect: expectRotated(1),
  }),

  ...both('Rotate-now racing the scheduled scan mints exactly one token, and the refused one is reported', {
    inject: remember,
    run: async (w, s) => {
      await Promise.all([w.rotate(), w.scan()]);
      const said = [...w.outputLines(), ...w.errors.map((e) => (e instanceof Error ? e.message : String(e)))].join('\n');
      const refused = /in progress|isn't complete|Another rotation/i.test(said) || alertKinds(w).includes('rotation-stuck');
      if (!refused) s.checks.push('the refused rotation was neither reported nor alerted');
    },
    expect: expectRotated(1),
  }),

  ...both('A host that rotated its own token is brought back with every other host by a reset by id with the admin token', {
    options: { adminToken: true },
    inject: async (w, s) => {
      await selfRotate(w, s, 0);
      await remember(w, s);
    },
    run: (w) => w.rotate(),
    expect: async (w, s) => {
      const problems = await expectRotated(1)(w, s);
      if (w.simulator.accepts(String(s.selfRotated))) problems.push('the self-rotated token still works beside AWSCURRENT');
      return problems;
    },
  }),

  ...both('An expired token is reset by id with the admin token and every host converges', {
    options: { adminToken: true },
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.expireToken(w.runnerId);
    },
    run: (w) => w.rotate(),
    expect: expectRotated(1),
  }),

  ...both('An expired token with no admin token raises admin-token-missing with the fix, makes nothing worse, and recovers once one is configured', {
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.expireToken(w.runnerId);
    },
    run: async (w, s) => {
      await w.rotate();
      expectAlert('admin-token-missing')(w, s);
      const alert = w.alerts().find((a) => a.kind === 'admin-token-missing');
      if (alert && !/admin token|access token/i.test(alert.nextStep)) s.checks.push('the alert does not say how to fix it');
      if ((await w.currentToken()) !== s.before) s.checks.push('AWSCURRENT changed');
      if (w.tokenResets() !== Number(s.resetsBefore)) s.checks.push('GitLab reset the token without an admin token');
      for (const host of await w.hostStates()) if (host.token !== s.before) s.checks.push(`host ${host.name} was changed`);
    },
    repair: async (w) => {
      await w.configureAdminToken();
      await w.resume();
    },
    expect: expectRotated(1),
  }),

  ...both('A runner with a legacy token is rotated like any other and every host converges', {
    options: { legacyToken: true },
    inject: remember,
    run: (w) => w.rotate(),
    expect: expectRotated(1),
  }),

  only('aws', 'GitLab answering 410 Gone to the reset of a legacy runner changes nothing and raises rotation-failed', {
    options: { legacyToken: true },
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.faults.failNext(1_000, { status: 410, path: RESET_PATH });
    },
    run: async (w, s) => {
      await w.rotate();
      await nothingMadeWorse(w, s, 'after the 410');
      expectAlert('rotation-failed')(w, s);
    },
    expect: expectResets(0),
  }),

  ...both('A rate limit of one request a minute is waited out and the rotation succeeds', {
    options: { simulatorOnClock: true, gitlabTimeoutMs: 30_000 },
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.setRateLimit({ requestsPerMinute: 1 });
    },
    run: async (w) => {
      await w.rotate();
      w.simulator.setRateLimit(null);
    },
    expect: expectRotated(1),
  }),

  ...both('A storm of 429s on every reset attempt fails before any reset, and the retried rotation succeeds', {
    inject: async (w, s) => {
      await remember(w, s);
      w.simulator.faults.failNext(ADAPTER_ATTEMPTS, { status: 429, path: RESET_PATH, retryAfterSeconds: 1 });
    },
    run: async (w, s) => {
      await w.rotate();
      await nothingMadeWorse(w, s, 'after the 429s');
      await w.resume();
    },
    expect: expectRotated(1),
  }),
  ...REPLACE_CASES,
];
