import {
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
  type CommandInvocation,
  type SendCommandCommandInput,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { hostRemoveCommandParameters, hostUpdateCommandParameters } from '../../../src/adapters/aws/host-update-document.ts';
import { SsmFleet, splitPluginOutput, type SsmFleetOptions } from '../../../src/adapters/aws/ssm-fleet.ts';
import { InvalidInputError } from '../../../src/core/errors.ts';
import type { Delivery } from '../../../src/core/ports.ts';
import { DEFAULT_EXPIRY_POLICY, type HostResult, type HostSelector, type ManagedRunner } from '../../../src/core/types.ts';
import { TestClock } from '../../support/test-clock.ts';
import { captured, expectNoTokens } from '../../support/token-leaks.ts';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf';
const VERSION = '6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5';
const PREVIOUS = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const COMMAND_ID = '11111111-2222-3333-4444-555555555555';

const ssm = mockClient(SSMClient);

function runnerWith(hosts: HostSelector): ManagedRunner {
  return {
    name: 'builders',
    secretId: 'gitlab-runner-rotator/builders',
    gitlabUrl: 'https://gitlab.example.com',
    runnerId: 7,
    hosts,
    reload: 'sighup',
    policy: DEFAULT_EXPIRY_POLICY,
    strategy: 'reset',
  };
}

const tagRunner = runnerWith({ kind: 'ec2-tag', tagKey: 'Role', tagValue: 'builders', configPath: '/etc/gitlab-runner/config.toml' });
const instanceIds = (count: number): string[] => Array.from({ length: count }, (_, i) => `i-${(0x1000000 + i).toString(16).padStart(17, '0')}`);
const instancesRunner = (ids: string[]): ManagedRunner => runnerWith({ kind: 'ec2-instances', instanceIds: ids, configPath: '/etc/gitlab-runner/config.toml' });

const delivery: Delivery = { secretId: SECRET_ARN, versionId: VERSION, previousVersionId: PREVIOUS, tokenExpiresAt: '2026-03-01T12:00:00.000Z' };

interface Setup {
  fleet: SsmFleet;
  clock: TestClock;
}

function setup(overrides: Partial<SsmFleetOptions> = {}, deadlineMs = 600_000): Setup {
  const clock = new TestClock();
  const deadline = new Date(clock.now().getTime() + deadlineMs);
  const fleet = new SsmFleet({
    ssm: new SSMClient({ region: 'eu-west-1' }),
    documentName: 'GitLabRunnerRotatorHostUpdate',
    clock,
    deadline: () => deadline,
    maxConcurrency: '50',
    maxErrors: '100%',
    executionTimeoutSeconds: 120,
    pollIntervalMs: 2000,
    ...overrides,
  });
  return { fleet, clock };
}

/** One invocation as ListCommandInvocations returns it with Details: true. */
function invocation(instanceId: string, status: string, statusDetails: string, output = '', responseCode = 0): CommandInvocation {
  return {
    CommandId: COMMAND_ID,
    InstanceId: instanceId,
    Status: status as CommandInvocation['Status'],
    StatusDetails: statusDetails,
    CommandPlugins: [{ Name: 'updateRunnerToken', Status: status as never, StatusDetails: statusDetails, ResponseCode: responseCode, Output: output }],
  };
}

const UPDATED = 'status=updated runner_id=7 config=/etc/gitlab-runner/config.toml system_id=s_0123456789ab reload=sighup\n';
const CURRENT = 'status=already-current runner_id=7 config=/etc/gitlab-runner/config.toml system_id=s_ba9876543210 reload=skipped\n';
const MALFORMED = 'update-runner-token: error: malformed TOML at line 12: unterminated string (/etc/gitlab-runner/config.toml)';

function sendCalls(): SendCommandCommandInput[] {
  return ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input);
}

/** Every SendCommand gets its own command id; ListCommandInvocations answers for the ids that command was sent to. */
function answerInvocations(respond: (commandId: string, instanceIds: string[]) => CommandInvocation[]): void {
  const sent = new Map<string, string[]>();
  ssm.on(SendCommandCommand).callsFake((input: SendCommandCommandInput) => {
    const commandId = `${String(sent.size).padStart(8, '0')}-2222-3333-4444-555555555555`;
    sent.set(commandId, input.InstanceIds ?? []);
    return { Command: { CommandId: commandId } };
  });
  ssm.on(ListCommandInvocationsCommand).callsFake((input: { CommandId: string }) => ({
    CommandInvocations: respond(input.CommandId, sent.get(input.CommandId) ?? []),
  }));
}

async function pushOne(status: string, statusDetails: string, output = '', code = 0): Promise<HostResult> {
  const [id] = instanceIds(1) as [string];
  answerInvocations(() => [invocation(id, status, statusDetails, output, code)]);
  const results = await setup().fleet.push(instancesRunner([id]), delivery);
  expect(results).toHaveLength(1);
  return results[0] as HostResult;
}

beforeEach(() => {
  ssm.reset();
});

describe('SsmFleet requests', () => {
  it('sends one command to every instance that carries the runner tag, with the document parameters and no token', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 1, CompletedCount: 1 }] });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [invocation('i-0aaaaaaaaaaaaaaaa', 'Success', 'Success', UPDATED)] });

    const { fleet } = setup();
    const results = await fleet.push(tagRunner, delivery);

    const [request, ...others] = sendCalls();
    expect(others).toEqual([]);
    expect(request).toMatchObject({
      DocumentName: 'GitLabRunnerRotatorHostUpdate',
      DocumentVersion: '$LATEST',
      Targets: [{ Key: 'tag:Role', Values: ['builders'] }],
      Parameters: { ...hostUpdateCommandParameters(delivery, tagRunner), ExecutionTimeout: ['120'] },
      MaxConcurrency: '50',
      MaxErrors: '100%',
    });
    expect(request?.InstanceIds).toBeUndefined();
    // What is left before the deadline less the execution timeout: 600 s - 120 s.
    expect(request?.TimeoutSeconds).toBeGreaterThanOrEqual(479);
    expect(request?.TimeoutSeconds).toBeLessThanOrEqual(480);
    expect(request?.Comment).toContain('builders');
    expect(request?.Comment).toContain(VERSION);
    expect(request?.Comment?.length).toBeLessThanOrEqual(100);
    expect(Object.keys(request?.Parameters ?? {}).some((name) => /token/i.test(name))).toBe(false);
    expectNoTokens(captured(ssm.calls().map((call) => call.args[0].input), results), []);
    expect(results.map((r) => [r.host, r.status])).toEqual([['i-0aaaaaaaaaaaaaaaa', 'updated']]);
  });

  it('sends 120 instance ids as three commands of 50, 50 and 20 ids', async () => {
    const ids = instanceIds(120);
    answerInvocations((_, chunk) => chunk.map((id) => invocation(id, 'Success', 'Success', UPDATED)));

    const results = await setup().fleet.push(instancesRunner(ids), delivery);

    const calls = sendCalls();
    expect(calls.map((c) => c.InstanceIds?.length)).toEqual([50, 50, 20]);
    expect(calls.flatMap((c) => c.InstanceIds)).toEqual(ids);
    for (const call of calls) {
      expect(call.Targets).toBeUndefined();
      expect(call.Parameters).toEqual({ ...hostUpdateCommandParameters(delivery, instancesRunner(ids)), ExecutionTimeout: ['120'] });
    }
    expect(results.map((r) => r.host)).toEqual(ids);
    expect(results.every((r) => r.status === 'updated')).toBe(true);
  });

  it('passes the configured concurrency, error budget and execution timeout to SSM', async () => {
    answerInvocations((_, chunk) => chunk.map((id) => invocation(id, 'Success', 'Success', UPDATED)));

    await setup({ maxConcurrency: '10%', maxErrors: '100%', executionTimeoutSeconds: 300 }).fleet.push(instancesRunner(instanceIds(2)), delivery);

    expect(sendCalls()[0]).toMatchObject({ MaxConcurrency: '10%', MaxErrors: '100%', Parameters: { ExecutionTimeout: ['300'] } });
  });

  it('refuses config-file hosts, which belong to the local engine', async () => {
    const runner = runnerWith({ kind: 'config-files', files: [{ name: 'local', configPath: '/etc/gitlab-runner/config.toml' }] });
    await expect(setup().fleet.push(runner, delivery)).rejects.toBeInstanceOf(InvalidInputError);
    expect(sendCalls()).toEqual([]);
  });
});

describe('SsmFleet results', () => {
  it('reports an updated host with the system_id and reload mode the updater printed', async () => {
    const result = await pushOne('Success', 'Success', UPDATED);
    expect(result).toMatchObject({ host: 'i-00000000001000000', status: 'updated', systemId: 's_0123456789ab', detail: 'reload=sighup' });
    expect(Date.parse(result.finishedAt)).not.toBeNaN();
  });

  it('reports a host that already had the version as already-current with its system_id', async () => {
    const result = await pushOne('Success', 'Success', CURRENT);
    expect(result).toMatchObject({ status: 'already-current', systemId: 's_ba9876543210', detail: 'reload=skipped' });
  });

  it('reports a Failed host with the updater’s one error line, read from after the ERROR marker', async () => {
    const result = await pushOne('Failed', 'Failed', `\n----------ERROR-------\n${MALFORMED}\n`, 4);
    expect(result).toMatchObject({ status: 'failed', systemId: null, detail: `exit 4: ${MALFORMED}` });
  });

  it('keeps a warning the updater printed on stderr after a successful update', async () => {
    const warning = 'update-runner-token: warning: systemctl kill --signal=SIGHUP gitlab-runner failed (/etc/gitlab-runner/config.toml)';
    const result = await pushOne('Success', 'Success', `${UPDATED.replace('reload=sighup', 'reload=failed')}\n----------ERROR-------\n${warning}\n`);
    expect(result).toMatchObject({ status: 'updated', detail: `reload=failed; ${warning}` });
  });

  it.each([
    ['Failed', 'Undeliverable', 'undeliverable', /Undeliverable/],
    ['TimedOut', 'Delivery Timed Out', 'undeliverable', /Delivery Timed Out/],
    ['Cancelled', 'Terminated', 'undeliverable', /Terminated/],
    ['TimedOut', 'Execution Timed Out', 'timed-out', /within 120 s \(Execution Timed Out\)/],
    ['Cancelled', 'Cancelled', 'failed', /cancelled/],
  ])('reports an invocation with status %s and details %s as %s', async (status, details, expected, detail) => {
    const result = await pushOne(status, details, '', -1);
    expect(result.status).toBe(expected);
    expect(result.detail).toMatch(detail);
    expect(result.systemId).toBeNull();
  });

  it('reports a host still in progress at the deadline as timed out', async () => {
    const [id] = instanceIds(1) as [string];
    answerInvocations(() => [invocation(id, 'InProgress', 'In Progress')]);
    const { fleet, clock } = setup({}, 10_000);

    const results = await fleet.push(instancesRunner([id]), delivery);

    expect(results).toEqual([expect.objectContaining({ host: id, status: 'timed-out', detail: 'no result before the deadline' })]);
    // It waited until the deadline (the manual clock also counts the real milliseconds the test took).
    const slept = clock.sleptMs.reduce((a, b) => a + b, 0);
    expect(slept).toBeGreaterThan(9_000);
    expect(slept).toBeLessThanOrEqual(10_000);
  });

  it('reports a host SSM never listed before the deadline as timed out', async () => {
    const ids = instanceIds(2);
    answerInvocations(() => [invocation(ids[0] as string, 'Success', 'Success', UPDATED)]);

    const results = await setup({}, 6_000).fleet.push(instancesRunner(ids), delivery);

    expect(results.map((r) => [r.host, r.status])).toEqual([
      [ids[0], 'updated'],
      [ids[1], 'timed-out'],
    ]);
  });

  it('reads every page of ListCommandInvocations', async () => {
    const ids = instanceIds(3);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    ssm.on(ListCommandInvocationsCommand).callsFake((input: { NextToken?: string }) =>
      input.NextToken === 'page-2'
        ? { CommandInvocations: [invocation(ids[2] as string, 'Success', 'Success', CURRENT)] }
        : { CommandInvocations: ids.slice(0, 2).map((id) => invocation(id, 'Success', 'Success', UPDATED)), NextToken: 'page-2' },
    );

    const results = await setup().fleet.push(instancesRunner(ids), delivery);

    expect(results.map((r) => r.status)).toEqual(['updated', 'updated', 'already-current']);
    const listCalls = ssm.commandCalls(ListCommandInvocationsCommand).map((c) => c.args[0].input);
    expect(listCalls).toEqual([
      expect.objectContaining({ CommandId: COMMAND_ID, Details: true }),
      expect.objectContaining({ CommandId: COMMAND_ID, Details: true, NextToken: 'page-2' }),
    ]);
  });

  it('backs off when polling is throttled and still reports every host', async () => {
    const [id] = instanceIds(1) as [string];
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    ssm
      .on(ListCommandInvocationsCommand)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .resolves({ CommandInvocations: [invocation(id, 'Success', 'Success', UPDATED)] });
    const { fleet, clock } = setup();

    const results = await fleet.push(instancesRunner([id]), delivery);

    expect(results).toEqual([expect.objectContaining({ host: id, status: 'updated' })]);
    expect(clock.sleptMs).toEqual([2000, 4000, 8000]);
  });

  it('reports every host of a chunk whose SendCommand failed for good as undeliverable, naming the error', async () => {
    const ids = instanceIds(60);
    let calls = 0;
    ssm.on(SendCommandCommand).callsFake(() => {
      calls++;
      if (calls === 2) throw Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' });
      return { Command: { CommandId: COMMAND_ID } };
    });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: ids.slice(0, 50).map((id) => invocation(id, 'Success', 'Success', UPDATED)) });
    const seen: HostResult[] = [];

    const results = await setup().fleet.push(instancesRunner(ids), delivery, (r) => seen.push(r));

    expect(results).toHaveLength(60);
    expect(results.slice(0, 50).every((r) => r.status === 'updated')).toBe(true);
    for (const result of results.slice(50)) {
      expect(result).toMatchObject({ status: 'undeliverable', detail: 'SendCommand failed: AccessDeniedException' });
    }
    expect(new Set(seen.map((r) => r.host)).size).toBe(60);
  });

  it('retries a SendCommand that is still throttled after the SDK’s own retries', async () => {
    const [id] = instanceIds(1) as [string];
    ssm
      .on(SendCommandCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .resolves({ Command: { CommandId: COMMAND_ID } });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [invocation(id, 'Success', 'Success', UPDATED)] });

    const results = await setup().fleet.push(instancesRunner([id]), delivery);

    expect(sendCalls()).toHaveLength(2);
    expect(results).toEqual([expect.objectContaining({ host: id, status: 'updated' })]);
  });

  it('reports a tag whose SendCommand failed as one undeliverable result named after the tag', async () => {
    ssm.on(SendCommandCommand).rejects(Object.assign(new Error('document not found'), { name: 'InvalidDocument' }));

    const results = await setup().fleet.push(tagRunner, delivery);

    expect(results).toEqual([expect.objectContaining({ host: 'tag:Role=builders', status: 'undeliverable', detail: 'SendCommand failed: InvalidDocument' })]);
  });

  it('sends each id on its own when SSM rejects a chunk for one unknown instance, so the others still get the version', async () => {
    const ids = instanceIds(3);
    const unknown = ids[1] as string;
    const sent = new Map<string, string[]>();
    ssm.on(SendCommandCommand).callsFake((input: SendCommandCommandInput) => {
      if (input.InstanceIds?.includes(unknown)) throw Object.assign(new Error('Instances not in a valid state'), { name: 'InvalidInstanceId' });
      const commandId = `${String(sent.size).padStart(8, '0')}-2222-3333-4444-555555555555`;
      sent.set(commandId, input.InstanceIds ?? []);
      return { Command: { CommandId: commandId } };
    });
    ssm.on(ListCommandInvocationsCommand).callsFake((input: { CommandId: string }) => ({
      CommandInvocations: (sent.get(input.CommandId) ?? []).map((id) => invocation(id, 'Success', 'Success', UPDATED)),
    }));

    const results = await setup().fleet.push(instancesRunner(ids), delivery);

    expect(sendCalls().map((c) => c.InstanceIds)).toEqual([ids, [ids[0]], [ids[1]], [ids[2]]]);
    expect(results.map((r) => [r.host, r.status])).toEqual([
      [ids[0], 'updated'],
      [unknown, 'undeliverable'],
      [ids[2], 'updated'],
    ]);
  });

  it('reports a tag no instance carries as one undeliverable result named after the tag', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 0, CompletedCount: 0 }] });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });

    const results = await setup().fleet.push(tagRunner, delivery);

    expect(results).toEqual([expect.objectContaining({ host: 'tag:Role=builders', status: 'undeliverable', detail: 'no instance carries this tag' })]);
  });

  it('keeps polling a tag target until SSM has listed as many invocations as the command has targets', async () => {
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    ssm
      .on(ListCommandsCommand)
      .resolvesOnce({ Commands: [{ CommandId: COMMAND_ID, Status: 'InProgress', TargetCount: 2, CompletedCount: 1 }] })
      .resolves({ Commands: [{ CommandId: COMMAND_ID, Status: 'Success', TargetCount: 2, CompletedCount: 2 }] });
    ssm
      .on(ListCommandInvocationsCommand)
      .resolvesOnce({ CommandInvocations: [invocation('i-0aaaaaaaaaaaaaaaa', 'Success', 'Success', UPDATED)] })
      .resolves({
        CommandInvocations: [invocation('i-0aaaaaaaaaaaaaaaa', 'Success', 'Success', UPDATED), invocation('i-0bbbbbbbbbbbbbbbb', 'Success', 'Success', CURRENT)],
      });
    const seen: string[] = [];

    const results = await setup().fleet.push(tagRunner, delivery, (r) => seen.push(`${r.host} ${r.status}`));

    expect(seen).toEqual(['i-0aaaaaaaaaaaaaaaa updated', 'i-0bbbbbbbbbbbbbbbb already-current']);
    expect(results.map((r) => r.host)).toEqual(['i-0aaaaaaaaaaaaaaaa', 'i-0bbbbbbbbbbbbbbbb']);
    expect(ssm.commandCalls(ListCommandsCommand).length).toBe(2);
  });

  it('reports each host once through onResult as its result lands', async () => {
    const ids = instanceIds(2);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
    ssm
      .on(ListCommandInvocationsCommand)
      .resolvesOnce({ CommandInvocations: [invocation(ids[0] as string, 'Success', 'Success', UPDATED), invocation(ids[1] as string, 'InProgress', 'In Progress')] })
      .resolves({ CommandInvocations: ids.map((id) => invocation(id, 'Success', 'Success', UPDATED)) });
    const seen: string[] = [];

    await setup().fleet.push(instancesRunner(ids), delivery, (r) => seen.push(r.host));

    expect(seen).toEqual(ids);
    expect(ssm.commandCalls(ListCommandInvocationsCommand).length).toBe(2);
  });
});

describe('splitPluginOutput', () => {
  it('gives everything to stdout when the agent added no ERROR marker', () => {
    expect(splitPluginOutput(UPDATED)).toEqual({ stdout: UPDATED, stderr: '' });
  });

  it('splits stdout from stderr at the ERROR marker, also when stdout is empty', () => {
    expect(splitPluginOutput(`${UPDATED}\n----------ERROR-------\nwarning`)).toEqual({ stdout: `${UPDATED}`, stderr: 'warning' });
    expect(splitPluginOutput(`\n----------ERROR-------\n${MALFORMED}`)).toEqual({ stdout: '', stderr: MALFORMED });
  });

  it('drops the agent’s truncation notes so they are never taken for the updater’s reason', () => {
    const output = `${UPDATED}\n---Output truncated---\n----------ERROR-------\n${MALFORMED}\n---Error truncated----`;
    expect(splitPluginOutput(output)).toEqual({ stdout: UPDATED, stderr: MALFORMED });
  });
});

describe('hostUpdateCommandParameters', () => {
  it('maps a delivery to all ten document parameters with none for absent values', () => {
    const parameters = hostUpdateCommandParameters({ ...delivery, previousVersionId: null, tokenExpiresAt: null }, tagRunner);
    expect(parameters).toEqual({
      SecretArn: [SECRET_ARN],
      VersionId: [VERSION],
      PreviousVersionId: ['none'],
      RunnerId: ['7'],
      GitLabUrl: ['https://gitlab.example.com'],
      ConfigPath: ['/etc/gitlab-runner/config.toml'],
      ReloadMode: ['sighup'],
      ExpiresAt: ['none'],
      Mode: ['update'],
      FromRunnerId: ['none'],
    });
  });

  it('maps a replacement runner to mode add, copying the old runner table', () => {
    const parameters = hostUpdateCommandParameters({ ...delivery, addFromRunnerId: 7 }, { ...tagRunner, runnerId: 12 });
    expect(parameters).toMatchObject({ RunnerId: ['12'], Mode: ['add'], FromRunnerId: ['7'], VersionId: [VERSION] });
  });

  it('maps a removal to mode remove with no expiry and no previous version', () => {
    const parameters = hostRemoveCommandParameters({ secretId: SECRET_ARN, versionId: VERSION }, tagRunner);
    expect(parameters).toMatchObject({ RunnerId: ['7'], Mode: ['remove'], FromRunnerId: ['none'], PreviousVersionId: ['none'], ExpiresAt: ['none'] });
  });

  it('writes an expiry with an offset as UTC', () => {
    expect(hostUpdateCommandParameters({ ...delivery, tokenExpiresAt: '2026-03-01T14:00:00.000+02:00' }, tagRunner).ExpiresAt).toEqual(['2026-03-01T12:00:00.000Z']);
  });

  it('refuses a value its allowedPattern rejects, naming the parameter', () => {
    const runner = runnerWith({ kind: 'ec2-tag', tagKey: 'Role', tagValue: 'x', configPath: '/etc/gitlab-runner/config.toml; rm -rf /' });
    expect(() => hostUpdateCommandParameters(delivery, runner)).toThrow(/ConfigPath/);
  });
});
