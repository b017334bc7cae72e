/**
 * SSM Run Command pieces shared by the host update fleet (ssm-fleet.ts) and the fleet-wide doctor
 * (src/doctor/fleet-doctor.ts): SendCommand with throttling retries (and a batch of ids split when one
 * id is not a managed node), the poll loop with its back-off, one poll of a command's invocations
 * (ListCommands' TargetCount for a tag target), the sweep of the hosts that had no result when the time
 * ran out (runOnHosts, which both callers run), and the plugin output split back into its streams.
 * Neither caller's meaning of a result lives here: each says what a terminal invocation is for it.
 */
import { awsSetupError } from './sdk-clients.ts';
import {
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  type Command,
  type CommandInvocation,
  type SendCommandCommandInput,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import type { Clock } from '../../core/ports.ts';
import { tagHostName, type HostSelector } from '../../core/types.ts';

/** SendCommand takes at most 50 InstanceIds (SendCommandRequest.InstanceIds). */
export const MAX_INSTANCE_IDS_PER_COMMAND = 50;
/** SendCommand TimeoutSeconds bounds. */
export const MIN_DELIVERY_TIMEOUT_SECONDS = 30;
export const MAX_DELIVERY_TIMEOUT_SECONDS = 2_592_000;
/** The longest single back-off after a throttled poll (still bounded by the deadline). */
export const MAX_BACKOFF_MS = 30_000;
/** Command.Comment is at most 100 characters. */
export const MAX_COMMENT_LENGTH = 100;

/** Command statuses after which no invocation of it changes any more. */
export const TERMINAL_COMMAND_STATUSES: ReadonlySet<string> = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

/** What sending and polling need: the client, the clock, the poll interval and the time left. */
export interface CommandPacing {
  ssm: SSMClient;
  clock: Clock;
  pollIntervalMs: number;
  /** Milliseconds left before the caller stops waiting (may be 0 or less). */
  remainingMs: () => number;
}

/** A SendCommand that SSM accepted, and the hosts it stands for. */
export interface SentCommand {
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

export function sentCommand(commandId: string, instanceIds: string[], tagHost: string | null): SentCommand {
  return { commandId, instanceIds, tagHost, seen: [], targetCount: null, done: false };
}

/** The command id, or the error name when SendCommand failed for good (throttling is retried first). */
export async function sendCommand(pacing: CommandPacing, input: SendCommandCommandInput): Promise<string | { error: string }> {
  let backoffMs = pacing.pollIntervalMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await pacing.ssm.send(new SendCommandCommand(input));
      const commandId = reply.Command?.CommandId;
      return commandId ? commandId : { error: 'no CommandId in the SendCommand reply' };
    } catch (error) {
      // No region or credentials here: no host is to blame, and no other call will do better.
      if (awsSetupError(error) !== error) throw awsSetupError(error);
      const name = errorName(error);
      if (!isThrottling(error) || attempt >= 3 || pacing.remainingMs() <= backoffMs) return { error: name };
      await pacing.clock.sleep(backoffMs);
      backoffMs *= 2;
    }
  }
}

/**
 * One SendCommand for up to 50 ids. When SSM rejects the whole call because one id is not a managed
 * node (InvalidInstanceId names none of them), each id is sent on its own so the others still get the
 * command. `onFailed` hears every id that could not be sent, with the error name.
 */
export async function sendToInstances(
  pacing: CommandPacing,
  request: SendCommandCommandInput,
  ids: string[],
  onFailed: (id: string, error: string) => void,
): Promise<SentCommand[]> {
  const sent = await sendCommand(pacing, { ...request, InstanceIds: ids });
  if (typeof sent === 'string') return [sentCommand(sent, ids, null)];
  if (sent.error === 'InvalidInstanceId' && ids.length > 1) {
    const commands: SentCommand[] = [];
    for (const id of ids) commands.push(...(await sendToInstances(pacing, request, [id], onFailed)));
    return commands;
  }
  for (const id of ids) onFailed(id, sent.error);
  return [];
}

/**
 * Sends `request` to every host of a runner: one command to the tag ("Key can be tag:<Amazon EC2 tag> or
 * InstanceIds", SSM Target: every instance with the tag), or one per 50 distinct instance ids. `expect`
 * hears the instance ids up front; `notSent` every host (or the tag's `tag:K=V` name) SendCommand refused.
 */
export async function sendToHosts(
  pacing: CommandPacing,
  request: SendCommandCommandInput,
  hosts: Exclude<HostSelector, { kind: 'config-files' }>,
  handlers: { expect(ids: string[]): void; notSent(host: string, error: string): void },
): Promise<SentCommand[]> {
  if (hosts.kind === 'ec2-tag') {
    const tagHost = tagHostName(hosts);
    const sent = await sendCommand(pacing, { ...request, Targets: [{ Key: `tag:${hosts.tagKey}`, Values: [hosts.tagValue] }] });
    if (typeof sent === 'string') return [sentCommand(sent, [], tagHost)];
    handlers.notSent(tagHost, sent.error);
    return [];
  }
  const ids = [...new Set(hosts.instanceIds)];
  handlers.expect(ids);
  const commands: SentCommand[] = [];
  for (let at = 0; at < ids.length; at += MAX_INSTANCE_IDS_PER_COMMAND) {
    commands.push(...(await sendToInstances(pacing, request, ids.slice(at, at + MAX_INSTANCE_IDS_PER_COMMAND), handlers.notSent)));
  }
  return commands;
}

/**
 * Polls every pollIntervalMs until every command is done or no time is left. A ThrottlingException that
 * gets through the SDK's own retries doubles the wait instead of failing: the hosts run the command
 * whether or not we watch. Any other error is thrown.
 */
export async function waitForCommands(pacing: CommandPacing, commands: SentCommand[], pollOnce: (command: SentCommand) => Promise<void>): Promise<void> {
  let waitMs = pacing.pollIntervalMs;
  while (commands.some((c) => !c.done)) {
    const remaining = pacing.remainingMs();
    if (remaining <= 0) return;
    // Right after SendCommand the invocations are not listed yet (aws/aws-sdk#190): wait first.
    await pacing.clock.sleep(Math.min(waitMs, remaining));
    try {
      for (const command of commands) {
        if (!command.done) await pollOnce(command);
      }
      waitMs = pacing.pollIntervalMs;
    } catch (error) {
      if (!isThrottling(error)) throw error;
      waitMs = Math.min(Math.max(waitMs, pacing.pollIntervalMs) * 2, MAX_BACKOFF_MS);
    }
  }
}

export interface PollHandlers {
  /** An instance this command runs on, the first time it is listed. */
  onSeen: (id: string) => void;
  /** Every listed invocation of one of this command's instances, on every poll (awaited when it returns a promise). */
  onInvocation: (id: string, invocation: CommandInvocation) => void | Promise<void>;
  /** Whether the caller holds a final result for this instance. */
  hasResult: (id: string) => boolean;
  /** A tag target whose command finished without any instance (no instance carries the tag). */
  onNoTarget: (tagHost: string) => void;
}

/** What runOnHosts makes of each host, in the caller's own result type. */
export interface HostRunHandlers<R extends { host: string }> {
  /** SendCommand refused this host (an instance id, or a tag's `tag:K=V` name). */
  notSent(host: string, error: string): R;
  /** The result of an instance's invocation, or null while it still runs (its last state goes to `waitedOut`). */
  finished(id: string, invocation: CommandInvocation, commandId: string): R | null | Promise<R | null>;
  /** A tag target that reached no instance: SSM finished the command with none, or (`atDeadline`) still listed none with TargetCount 0 when the time ran out. */
  noTarget(tagHost: string, atDeadline: boolean): R;
  /**
   * A host still without a result when the time ran out: an instance (with its last invocation, when SSM
   * listed one), or a tag target for which SSM had listed no instance yet. The command may still finish.
   */
  waitedOut(host: string, command: SentCommand, last: CommandInvocation | undefined): R;
  /** Hears every result once, as it is recorded. */
  onResult?(result: R): void;
}

export interface HostRun<R> {
  /** One per host (or per tag that reached no host), the first kept, in the order the hosts became known. */
  results: R[];
  /** The hosts (or tags) the sweep at the end recorded: no final result before the time ran out. */
  waitedOut: string[];
  commandIds: string[];
}

/**
 * The whole Run Command of one document on a runner's hosts, for the host update fleet and the fleet
 * doctor alike: send (sendToHosts), poll until every host has a final result or `pacing.remainingMs()`
 * runs out (waitForCommands, pollCommand), then sweep the commands that did not finish: every host
 * still without a result becomes `waitedOut`, a tag that SSM found no instance for `noTarget`. Nothing
 * is cancelled: a host reached late still finishes, and the next scan (or doctor run) reads it.
 */
export async function runOnHosts<R extends { host: string }>(
  pacing: CommandPacing,
  request: SendCommandCommandInput,
  hosts: Exclude<HostSelector, { kind: 'config-files' }>,
  handlers: HostRunHandlers<R>,
): Promise<HostRun<R>> {
  const results = new HostResults<R>(handlers.onResult);
  const last = new Map<string, CommandInvocation>();
  const commands = await sendToHosts(pacing, request, hosts, {
    expect: (ids) => results.expect(ids),
    notSent: (host, error) => results.record(handlers.notSent(host, error)),
  });

  await waitForCommands(pacing, commands, (command) =>
    pollCommand(pacing.ssm, command, {
      onSeen: (id) => results.expect([id]),
      onInvocation: async (id, invocation) => {
        if (results.has(id)) return;
        const result = await handlers.finished(id, invocation, command.commandId);
        if (result) results.record(result);
        else last.set(id, invocation);
      },
      hasResult: (id) => results.has(id),
      onNoTarget: (tagHost) => results.record(handlers.noTarget(tagHost, false)),
    }),
  );

  const waitedOut: string[] = [];
  const sweep = (host: string, result: () => R): void => {
    if (results.has(host)) return;
    waitedOut.push(host);
    results.record(result());
  };
  for (const command of commands) {
    if (command.done) continue;
    for (const id of [...command.instanceIds, ...command.seen]) sweep(id, () => handlers.waitedOut(id, command, last.get(id)));
    const tagHost = command.tagHost;
    if (tagHost !== null && command.seen.length === 0) {
      sweep(tagHost, () => (command.targetCount === 0 ? handlers.noTarget(tagHost, true) : handlers.waitedOut(tagHost, command, undefined)));
    }
  }
  return { results: results.all(), waitedOut, commandIds: commands.map((c) => c.commandId) };
}

/** One result per host, the first one kept (a terminal SSM status does not change), in the order the hosts became known. */
class HostResults<R extends { host: string }> {
  private readonly order: string[] = [];
  private readonly byHost = new Map<string, R>();

  constructor(private readonly onResult: ((result: R) => void) | undefined) {}

  expect(hosts: string[]): void {
    for (const host of hosts) if (!this.order.includes(host)) this.order.push(host);
  }

  has(host: string): boolean {
    return this.byHost.has(host);
  }

  record(result: R): void {
    if (this.byHost.has(result.host)) return;
    this.expect([result.host]);
    this.byHost.set(result.host, result);
    this.onResult?.(result);
  }

  all(): R[] {
    return this.order.flatMap((host) => this.byHost.get(host) ?? []);
  }
}

/**
 * One poll of a command: its invocations (with the plugin output), and for a tag target ListCommands'
 * TargetCount first, read before the invocations so they are at least as new (the list grows while SSM
 * resolves the targets). Marks the command done when every instance has a result.
 */
export async function pollCommand(ssm: SSMClient, command: SentCommand, handlers: PollHandlers): Promise<void> {
  let summary: Command | undefined;
  if (command.tagHost !== null) {
    summary = (await ssm.send(new ListCommandsCommand({ CommandId: command.commandId }))).Commands?.[0];
  }
  for (const invocation of await listInvocations(ssm, command.commandId)) {
    const id = invocation.InstanceId;
    if (!id) continue;
    if (command.tagHost === null && !command.instanceIds.includes(id)) continue;
    if (!command.seen.includes(id)) {
      command.seen.push(id);
      handlers.onSeen(id);
    }
    await handlers.onInvocation(id, invocation);
  }

  if (command.tagHost === null) {
    command.done = command.instanceIds.every((id) => handlers.hasResult(id));
    return;
  }
  if (!summary) return; // not listed yet
  const targetCount = summary.TargetCount ?? 0;
  command.targetCount = targetCount;
  const finished = TERMINAL_COMMAND_STATUSES.has(summary.Status ?? '') || (targetCount > 0 && (summary.CompletedCount ?? 0) >= targetCount);
  if (finished && targetCount === 0 && command.seen.length === 0) {
    handlers.onNoTarget(command.tagHost);
    command.done = true;
    return;
  }
  command.done = finished && command.seen.length >= targetCount && command.seen.every((id) => handlers.hasResult(id));
}

/** Every invocation of a command with its plugin output (Details), all pages. */
export async function listInvocations(ssm: SSMClient, commandId: string): Promise<CommandInvocation[]> {
  const all: CommandInvocation[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId, Details: true, MaxResults: 50, NextToken: nextToken }));
    all.push(...(page.CommandInvocations ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  return all;
}

/**
 * Splits a plugin's Output back into stdout and stderr. The agent joins them as
 * stdout + "\n----------ERROR-------\n" + stderr (only when stderr is not empty), keeps about 2,500
 * characters in all and marks a cut with "\n---Output truncated---" / "\n---Error truncated----"
 * (amazon-ssm-agent agent/framework/processor/executer/iohandler/iohandler.go TruncateOutput;
 * aws/aws-sdk-java#1499). The updater prints one line per stream, far below the cut.
 */
/** GetCommandInvocation's whole stdout of one plugin (up to 24,000 characters; the list's Output stops near 2,500). */
export async function fullStandardOutput(ssm: SSMClient, commandId: string, instanceId: string, pluginName: string): Promise<string | undefined> {
  const reply = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId, PluginName: pluginName }));
  return reply.StandardOutputContent;
}

export function splitPluginOutput(output: string): { stdout: string; stderr: string } {
  const text = output.replace(/\n---Output truncated---/g, '').replace(/\n---Error truncated----/g, '');
  const marker = /(?:^|\n)-{5,}ERROR-{5,}(?:\n|$)/.exec(text);
  if (!marker) return { stdout: text, stderr: '' };
  return { stdout: text.slice(0, marker.index), stderr: text.slice(marker.index + marker[0].length) };
}

/** StatusDetails after which an invocation does not change any more, whatever its Status says. */
const TERMINAL_INVOCATION_DETAILS: ReadonlySet<string> = new Set(['Success', 'Failed', 'Undeliverable', 'DeliveryTimedOut', 'Terminated', 'ExecutionTimedOut', 'Cancelled', 'TimedOut']);

/**
 * Whether an invocation is final: a terminal Status, or a terminal StatusDetails (SDK docs of
 * CommandInvocation.StatusDetails: "Delivery Timed Out", "Execution Timed Out", "Undeliverable",
 * "Terminated" are terminal), compared without spaces.
 */
export function isTerminalInvocation(invocation: CommandInvocation): boolean {
  return TERMINAL_COMMAND_STATUSES.has(invocation.Status ?? '') || TERMINAL_INVOCATION_DETAILS.has((invocation.StatusDetails ?? '').replace(/\s+/g, ''));
}

/** Whether the agent cut a plugin's Output (the whole stdout is then only in GetCommandInvocation, up to 24,000 characters). */
export function pluginOutputTruncated(output: string): boolean {
  return output.includes('\n---Output truncated---');
}

export function errorName(error: unknown): string {
  if (error instanceof Error) return error.name;
  return 'unknown error';
}

export function isThrottling(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const retryable = (error as { $retryable?: { throttling?: boolean } }).$retryable;
  return error.name === 'ThrottlingException' || retryable?.throttling === true;
}
