import type { CommandInvocation, SendCommandCommandInput, SSMClient } from '@aws-sdk/client-ssm';
import { InvalidInputError } from '../../core/errors.ts';
import type { Clock, Delivery, Fleet } from '../../core/ports.ts';
import type { HostResult, HostStatus, ManagedRunner } from '../../core/types.ts';
import { interpretUpdaterRun } from '../../core/updater-output.ts';
import { EXECUTION_TIMEOUT_PARAMETER, hostRemoveCommandParameters, hostUpdateCommandParameters } from './host-update-document.ts';
import { MAX_COMMENT_LENGTH, MAX_DELIVERY_TIMEOUT_SECONDS, MIN_DELIVERY_TIMEOUT_SECONDS, runOnHosts, splitPluginOutput, type CommandPacing } from './ssm-command.ts';

export { MAX_INSTANCE_IDS_PER_COMMAND, splitPluginOutput } from './ssm-command.ts';

export interface SsmFleetOptions {
  /**
   * Build it once per Lambda with `ssmClient()` (sdk-clients.ts: adaptive retries): SSM answers a burst of calls with
   * ThrottlingException "Rate exceeded" (aws/aws-sdk-js-v3#4350, boto/botocore#993). What still comes
   * through while polling is waited out here.
   */
  ssm: SSMClient;
  /** The name (or ARN) of the document buildHostUpdateDocument() made. */
  documentName: string;
  clock: Clock;
  /** Stop waiting for results by then (the Lambda's remaining time less a margin). */
  deadline: () => Date;
  /** SendCommand MaxConcurrency: a count or a percentage. */
  maxConcurrency: string;
  /** SendCommand MaxErrors. Use '100%' (the default config): see push. */
  maxErrors: string;
  /** How long the updater may run on a host before SSM reports Execution Timed Out. */
  executionTimeoutSeconds: number;
  /** Default 2000. */
  pollIntervalMs?: number;
}

/**
 * The AWS engine's fleet: one SSM Run Command of the host update document per runner (per 50 instance
 * ids), then ListCommandInvocations until every host has a terminal result or the deadline passes.
 * Hosts fetch the token themselves by secret ARN and version: this adapter never has it, so nothing it
 * sends, logs, returns or throws can hold it.
 */
export class SsmFleet implements Fleet {
  private readonly pacing: CommandPacing;

  constructor(private readonly options: SsmFleetOptions) {
    this.pacing = { ssm: options.ssm, clock: options.clock, pollIntervalMs: options.pollIntervalMs ?? 2000, remainingMs: () => this.remainingMs() };
    if (!new RegExp(EXECUTION_TIMEOUT_PARAMETER.allowedPattern).test(String(options.executionTimeoutSeconds))) {
      throw new InvalidInputError('ssm.executionTimeoutSeconds', `must match ${EXECUTION_TIMEOUT_PARAMETER.allowedPattern}`);
    }
  }

  async push(runner: ManagedRunner, delivery: Delivery, onResult?: (result: HostResult) => void): Promise<HostResult[]> {
    const what = delivery.addFromRunnerId === undefined ? `version ${delivery.versionId}` : `add #${runner.runnerId} from #${delivery.addFromRunnerId}`;
    return this.run(runner, () => hostUpdateCommandParameters(delivery, runner), `rotator: runner ${runner.name} (#${runner.runnerId}) ${what}`, onResult);
  }

  async remove(runner: ManagedRunner, removal: { secretId: string; versionId: string }, onResult?: (result: HostResult) => void): Promise<HostResult[]> {
    return this.run(runner, () => hostRemoveCommandParameters(removal, runner), `rotator: runner ${runner.name} remove #${runner.runnerId}`, onResult);
  }

  private async run(runner: ManagedRunner, parameters: () => Record<string, string[]>, comment: string, onResult?: (result: HostResult) => void): Promise<HostResult[]> {
    const hosts = runner.hosts;
    if (hosts.kind === 'config-files') {
      throw new InvalidInputError(`runner ${runner.name}`, 'config-file hosts are updated by the local engine, not through SSM');
    }
    const request: Omit<SendCommandCommandInput, 'InstanceIds' | 'Targets'> = {
      DocumentName: this.options.documentName,
      // The content the last deploy wrote, whether or not the stack made that version the default.
      DocumentVersion: '$LATEST',
      Parameters: {
        ...parameters(),
        [EXECUTION_TIMEOUT_PARAMETER.name]: [String(this.options.executionTimeoutSeconds)],
      },
      MaxConcurrency: this.options.maxConcurrency,
      // The old token died when GitLab issued the new one: a host that is not updated is offline for
      // jobs anyway, so SSM must try every host however many fail before it ('100%'). A lower value
      // would make SSM stop sending (invocations "Terminated") and strand the rest.
      MaxErrors: this.options.maxErrors,
      TimeoutSeconds: this.deliveryTimeoutSeconds(),
      Comment: comment.slice(0, MAX_COMMENT_LENGTH),
    };

    const result = (host: string, fields: Omit<HostResult, 'host' | 'finishedAt'>): HostResult => ({ host, ...fields, finishedAt: this.options.clock.now().toISOString() });
    const failure = (host: string, status: HostStatus, detail: string): HostResult => result(host, { status, systemId: null, detail });
    const run = await runOnHosts<HostResult>(this.pacing, request, hosts, {
      notSent: (host, error) => failure(host, 'undeliverable', `SendCommand failed: ${error}`),
      finished: (id, invocation) => {
        const verdict = invocationVerdict(invocation, this.options.executionTimeoutSeconds);
        return verdict && result(id, verdict);
      },
      noTarget: (tagHost, atDeadline) => failure(tagHost, 'undeliverable', atDeadline ? 'no instance carries this tag (none found before the deadline)' : 'no instance carries this tag'),
      waitedOut: (host) => failure(host, 'timed-out', 'no result before the deadline'),
      onResult,
    });
    return run.results;
  }

  /**
   * SendCommand TimeoutSeconds, the delivery timeout ("if this time is reached and the command hasn't
   * already started running, it won't run"): what is left before the deadline less the execution
   * timeout, so a host reached late still reports in time. It also keeps a host that comes back much
   * later from installing this version after a newer one (the scan re-pushes the current one instead).
   */
  private deliveryTimeoutSeconds(): number {
    const seconds = Math.floor(this.remainingMs() / 1000) - this.options.executionTimeoutSeconds;
    return Math.min(Math.max(seconds, MIN_DELIVERY_TIMEOUT_SECONDS), MAX_DELIVERY_TIMEOUT_SECONDS);
  }

  private remainingMs(): number {
    return this.options.deadline().getTime() - this.options.clock.now().getTime();
  }
}

type Verdict = { status: HostStatus; systemId: string | null; detail: string };

/**
 * The HostResult fields for a terminal invocation, or null while it is still Pending, In Progress,
 * Delayed or Cancelling. StatusDetails is finer than Status (SDK docs of CommandInvocation.StatusDetails:
 * "Delivery Timed Out", "Execution Timed Out", "Undeliverable", "Terminated" are terminal), so it is
 * read first.
 */
export function invocationVerdict(invocation: CommandInvocation, executionTimeoutSeconds: number): Verdict | null {
  const details = (invocation.StatusDetails ?? '').replace(/\s+/g, '');
  const failure = (status: HostStatus, detail: string): Verdict => ({ status, systemId: null, detail });
  switch (details) {
    case 'Undeliverable':
      return failure('undeliverable', 'SSM could not deliver the command (Undeliverable): the instance is stopped, not a managed node, or its agent does not answer');
    case 'DeliveryTimedOut':
      return failure('undeliverable', 'the command was not delivered before the delivery timeout (Delivery Timed Out)');
    case 'Terminated':
      return failure('undeliverable', 'SSM stopped sending the command because MaxErrors was reached (Terminated)');
    case 'ExecutionTimedOut':
      return failure('timed-out', `the host updater did not finish within ${executionTimeoutSeconds} s (Execution Timed Out)`);
    case 'Cancelled':
      return failure('failed', 'the command was cancelled before it finished (Cancelled)');
  }
  switch (invocation.Status) {
    case 'Success':
    case 'Failed': {
      const plugin = invocation.CommandPlugins?.[0];
      const { stdout, stderr } = splitPluginOutput(plugin?.Output ?? '');
      const exitCode = plugin?.ResponseCode ?? null;
      return interpretUpdaterRun({ exitCode: exitCode === -1 ? null : exitCode, stdout, stderr });
    }
    case 'TimedOut':
      return failure('timed-out', `the command timed out (${invocation.StatusDetails ?? 'TimedOut'})`);
    case 'Cancelled':
      return failure('failed', 'the command was cancelled before it finished (Cancelled)');
    default:
      return null;
  }
}
