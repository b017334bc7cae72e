/**
 * One runner, its three hosts and the GitLab simulator, behind one interface for both engines, so that the
 * fault matrix can drive a rotation, a crash, a scan or a race the same way in each and judge the outcome
 * with one verdict. Everything below the interface is the real product wiring:
 * - local: the local engine over the rotation harness (file store, file ledger, bash updater), driven as the
 *   CLI drives it (`rotator rotate` = rotateRunners, `rotator scan` = scanLocalFleet), alerts de-duplicated
 *   in the state folder and printed;
 * - aws: the AWS engine over the AWS harness (Secrets Manager, SSM, DynamoDB and SNS faked at the SDK
 *   boundary), the rotation hook and the scanner as Lambda handlers, and Secrets Manager's side played
 *   here: RotateSecret opens a version and runs the hook's four steps, stopping at the first that throws;
 *   a failed step becomes a RotationFailed event that the notify function turns into an alert.
 */
import { randomUUID } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { createHandler as createNotifyHandler } from '../../functions/notify.ts';
import { createHandler as createRotationHandler } from '../../functions/rotate-secret.ts';
import { createHandler as createScanHandler } from '../../functions/scan-expiry.ts';
import { createHandler as createScanWorker } from '../../functions/scan-runners.ts';
import { GitLabAdapter, type GitLabAdapterOptions } from '../../src/adapters/gitlab/gitlab.ts';
import { HOST_UPDATER_PATH, LocalFleet } from '../../src/adapters/local/local-fleet.ts';
import { createAwsCli, rotateAws } from '../../src/cli/aws-commands.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { rotateRunners } from '../../src/cli/rotate-command.ts';
import { scanLocalFleet } from '../../src/cli/scan-command.ts';
import { alertAfterRotationStep } from '../../src/core/alerting.ts';
import type { Alert } from '../../src/core/alerts.ts';
import type { SecretStore } from '../../src/core/ports.ts';
import { raiseAlert, type AlertDeps } from '../../src/core/raise-alert.ts';
import { isOpenRotation, openRotationVersionId } from '../../src/core/rotation-guards.ts';
import { runRotationStep } from '../../src/core/rotation-steps.ts';
import { parseSecretValue } from '../../src/core/secret-value.ts';
import type { RotationStep } from '../../src/core/types.ts';
import { ROTATION_STEPS } from '../../src/core/types.ts';
import { createAwsEngine, type AwsEngine } from '../../src/engines/aws-engine.ts';
import { createLocalEngine, type LocalEngine } from '../../src/engines/local-engine.ts';
import type { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { pollForJobs, type SimulatedHost } from '../../src/simulator/simulated-fleet.ts';
import type { RunnerDaemons } from '../../src/simulator/runner-daemons.ts';
import { RUNNER as AWS_RUNNER, startAwsHarness, type AwsHarness } from '../support/aws-harness.ts';
import { startHarness, type Harness } from '../support/rotation-harness.ts';

export type EngineName = 'local' | 'aws';

/** What a case may ask of the world it runs in. */
export interface WorldOptions {
  adminToken?: boolean;
  legacyToken?: boolean;
  /** The simulator runs on the engine's clock: a rate-limit window passes when the code waits it out. */
  simulatorOnClock?: boolean;
  /** GitLab requests time out after this (the adapter's requestTimeoutMs); default the adapter's 30 s. */
  gitlabTimeoutMs?: number;
  /** local: the secret store the core sees, over the real one (faults in PutSecretValue and the like). */
  wrapStore?: (store: SecretStore) => SecretStore;
  /** local: hosts whose folder holds `.stall` run an updater that never finishes; the fleet times out at 1.5 s. */
  stallableHosts?: boolean;
  /** aws: the Lambda's remaining time at each invocation (default the harness's 300 s). */
  lambdaRemainingMs?: number;
  /** The runner rotates by replacement (strategy `replace`, an access token, a gitlab-runner polling on each host). */
  replace?: boolean;
}

/** A host as the verdict sees it: the simulated host and the names an alert may use for it. */
export interface WorldHost {
  sim: SimulatedHost;
  /** local: the host name; aws: the instance id (or the tag target, which stands for every host). */
  alertNames: string[];
}

export interface HostState {
  name: string;
  token: string | undefined;
  accepted: boolean;
  problem?: string;
}

export interface World {
  engine: EngineName;
  runnerName: string;
  runnerId: number;
  simulator: GitLabSimulator;
  hosts: WorldHost[];
  /** Every error a rotation step, a scan or a CLI command threw or printed. */
  errors: unknown[];
  /** The harness underneath, for faults only one engine has. */
  local?: Harness;
  aws?: AwsHarness;
  /** With `replace`: the gitlab-runner of every host, polling GitLab with what its config.toml holds. */
  daemons?: RunnerDaemons;
  /** The runner AWSCURRENT names now (a replacement changes it). */
  currentRunnerId(): Promise<number | undefined>;
  /** Every line the CLI commands printed (stdout and stderr). */
  outputLines(): string[];
  /** How many times GitLab reset the runner's token (applied resets only, lost replies included). */
  tokenResets(): number;
  /** `rotator rotate NAME` / `aws secretsmanager rotate-secret` (then Secrets Manager runs the hook). */
  rotate(): Promise<void>;
  /** RotateSecret / beginRotation alone: the version id the hook will fill. */
  begin(): Promise<string>;
  /** One invocation of the rotation hook for `versionId` (AWS: the Lambda, alerting included; local: the core step and its alerting). */
  step(step: RotationStep, versionId: string): Promise<{ ok: boolean; error?: unknown }>;
  /** Secrets Manager re-attempting the open rotation (AWS), `rotator rotate` resuming it (local). */
  resume(): Promise<void>;
  /** The process or Lambda container dies: every in-memory part is built again over the same state. */
  crash(): void;
  /** `rotator scan` / the scheduled scan Lambda (and any rotation it starts). */
  scan(): Promise<void>;
  /** The token AWSCURRENT holds now. */
  currentToken(): Promise<string | undefined>;
  /** The version AWSPENDING sits on (not AWSCURRENT), when a rotation is open. */
  openVersion(): Promise<string | undefined>;
  /** Every alert sent so far (local: the console sink's; aws: published to SNS). */
  alerts(): Alert[];
  /** What each host's config.toml holds, and whether GitLab accepts it (a job request, as gitlab-runner polls). */
  hostStates(): Promise<HostState[]>;
  /** Every text the run produced: events, log lines, alert text, CLI output, error dumps. */
  capturedStreams(): unknown[];
  /** Every token known to exist: the fleet's, every stored version, every token the simulator issued, the admin token. */
  knownTokens(): Promise<string[]>;
  /** Resets GitLab answered (by token and by id). */
  resets(): number;
  /** Turns the admin token on for later runs (it exists in GitLab; the service did not know it). */
  configureAdminToken(): Promise<void>;
  close(): Promise<void>;
}

const SIX_HOURS = 6 * 3_600_000;
const RESET_ROUTES = /reset_authentication_token/;

/** Every token the simulator issues from now on (resets by token, by id, and revocations). */
function recordIssuedTokens(simulator: GitLabSimulator): string[] {
  const issued: string[] = [];
  const state = (simulator as unknown as { state: { resetToken(id: number): { token: string } | undefined } }).state;
  const resetToken = state.resetToken.bind(state);
  state.resetToken = (id) => {
    const reply = resetToken(id);
    if (reply) issued.push(reply.token);
    return reply;
  };
  return issued;
}

function resetCount(simulator: GitLabSimulator): number {
  return Object.entries(simulator.stats.byRoute)
    .filter(([route]) => RESET_ROUTES.test(route))
    .reduce((n, [, c]) => n + c, 0);
}

/** What a host's config.toml holds for `runnerId` (the runner AWSCURRENT names), and whether GitLab accepts it. */
async function hostState(sim: SimulatedHost, url: string, runnerId: number): Promise<HostState> {
  let text: string;
  try {
    text = await readFile(sim.configPath, 'utf8');
  } catch (error) {
    return { name: sim.name, token: undefined, accepted: false, problem: `config.toml unreadable: ${(error as NodeJS.ErrnoException).code ?? 'error'}` };
  }
  let document: { runners?: Array<Record<string, unknown>> };
  try {
    document = parse(text) as typeof document;
  } catch {
    return { name: sim.name, token: undefined, accepted: false, problem: 'config.toml is not valid TOML' };
  }
  const table = document.runners?.find((r) => r.id === runnerId);
  const token = typeof table?.token === 'string' ? table.token : undefined;
  if (token === undefined) return { name: sim.name, token, accepted: false, problem: `no table for runner ${runnerId}` };
  const status = await pollForJobs(url, token, sim.systemId);
  return { name: sim.name, token, accepted: status === 204 };
}

/** A bash wrapper around the host updater that never finishes on a host whose folder holds `.stall`. */
async function stallableUpdater(dir: string): Promise<string> {
  const path = join(dir, 'stallable-updater.sh');
  await writeFile(
    path,
    `#!/usr/bin/env bash
config=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "--config" ]; then config="$arg"; fi
  prev="$arg"
done
if [ -n "$config" ] && [ -f "$(dirname "$config")/.stall" ]; then exec sleep 30; fi
exec bash ${JSON.stringify(HOST_UPDATER_PATH)} "$@"
`,
  );
  await chmod(path, 0o755);
  return path;
}

// ---------------------------------------------------------------------------------------------- local

export async function localWorld(options: WorldOptions = {}): Promise<World> {
  const gitlabOptions: Omit<GitLabAdapterOptions, 'sleep'> = options.gitlabTimeoutMs ? { requestTimeoutMs: options.gitlabTimeoutMs } : {};
  const h: Harness = await startHarness({
    adminToken: options.adminToken,
    legacyToken: options.legacyToken,
    simulatorOnHarnessClock: options.simulatorOnClock,
    wrapStore: options.wrapStore,
    gitlabOptions,
    ...(options.replace ? { replace: { confirmWithinMs: 2_000 } } : {}),
  });
  const issued = recordIssuedTokens(h.simulator);
  const updaterPath = options.stallableHosts ? await stallableUpdater(h.dir) : undefined;
  const output = recordingOutput();
  const sent: Alert[] = [];
  const errors: unknown[] = [];
  const secretId = h.runner.secretId;
  let adminTokenFile: string | undefined;
  let lateAdminToken: string | undefined;

  /** The engine as the CLI would build it in a new process, over the same state folder. */
  const build = (fresh: boolean): LocalEngine => {
    const config = adminTokenFile ? { ...h.engine.config, adminTokenFile } : h.engine.config;
    const base = fresh
      ? createLocalEngine(config, {
          events: (e) => h.events.push(e),
          alertLines: (line) => h.alertLines.push(line),
          clock: h.clock,
          gitlab: new GitLabAdapter({ ...gitlabOptions, now: () => h.clock.now().getTime(), sleep: (ms) => h.clock.sleep(ms) }),
          replace: h.engine.deps.replace,
        })
      : h.engine;
    const secrets = !fresh && options.wrapStore ? h.deps.secrets : base.store;
    const fleet = updaterPath ? new LocalFleet({ secrets: base.store, clock: h.clock, updaterPath, timeoutMs: 1_500 }) : base.deps.fleet;
    const deps = { ...base.deps, secrets, fleet };
    const sink = base.alerts.sink;
    const alerts: AlertDeps = {
      ...base.alerts,
      sink: {
        publish: async (alert) => {
          sent.push(alert);
          await sink.publish(alert);
        },
      },
    };
    return { ...base, deps, alerts };
  };
  let engine = build(false);

  const runStep = async (step: RotationStep, versionId: string) => {
    const deadline = new Date(h.clock.now().getTime() + 5 * 60_000);
    try {
      const outcome = await runRotationStep(engine.deps, { step, secretId, versionId, deadline });
      await alertAfterRotationStep(engine.alerts, h.runner.name, secretId, { outcome });
      return { ok: true };
    } catch (error) {
      errors.push(error);
      await alertAfterRotationStep(engine.alerts, h.runner.name, secretId, { error });
      return { ok: false, error };
    }
  };
  const noteErrors = (from: number) => {
    for (const line of output.lines.slice(from)) if (/failed|error/i.test(line)) errors.push(line);
  };

  return {
    engine: 'local',
    runnerName: h.runner.name,
    runnerId: h.runner.runnerId,
    simulator: h.simulator,
    hosts: h.fleet.hosts.map((sim) => ({ sim, alertNames: [sim.name] })),
    errors,
    local: h,
    daemons: h.daemons,
    currentRunnerId: async () => runnerIdOf(await h.engine.store.getValue(secretId, { stage: 'AWSCURRENT' })),
    outputLines: () => [...output.lines],
    tokenResets: () => h.simulator.runner(h.runner.runnerId)?.tokenResets ?? 0,
    rotate: async () => {
      const from = output.lines.length;
      const runs = await rotateRunners(engine, [h.runner], output);
      for (const run of runs) if (run.error) errors.push(run.error);
      noteErrors(from);
    },
    begin: async () => (await h.engine.store.beginRotation(secretId, randomUUID())).versionId,
    step: runStep,
    resume: async () => {
      const from = output.lines.length;
      const runs = await rotateRunners(engine, [h.runner], output);
      for (const run of runs) if (run.error) errors.push(run.error);
      noteErrors(from);
    },
    crash: () => {
      engine = build(true);
    },
    scan: async () => {
      const from = output.lines.length;
      await scanLocalFleet(engine, output, SIX_HOURS);
      noteErrors(from);
    },
    currentToken: () => h.tokenAt({ stage: 'AWSCURRENT' }),
    openVersion: async () => openRotationVersionId(await h.engine.store.describe(secretId)) ?? undefined,
    alerts: () => [...sent],
    hostStates: async () => {
      const runnerId = runnerIdOf(await h.engine.store.getValue(secretId, { stage: 'AWSCURRENT' })) ?? h.runner.runnerId;
      return Promise.all(h.fleet.hosts.map((sim) => hostState(sim, h.fleet.url, runnerId)));
    },
    capturedStreams: () => [h.events, h.alertLines, sent, output.lines, errors],
    knownTokens: async () => [...(await h.knownTokens()), ...issued, ...(lateAdminToken ? [lateAdminToken] : [])],
    resets: () => resetCount(h.simulator),
    configureAdminToken: async () => {
      lateAdminToken = h.simulator.addAccessToken({ scopes: ['manage_runner'], admin: true });
      adminTokenFile = join(h.dir, 'admin-token-late');
      await writeFile(adminTokenFile, `${lateAdminToken}\n`, { mode: 0o600 });
      engine = build(true);
    },
    close: () => h.close(),
  };
}

// ------------------------------------------------------------------------------------------------ aws

/** The RotationFailed event EventBridge delivers to the notify function when a step of the hook throws. */
function rotationFailedEvent(secretArn: string): Record<string, unknown> {
  const time = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'AWS Service Event via CloudTrail',
    source: 'aws.secretsmanager',
    account: '123456789012',
    time,
    region: 'eu-west-1',
    resources: [],
    detail: { eventSource: 'secretsmanager.amazonaws.com', eventName: 'RotationFailed', eventTime: time, additionalEventData: { SecretId: secretArn } },
  };
}

export async function awsWorld(options: WorldOptions = {}): Promise<World> {
  const h: AwsHarness = await startAwsHarness({
    adminToken: options.adminToken,
    legacyToken: options.legacyToken,
    simulatorOnHarnessClock: options.simulatorOnClock,
    replace: options.replace,
  });
  const issued = recordIssuedTokens(h.simulator);
  const errors: unknown[] = [];
  const output = recordingOutput();
  const context = options.lambdaRemainingMs ? { ...h.context, getRemainingTimeInMillis: () => options.lambdaRemainingMs as number } : h.context;
  let adminToken: string | undefined;

  /**
   * Lambda containers: the rotation hook's, the scan dispatcher's and the scan worker's engines (each over
   * clients charged to its own role), with a GitLab client of our choosing when a case needs one.
   */
  const container = (fresh: boolean): { rotate: AwsEngine; scan: AwsEngine; worker: AwsEngine } => {
    const gitlab = options.gitlabTimeoutMs
      ? new GitLabAdapter({ requestTimeoutMs: options.gitlabTimeoutMs, now: () => h.clock.now().getTime(), sleep: (ms) => h.clock.sleep(ms) })
      : undefined;
    const admin = adminToken;
    const override = { ...(gitlab ? { gitlab } : {}), ...(admin ? { adminToken: async () => admin } : {}) };
    const withOverride = (base: AwsEngine): AwsEngine =>
      !gitlab && !admin
        ? base
        : {
            ...base,
            rotationDeps: (deadline, events, runner) => ({ ...base.rotationDeps(deadline, events, runner), ...override }),
            scanDeps: (deadline, events) => ({ ...base.scanDeps(deadline, events), ...override }),
          };
    return {
      rotate: withOverride(fresh ? createAwsEngine(h.engine.env, h.clientsAs('RotateSecret'), h.clock) : h.engine),
      scan: fresh ? createAwsEngine(h.engine.env, h.clientsAs('ScanExpiry'), h.clock) : h.scanEngine,
      worker: withOverride(fresh ? createAwsEngine(h.engine.env, h.clientsAs('ScanRunners'), h.clock, { sharedGitLabBudget: true }) : h.workerEngine),
    };
  };
  let engines = container(false);
  const hook = createRotationHandler(() => engines.rotate, h.telemetry);
  const scanHandler = createScanHandler(() => engines.scan, h.telemetry);
  const scanWorker = createScanWorker(() => engines.worker, h.telemetry);
  let scansRun = 0;
  const notifyAlerts = createAwsEngine(h.engine.env, h.clientsAs('Notify'), h.clock).alerts;
  const notify = createNotifyHandler(
    () => ({
      slack: undefined,
      fleet: h.engine.env.fleet,
      logGroupUrl: h.engine.env.logUrl,
      raise: async (alert: Alert) => {
        if (notifyAlerts) await raiseAlert(notifyAlerts, alert);
      },
    }),
    h.telemetry,
  );

  const invoke = async (step: RotationStep, versionId: string) => {
    try {
      await hook({ Step: step, SecretId: h.secretArn, ClientRequestToken: versionId }, context);
      return { ok: true };
    } catch (error) {
      errors.push(error);
      await notify(rotationFailedEvent(h.secretArn), { ...h.context, functionName: 'notify' });
      return { ok: false, error };
    }
  };
  /** Secrets Manager after RotateSecret: the four steps in turn, stopping at the first that fails. */
  const runHook = async (versionId: string) => {
    for (const step of ROTATION_STEPS) if (!(await invoke(step, versionId)).ok) return;
  };
  // Secrets Manager invokes the hook once per step and stops at the first that fails (the fake's loop).
  h.secretsManager.rotationHook = async (event) => {
    const result = await invoke(event.Step as RotationStep, event.ClientRequestToken);
    if (!result.ok) throw result.error;
  };
  const settle = async () => {
    while (h.secretsManager.rotations.length > 0) await Promise.allSettled(h.secretsManager.rotations.splice(0));
    await h.ssm.settle();
  };
  const openVersion = async () =>
    Object.entries(h.secretsManager.stages(`gitlab-runner-rotator/${AWS_RUNNER}`)).find(([, stages]) => isOpenRotation(stages))?.[0];
  const fleetText = JSON.stringify({
    runners: [{ name: AWS_RUNNER, gitlabUrl: h.simulator.url, runnerId: h.fleet.runners[0]?.id, hosts: { tag: { key: 'gitlab-runner', value: AWS_RUNNER } } }],
  });
  const tagHost = `tag:gitlab-runner=${AWS_RUNNER}`;

  return {
    engine: 'aws',
    runnerName: AWS_RUNNER,
    runnerId: h.fleet.runners[0]?.id ?? 0,
    simulator: h.simulator,
    hosts: h.fleet.hosts.map((sim, i) => ({ sim, alertNames: [h.instances[i]?.instanceId ?? sim.name, tagHost] })),
    errors,
    aws: h,
    daemons: h.daemons,
    currentRunnerId: async () => runnerIdOf(await h.store.getValue(h.secretArn, { stage: 'AWSCURRENT' })),
    outputLines: () => [...output.lines],
    tokenResets: () => h.simulator.runner(h.fleet.runners[0]?.id ?? 0)?.tokenResets ?? 0,
    rotate: async () => {
      try {
        await rotateAws(createAwsCli(fleetText, 'fleet.aws.json', h.clientsAs('Operator').secretsManager), AWS_RUNNER, output);
      } catch (error) {
        errors.push(error);
        output.err(`[${AWS_RUNNER}] rotation not started: ${(error as Error).message}`);
      }
      await settle();
    },
    begin: async () => {
      // RotateSecret alone: the case invokes the steps itself.
      const hookFn = h.secretsManager.rotationHook;
      h.secretsManager.rotationHook = undefined;
      try {
        return await h.store.startRotation(h.secretArn);
      } finally {
        h.secretsManager.rotationHook = hookFn;
      }
    },
    step: async (step, versionId) => {
      const result = await invoke(step, versionId);
      await h.ssm.settle();
      return result;
    },
    resume: async () => {
      const versionId = await openVersion();
      if (versionId) await runHook(versionId);
      await settle();
    },
    crash: () => {
      engines = container(true);
    },
    scan: async () => {
      try {
        // A later scheduled scan comes the fleet file's scanEveryHours after the last one (a scan within half
        // of that leaves the runner to the one before: dynamodb-scan-claims.ts). The first one starts at once,
        // so that it races what the case runs beside it.
        if (scansRun++ > 0) await h.clock.sleep(6 * 3_600_000);
        await scanHandler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, { ...context, functionName: 'scan-expiry', awsRequestId: randomUUID() });
        // The queue's event source: each message to a worker, as long as there are any (hand-ons included).
        for (let n = 0; n < 100; n += 1) {
          const delivered = await h.queue.deliver(async (event) => {
            const reply = await scanWorker(event, { ...context, functionName: 'scan-runners' });
            for (const failure of reply.batchItemFailures) errors.push(new Error(`scan batch ${failure.itemIdentifier} failed`));
            return reply;
          });
          if (delivered) continue;
          // A hand-on delayed until the budget has room: wait for it on the harness clock, as SQS would.
          const next = h.queue.nextVisibleAtMs();
          if (next === undefined) break;
          await h.clock.sleep(Math.max(1, next - h.clock.now().getTime()));
        }
      } catch (error) {
        errors.push(error);
      }
      await settle();
    },
    currentToken: async () => {
      const raw = await h.store.getValue(h.secretArn, { stage: 'AWSCURRENT' });
      return raw === undefined ? undefined : parseSecretValue(raw, 'AWSCURRENT').token;
    },
    openVersion,
    alerts: () => [...h.published],
    hostStates: async () => {
      const runnerId = runnerIdOf(await h.store.getValue(h.secretArn, { stage: 'AWSCURRENT' })) ?? h.fleet.runners[0]?.id ?? 0;
      return Promise.all(h.fleet.hosts.map((sim) => hostState(sim, h.fleet.url, runnerId)));
    },
    capturedStreams: () => [h.logLines.join(''), h.published, output.lines, errors],
    knownTokens: async () => [...h.knownTokens(), ...issued, ...(adminToken ? [adminToken] : [])],
    resets: () => resetCount(h.simulator),
    configureAdminToken: async () => {
      adminToken = h.simulator.addAccessToken({ scopes: ['manage_runner'], admin: true });
      engines = container(true);
    },
    close: async () => {
      await settle();
      await h.close();
    },
  };
}

function runnerIdOf(raw: string | undefined): number | undefined {
  return raw === undefined ? undefined : parseSecretValue(raw, 'AWSCURRENT').runnerId;
}

export function startWorld(engine: EngineName, options: WorldOptions = {}): Promise<World> {
  return engine === 'local' ? localWorld(options) : awsWorld(options);
}
