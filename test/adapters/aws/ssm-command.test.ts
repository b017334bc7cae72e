/**
 * runOnHosts, the Run Command loop the host update fleet (ssm-fleet.ts) and the fleet doctor
 * (src/doctor/fleet-doctor.ts) share: send, poll until every host has a result or the time runs out, then
 * sweep what did not finish. SSM is faked at the SDK boundary (aws-sdk-client-mock).
 */
import { ListCommandInvocationsCommand, ListCommandsCommand, SendCommandCommand, SSMClient, type CommandInvocation } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ssmClient } from '../../../src/adapters/aws/sdk-clients.ts';
import { runOnHosts, type CommandPacing, type HostRunHandlers } from '../../../src/adapters/aws/ssm-command.ts';
import { TestClock } from '../../support/test-clock.ts';

const ssm = mockClient(SSMClient);

interface Row {
  host: string;
  what: string;
}

function pacing(waitMs: number): CommandPacing {
  const clock = new TestClock();
  const deadline = clock.now().getTime() + waitMs;
  return { ssm: ssmClient(), clock, pollIntervalMs: 1000, remainingMs: () => deadline - clock.now().getTime() };
}

const handlers = (heard: Row[] = []): HostRunHandlers<Row> => ({
  notSent: (host, error) => ({ host, what: `not sent: ${error}` }),
  finished: (id, invocation) => (invocation.Status === 'Success' ? { host: id, what: 'success' } : null),
  noTarget: (tagHost, atDeadline) => ({ host: tagHost, what: atDeadline ? 'no target (at the deadline)' : 'no target' }),
  waitedOut: (host, command, last) => ({ host, what: `waited out of ${command.commandId}, last ${last?.Status ?? 'none'}` }),
  onResult: (row) => heard.push(row),
});

const invocation = (id: string, status: 'Success' | 'InProgress'): CommandInvocation => ({ CommandId: 'cmd-1', InstanceId: id, Status: status, StatusDetails: status });
const request = { DocumentName: 'Doc', Parameters: {} };

beforeEach(() => {
  ssm.reset();
});

describe('runOnHosts', () => {
  it('records each finished host once, and sweeps the unfinished ones at the deadline: one seen still running, one never listed', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [invocation('i-1', 'Success'), invocation('i-2', 'InProgress')] });
    const heard: Row[] = [];

    const run = await runOnHosts(pacing(10_000), request, { kind: 'ec2-instances', instanceIds: ['i-1', 'i-2', 'i-3', 'i-1'], configPath: '/c' }, handlers(heard));

    expect(run.results).toEqual([
      { host: 'i-1', what: 'success' },
      { host: 'i-2', what: 'waited out of cmd-1, last InProgress' },
      { host: 'i-3', what: 'waited out of cmd-1, last none' },
    ]);
    expect(run.waitedOut).toEqual(['i-2', 'i-3']);
    expect(run.commandIds).toEqual(['cmd-1']);
    expect(heard).toEqual(run.results);
    // Sent once for the three distinct ids; polled until the time ran out, never after.
    expect(ssm.commandCalls(SendCommandCommand)[0]!.args[0].input.InstanceIds).toEqual(['i-1', 'i-2', 'i-3']);
    expect(ssm.commandCalls(ListCommandInvocationsCommand).length).toBeGreaterThan(1);
  });

  it('stops polling as soon as every host has a result: nothing is swept', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [invocation('i-1', 'Success')] });

    const run = await runOnHosts(pacing(60_000), request, { kind: 'ec2-instances', instanceIds: ['i-1'], configPath: '/c' }, handlers());

    expect(run).toEqual({ results: [{ host: 'i-1', what: 'success' }], waitedOut: [], commandIds: ['cmd-1'] });
    expect(ssm.commandCalls(ListCommandInvocationsCommand)).toHaveLength(1);
  });

  it('a tag target: no instance when SSM finished, no instance yet (TargetCount 0) at the deadline, and a tag still resolving', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });
    const tag = { kind: 'ec2-tag', tagKey: 'Role', tagValue: 'builders', configPath: '/c' } as const;

    ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: 'cmd-1', Status: 'Success', TargetCount: 0, CompletedCount: 0 }] });
    expect(await runOnHosts(pacing(10_000), request, tag, handlers())).toEqual({ results: [{ host: 'tag:Role=builders', what: 'no target' }], waitedOut: [], commandIds: ['cmd-1'] });

    ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: 'cmd-1', Status: 'InProgress', TargetCount: 0, CompletedCount: 0 }] });
    expect(await runOnHosts(pacing(5_000), request, tag, handlers())).toEqual({
      results: [{ host: 'tag:Role=builders', what: 'no target (at the deadline)' }],
      waitedOut: ['tag:Role=builders'],
      commandIds: ['cmd-1'],
    });

    ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: 'cmd-1', Status: 'InProgress', TargetCount: 2, CompletedCount: 0 }] });
    expect(await runOnHosts(pacing(5_000), request, tag, handlers())).toEqual({
      results: [{ host: 'tag:Role=builders', what: 'waited out of cmd-1, last none' }],
      waitedOut: ['tag:Role=builders'],
      commandIds: ['cmd-1'],
    });
  });

  it('a host SendCommand refused is recorded as not sent, and the others still get the command', async () => {
    ssm.on(SendCommandCommand, { InstanceIds: ['i-1', 'i-bad'] }).rejects(Object.assign(new Error('not a managed node'), { name: 'InvalidInstanceId' }));
    ssm.on(SendCommandCommand, { InstanceIds: ['i-bad'] }).rejects(Object.assign(new Error('not a managed node'), { name: 'InvalidInstanceId' }));
    ssm.on(SendCommandCommand, { InstanceIds: ['i-1'] }).resolves({ Command: { CommandId: 'cmd-1' } });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [invocation('i-1', 'Success')] });

    const run = await runOnHosts(pacing(10_000), request, { kind: 'ec2-instances', instanceIds: ['i-1', 'i-bad'], configPath: '/c' }, handlers());

    expect(run.results).toEqual([
      { host: 'i-1', what: 'success' },
      { host: 'i-bad', what: 'not sent: InvalidInstanceId' },
    ]);
    expect(run.waitedOut).toEqual([]);
  });
});
