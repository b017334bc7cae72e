import {
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  type Command,
  type CommandInvocation,
  type SendCommandCommandInput,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { InvalidInputError } from '../core/errors.ts';
import type { Clock, Delivery, Fleet } from '../core/ports.ts';
import type { HostResult, HostStatus, ManagedRunner } from '../core/types.ts';
import { interpretUpdaterRun } from '../core/updater-output.ts';
import { EXECUTION_TIMEOUT_PARAMETER, hostUpdateCommandParameters } from './host-update-document.ts';

export interface SsmFleetOptions {
  /**
   * Build it once per Lambda with retries for throttling, e.g.
   * `new SSMClient({ maxAttempts: 5, retryMode: 'adaptive' })`: SSM answers a burst of calls with
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

/** SendCommand takes at most 50 InstanceIds (SendCommandRequest.InstanceIds). */
export const MAX_INSTANCE_IDS_PER_COMMAND = 50;
/** SendCommand TimeoutSeconds bounds. */
const MIN_DELIVERY_TIMEOUT_SECONDS = 30;
const MAX_DELIVERY_TIMEOUT_SECONDS = 2_592_000;
/** The longest single back-off after a throttled poll (still bounded by the deadline). */
const MAX_BACKOFF_MS = 30_000;
/** Command.Comment is at most 100 characters. */
const MAX_COMMENT_LENGTH = 100;

/** Command statuses after which no invocation of it changes any more. */
const TERMINAL_COMMAND_STATUSES = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

/** A SendCommand that SSM accepted, and the hosts it stands for. */
interface SentCommand {
  commandId: string;
  /** The instance ids asked for; empty for a tag target (SSM finds the instances). */
  instanceIds: string[];
  /** For a tag target: the `tag:<key>=<value>` name reported when no instance answers. */
  tagHost: string | null;
  /** Instances SSM listed for this command, in the order first seen. */
  seen: string[];
  /** For a tag target: ListCommands' TargetCount once known. */
  targetCount: number | null;
  done: boolean;
}

/**
 * The AWS engine's fleet: one SSM Run Command of the host update document per runner (per 50 instance
 * ids), then ListCommandInvocations until every host has a terminal result or the deadline passes.
 * Hosts fetch the token themselves by secret ARN and version: this adapter never has it, so nothing it
 * sends, logs, returns or throws can hold it.
 */
export class SsmFleet implements Fleet {
  private readonly pollIntervalMs: number;

  constructor(private readonly options: SsmFleetOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    if (!new RegExp(EXECUTION_TIMEOUT_PARAMETER.allowedPattern).test(String(options.executionTimeoutSeconds))) {
      throw new InvalidInputError('ssm.executionTimeoutSeconds', `must match ${EXECUTION_TIMEOUT_PARAMETER.allowedPattern}`);
    }
  }

  async push(runner: ManagedRunner, delivery: Delivery, onResult?: (result: HostResult) => void): Promise<HostResult[]> {
    const hosts = runner.hosts;
    if (hosts.kind === 'config-files') {
      throw new InvalidInputError(`runner ${runner.name}`, 'config-file hosts are updated by the local engine, not through SSM');
    }
    const push = new PushState(this.options.clock, onResult);
    const request: Omit<SendCommandCommandInput, 'InstanceIds' | 'Targets'> = {
      DocumentName: this.options.documentName,
      // The content the last deploy wrote, whether or not the stack made that version the default.
      DocumentVersion: '$LATEST',
      Parameters: {
        ...hostUpdateCommandParameters(delivery, runner),
        [EXECUTION_TIMEOUT_PARAMETER.name]: [String(this.options.executionTimeoutSeconds)],
      },
      MaxConcurrency: this.options.maxConcurrency,
      // The old token died when GitLab issued the new one: a host that is not updated is offline for
      // jobs anyway, so SSM must try every host however many fail before it ('100%'). A lower value
      // would make SSM stop sending (invocations "Terminated") and strand the rest.
      MaxErrors: this.options.maxErrors,
      TimeoutSeconds: this.deliveryTimeoutSeconds(),
      Comment: `rotator: runner ${runner.name} (#${runner.runnerId}) version ${delivery.versionId}`.slice(0, MAX_COMMENT_LENGTH),
    };

    const commands: SentCommand[] = [];
    if (hosts.kind === 'ec2-tag') {
      const tagHost = `tag:${hosts.tagKey}=${hosts.tagValue}`;
      // "Key can be tag:<Amazon EC2 tag> or InstanceIds" (SSM Target): every instance with the tag.
      const sent = await this.send({ ...request, Targets: [{ Key: `tag:${hosts.tagKey}`, Values: [hosts.tagValue] }] });
      if (typeof sent === 'string') {
        commands.push(sentCommand(sent, [], tagHost));
      } else {
        push.record({ host: tagHost, status: 'undeliverable', systemId: null, detail: `SendCommand failed: ${sent.error}` });
      }
    } else {
      const ids = [...new Set(hosts.instanceIds)];
      push.expect(ids);
      for (let at = 0; at < ids.length; at += MAX_INSTANCE_IDS_PER_COMMAND) {
        commands.push(...(await this.sendToInstances(request, ids.slice(at, at + MAX_INSTANCE_IDS_PER_COMMAND), push)));
      }
    }

    await this.waitForResults(commands, push);

    for (const command of commands) {
      if (command.done) continue;
      for (const id of [...command.instanceIds, ...command.seen]) {
        push.record({ host: id, status: 'timed-out', systemId: null, detail: 'no result before the deadline' });
      }
      if (command.tagHost !== null && command.seen.length === 0) {
        push.record(
          command.targetCount === 0
            ? { host: command.tagHost, status: 'undeliverable', systemId: null, detail: 'no instance carries this tag (none found before the deadline)' }
            : { host: command.tagHost, status: 'timed-out', systemId: null, detail: 'no result before the deadline' },
        );
      }
    }
    return push.results();
  }

  /**
   * One SendCommand for up to 50 ids. When SSM rejects the whole call because one id is not a managed
   * node (InvalidInstanceId names none of them), each id is sent on its own so the others still get
   * the token.
   */
  private async sendToInstances(request: SendCommandCommandInput, ids: string[], push: PushState): Promise<SentCommand[]> {
    const sent = await this.send({ ...request, InstanceIds: ids });
    if (typeof sent === 'string') return [sentCommand(sent, ids, null)];
    if (sent.error === 'InvalidInstanceId' && ids.length > 1) {
      const commands: SentCommand[] = [];
      for (const id of ids) commands.push(...(await this.sendToInstances(request, [id], push)));
      return commands;
    }
    for (const id of ids) push.record({ host: id, status: 'undeliverable', systemId: null, detail: `SendCommand failed: ${sent.error}` });
    return [];
  }

  /** The command id, or the error name when SendCommand failed for good (throttling is retried first). */
  private async send(input: SendCommandCommandInput): Promise<string | { error: string }> {
    let backoffMs = this.pollIntervalMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await this.options.ssm.send(new SendCommandCommand(input));
        const commandId = reply.Command?.CommandId;
        return commandId ? commandId : { error: 'no CommandId in the SendCommand reply' };
      } catch (error) {
        const name = errorName(error);
        if (!isThrottling(error) || attempt >= 3 || this.remainingMs() <= backoffMs) return { error: name };
        await this.options.clock.sleep(backoffMs);
        backoffMs *= 2;
      }
    }
  }

  /**
   * Polls every pollIntervalMs until every command is done or the deadline passes. A ThrottlingException
   * that gets through the SDK's own retries doubles the wait instead of failing the push: the hosts are
   * running the update whether or not we watch.
   */
  private async waitForResults(commands: SentCommand[], push: PushState): Promise<void> {
    let waitMs = this.pollIntervalMs;
    while (commands.some((c) => !c.done)) {
      const remaining = this.remainingMs();
      if (remaining <= 0) return;
      // Right after SendCommand the invocations are not listed yet (aws/aws-sdk#190): wait first.
      await this.options.clock.sleep(Math.min(waitMs, remaining));
      try {
        for (const command of commands) {
          if (!command.done) await this.poll(command, push);
        }
        waitMs = this.pollIntervalMs;
      } catch (error) {
        if (!isThrottling(error)) throw error;
        waitMs = Math.min(Math.max(waitMs, this.pollIntervalMs) * 2, MAX_BACKOFF_MS);
      }
    }
  }

  private async poll(command: SentCommand, push: PushState): Promise<void> {
    const commandId = command.commandId;
    // For a tag target the invocation list grows while SSM resolves the targets: ListCommands'
    // TargetCount says how many to expect. Read before the invocations, so they are at least as new.
    let summary: Command | undefined;
    if (command.tagHost !== null) {
      summary = (await this.options.ssm.send(new ListCommandsCommand({ CommandId: commandId }))).Commands?.[0];
    }
    for (const invocation of await this.invocations(commandId)) {
      const id = invocation.InstanceId;
      if (!id) continue;
      if (command.tagHost === null && !command.instanceIds.includes(id)) continue;
      if (!command.seen.includes(id)) {
        command.seen.push(id);
        push.expect([id]);
      }
      const verdict = invocationVerdict(invocation, this.options.executionTimeoutSeconds);
      if (verdict) push.record({ host: id, ...verdict });
    }

    if (command.tagHost === null) {
      command.done = command.instanceIds.every((id) => push.has(id));
      return;
    }
    if (!summary) return; // not listed yet
    const targetCount = summary.TargetCount ?? 0;
    command.targetCount = targetCount;
    const finished = TERMINAL_COMMAND_STATUSES.has(summary.Status ?? '') || (targetCount > 0 && (summary.CompletedCount ?? 0) >= targetCount);
    if (finished && targetCount === 0 && command.seen.length === 0) {
      push.record({ host: command.tagHost, status: 'undeliverable', systemId: null, detail: 'no instance carries this tag' });
      command.done = true;
      return;
    }
    command.done = finished && command.seen.length >= targetCount && command.seen.every((id) => push.has(id));
  }

  /** Every invocation of a command with its plugin output (Details), all pages. */
  private async invocations(commandId: string): Promise<CommandInvocation[]> {
    const all: CommandInvocation[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.options.ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId, Details: true, MaxResults: 50, NextToken: nextToken }));
      all.push(...(page.CommandInvocations ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    return all;
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

/** The results of one push: one per host, each reported once, in the order the hosts became known. */
class PushState {
  private readonly order: string[] = [];
  private readonly byHost = new Map<string, HostResult>();

  constructor(
    private readonly clock: Clock,
    private readonly onResult: ((result: HostResult) => void) | undefined,
  ) {}

  expect(hosts: string[]): void {
    for (const host of hosts) if (!this.order.includes(host)) this.order.push(host);
  }

  has(host: string): boolean {
    return this.byHost.has(host);
  }

  /** Keeps the first result for a host (a terminal SSM status does not change) and reports it. */
  record(result: Omit<HostResult, 'finishedAt'>): void {
    if (this.byHost.has(result.host)) return;
    this.expect([result.host]);
    const full: HostResult = { ...result, finishedAt: this.clock.now().toISOString() };
    this.byHost.set(result.host, full);
    this.onResult?.(full);
  }

  results(): HostResult[] {
    return this.order.flatMap((host) => this.byHost.get(host) ?? []);
  }
}

function sentCommand(commandId: string, instanceIds: string[], tagHost: string | null): SentCommand {
  return { commandId, instanceIds, tagHost, seen: [], targetCount: null, done: false };
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

/**
 * Splits a plugin's Output back into stdout and stderr. The agent joins them as
 * stdout + "\n----------ERROR-------\n" + stderr (only when stderr is not empty), keeps about 2,500
 * characters in all and marks a cut with "\n---Output truncated---" / "\n---Error truncated----"
 * (amazon-ssm-agent agent/framework/processor/executer/iohandler/iohandler.go TruncateOutput;
 * aws/aws-sdk-java#1499). The updater prints one line per stream, far below the cut.
 */
export function splitPluginOutput(output: string): { stdout: string; stderr: string } {
  const text = output.replace(/\n---Output truncated---/g, '').replace(/\n---Error truncated----/g, '');
  const marker = /(?:^|\n)-{5,}ERROR-{5,}(?:\n|$)/.exec(text);
  if (!marker) return { stdout: text, stderr: '' };
  return { stdout: text.slice(0, marker.index), stderr: text.slice(marker.index + marker[0].length) };
}

function errorName(error: unknown): string {
  if (error instanceof Error) return error.name;
  return 'unknown error';
}

function isThrottling(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const retryable = (error as { $retryable?: { throttling?: boolean } }).$retryable;
  return error.name === 'ThrottlingException' || retryable?.throttling === true;
}
