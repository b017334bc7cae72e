/**
 * `rotator doctor --aws`: sends the read-only doctor document (src/adapters/aws/doctor-document.ts) to one
 * runner's hosts exactly as its fleet entry names them (an EC2 tag, or instance ids, at most 50 per
 * SendCommand), waits a bounded time for the invocations, and returns what buildFleetReport takes: per
 * host its SSM status and standard output. Hosts without a final result by then come back with their
 * last status and an empty output, so the report lists them as doctor.did-not-run.
 *
 * Sending, polling and the sweep of hosts without a result are the AWS engine's (runOnHosts in
 * src/adapters/aws/ssm-command.ts); only what a result means is said here. The output is read from
 * ListCommandInvocations' plugin output; when the agent cut that (about 2,500 characters), from
 * GetCommandInvocation's StandardOutputContent (24,000 characters). Nothing here carries a token: the
 * parameters are a path, numbers and yes/no.
 */
import type { CommandInvocation, SendCommandCommandInput, SSMClient } from '@aws-sdk/client-ssm';
import { DOCTOR_EXECUTION_TIMEOUT_SECONDS, DOCTOR_STEP_NAME } from '../adapters/aws/doctor-document.ts';
import {
  MAX_COMMENT_LENGTH,
  MAX_DELIVERY_TIMEOUT_SECONDS,
  MIN_DELIVERY_TIMEOUT_SECONDS,
  fullStandardOutput,
  isTerminalInvocation,
  isThrottling,
  pluginOutputTruncated,
  runOnHosts,
  splitPluginOutput,
  type CommandPacing,
} from '../adapters/aws/ssm-command.ts';
import { InvalidInputError } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { ManagedRunner } from '../core/types.ts';
import type { DoctorInvocation } from './fleet-report.ts';

export interface FleetDoctorOptions {
  ssm: SSMClient;
  clock: Clock;
  /** The doctor document's name (or ARN). */
  documentName: string;
  runner: ManagedRunner;
  /** SendCommand Parameters: doctorCommandParameters(). */
  parameters: Record<string, string[]>;
  /** Stop waiting for results after this long. */
  waitMs: number;
  /** SendCommand MaxConcurrency (the fleet file's ssm.maxConcurrency). */
  maxConcurrency: string;
  /** Default 2000. */
  pollIntervalMs?: number;
}

export interface FleetDoctorRun {
  /** One per host (or per tag that reached no host), in the order the hosts became known. */
  invocations: DoctorInvocation[];
  /** Hosts still without a final result when the wait ended. */
  waitedOut: string[];
  commandIds: string[];
}

export async function runFleetDoctor(options: FleetDoctorOptions): Promise<FleetDoctorRun> {
  const { runner, clock } = options;
  const hosts = runner.hosts;
  if (hosts.kind === 'config-files') throw new InvalidInputError(`runner ${runner.name}`, 'its hosts are config files on this machine: run `rotator doctor --config PATH` there');
  const deadline = clock.now().getTime() + options.waitMs;
  const pacing: CommandPacing = { ssm: options.ssm, clock, pollIntervalMs: options.pollIntervalMs ?? 2000, remainingMs: () => deadline - clock.now().getTime() };

  const request: SendCommandCommandInput = {
    DocumentName: options.documentName,
    // The content the last deploy wrote, whether or not the stack made that version the default.
    DocumentVersion: '$LATEST',
    Parameters: options.parameters,
    MaxConcurrency: options.maxConcurrency,
    // A diagnosis: every host is asked, however many fail.
    MaxErrors: '100%',
    // Not started by then, not run: a host reached late still reports before the wait ends.
    TimeoutSeconds: Math.min(Math.max(Math.floor(options.waitMs / 1000) - DOCTOR_EXECUTION_TIMEOUT_SECONDS, MIN_DELIVERY_TIMEOUT_SECONDS), MAX_DELIVERY_TIMEOUT_SECONDS),
    Comment: `rotator doctor: runner ${runner.name} (#${runner.runnerId})`.slice(0, MAX_COMMENT_LENGTH),
  };
  const waited = `no result within ${Math.round(options.waitMs / 1000)} s (--wait-seconds)`;
  const run = await runOnHosts<DoctorInvocation>(pacing, request, hosts, {
    notSent: (host, error) => ({ host, status: 'NotSent', detail: `SendCommand failed: ${error}`, output: '' }),
    finished: async (id, invocation, commandId) =>
      isTerminalInvocation(invocation) ? { host: id, status: invocation.Status ?? 'Unknown', detail: detailOf(invocation), output: await standardOutput(options.ssm, commandId, id, invocation) } : null,
    noTarget: (tagHost, atDeadline) => ({
      host: tagHost,
      status: 'NoTarget',
      detail: atDeadline ? 'no instance carries this tag (none found before the wait ended)' : 'no instance carries this tag (SSM found 0 targets)',
      output: '',
    }),
    waitedOut: (host, command, last) =>
      host === command.tagHost
        ? { host, status: 'Pending', detail: `${waited}: SSM listed no instance for this tag yet`, output: '' }
        : { host, status: last ? statusOf(last) : 'Pending', detail: `${waited}; it may still finish: aws ssm list-command-invocations --command-id ${command.commandId} --details`, output: '' },
  });
  return { invocations: run.results, waitedOut: run.waitedOut, commandIds: run.commandIds };
}

/** Status, with StatusDetails when it says more ("Failed", "Undeliverable"). */
function statusOf(invocation: CommandInvocation): string {
  const detail = detailOf(invocation);
  return `${invocation.Status ?? 'Unknown'}${detail === undefined ? '' : ` (${detail})`}`;
}

function detailOf(invocation: CommandInvocation): string | undefined {
  const details = invocation.StatusDetails;
  return details && details !== invocation.Status ? details : undefined;
}

/**
 * The invocation's stdout: the plugin output of ListCommandInvocations, or, when the agent cut it,
 * GetCommandInvocation's StandardOutputContent (the first 24,000 characters; a report still missing its
 * closing line marks the host as not finished; so does the cut output when that call fails). stderr is
 * never read: the table shows findings only.
 */
async function standardOutput(ssm: SSMClient, commandId: string, instanceId: string, invocation: CommandInvocation): Promise<string> {
  const plugin = invocation.CommandPlugins?.find((p) => p.Name === DOCTOR_STEP_NAME) ?? invocation.CommandPlugins?.[0];
  const output = plugin?.Output ?? '';
  const { stdout } = splitPluginOutput(output);
  if (!pluginOutputTruncated(output)) return stdout;
  try {
    return (await fullStandardOutput(ssm, commandId, instanceId, plugin?.Name ?? DOCTOR_STEP_NAME)) ?? stdout;
  } catch (error) {
    // Throttled: the next poll asks again. Anything else: the cut output, which the report flags.
    if (isThrottling(error)) throw error;
    return stdout;
  }
}
