/**
 * runFleetDoctor against aws-sdk-client-mock: SendCommand batches of at most 50 ids, one bad id does not
 * keep the others from the doctor, and the output comes from the plugin output or, when the agent cut
 * it, from GetCommandInvocation. The end-to-end run on host folders is fleet-doctor-cli.test.ts.
 */
import { GetCommandInvocationCommand, ListCommandInvocationsCommand, SendCommandCommand, SSMClient, type CommandInvocation, type SendCommandCommandInput } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { doctorCommandParameters } from '../../src/adapters/aws/doctor-document.ts';
import { DEFAULT_EXPIRY_POLICY, type ManagedRunner } from '../../src/core/types.ts';
import { runFleetDoctor, type FleetDoctorOptions } from '../../src/doctor/fleet-doctor.ts';
import { buildFleetReport } from '../../src/doctor/fleet-report.ts';
import { TestClock } from '../support/test-clock.ts';

const ssm = mockClient(SSMClient);
const ids = (count: number): string[] => Array.from({ length: count }, (_, i) => `i-${(0x2000000 + i).toString(16).padStart(17, '0')}`);
const CLEAN = '{"runners":["https://gitlab.example.com#7"]}\n{"notRun":[]}\n';
const MODE = '{"code":"file.mode","severity":"warning","runner":null,"evidence":"/etc/gitlab-runner/config.toml has mode 0644"}\n';

function runner(instanceIds: string[]): ManagedRunner {
  return {
    name: 'builders',
    secretId: 'gitlab-runner-rotator/builders',
    gitlabUrl: 'https://gitlab.example.com',
    runnerId: 7,
    hosts: { kind: 'ec2-instances', instanceIds, configPath: '/etc/gitlab-runner/config.toml' },
    reload: 'sighup',
    policy: DEFAULT_EXPIRY_POLICY, strategy: 'reset',
  };
}

function options(instanceIds: string[]): FleetDoctorOptions {
  return { ssm: new SSMClient({ region: 'eu-west-1' }), clock: new TestClock(), documentName: 'GitLabRunnerRotator-RunnerDoctor', runner: runner(instanceIds), parameters: doctorCommandParameters(), waitMs: 60_000, maxConcurrency: '50' };
}

function invocation(commandId: string, id: string, output: string): CommandInvocation {
  return { CommandId: commandId, InstanceId: id, Status: 'Success', StatusDetails: 'Success', CommandPlugins: [{ Name: 'runnerDoctor', Status: 'Success', ResponseCode: 0, Output: output }] };
}

/** Each SendCommand gets its own id; its invocations answer `output(id)` at once. */
function answer(output: (id: string) => string, reject: (input: SendCommandCommandInput) => boolean = () => false): void {
  const sent = new Map<string, string[]>();
  ssm.on(SendCommandCommand).callsFake((input: SendCommandCommandInput) => {
    if (reject(input)) throw Object.assign(new Error('Instances [[i-0bad]] not in a valid state'), { name: 'InvalidInstanceId' });
    const commandId = `cmd-${sent.size}`;
    sent.set(commandId, input.InstanceIds ?? []);
    return { Command: { CommandId: commandId } };
  });
  ssm.on(ListCommandInvocationsCommand).callsFake((input: { CommandId: string }) => ({
    CommandInvocations: (sent.get(input.CommandId) ?? []).map((id) => invocation(input.CommandId, id, output(id))),
  }));
}

beforeEach(() => {
  ssm.reset();
});

describe('runFleetDoctor', () => {
  it('sends at most 50 instance ids per SendCommand and gets one result per host', async () => {
    const hosts = ids(120);
    answer(() => CLEAN);
    const run = await runFleetDoctor(options(hosts));
    const sent = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    expect(sent.map((s) => s.InstanceIds?.length)).toEqual([50, 50, 20]);
    expect(sent.flatMap((s) => s.InstanceIds)).toEqual(hosts);
    expect(sent[0]).toMatchObject({ DocumentName: 'GitLabRunnerRotator-RunnerDoctor', MaxErrors: '100%', MaxConcurrency: '50', Comment: 'rotator doctor: runner builders (#7)' });
    expect(run.invocations.map((i) => i.host)).toEqual(hosts);
    expect(run.waitedOut).toEqual([]);
    expect(buildFleetReport(run.invocations).rows).toEqual([]);
  });

  it('sends each id on its own when SSM refuses a batch for one bad id, and lists that one as not sent', async () => {
    const [good, bad, other] = ids(3) as [string, string, string];
    answer(() => CLEAN, (input) => input.InstanceIds?.includes(bad) === true);
    const run = await runFleetDoctor(options([good, bad, other]));
    expect(ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([[good, bad, other], [good], [bad], [other]]);
    const rows = buildFleetReport(run.invocations).rows;
    expect(rows).toEqual([expect.objectContaining({ host: bad, code: 'doctor.did-not-run', evidence: 'SSM status NotSent (SendCommand failed: InvalidInstanceId); no output' })]);
  });

  it('reads the plugin output, and GetCommandInvocation only for a host whose output the agent cut', async () => {
    const [whole, cut] = ids(2) as [string, string];
    answer((id) => (id === cut ? `${MODE}{"runners":[]}\n{"notR\n---Output truncated---` : `${MODE}${CLEAN}`));
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: `${MODE}${CLEAN}` });
    const run = await runFleetDoctor(options([whole, cut]));
    expect(ssm.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input)).toEqual([{ CommandId: 'cmd-0', InstanceId: cut, PluginName: 'runnerDoctor' }]);
    expect(buildFleetReport(run.invocations).rows.map((r) => [r.host, r.code])).toEqual([
      [whole, 'file.mode'],
      [cut, 'file.mode'],
    ]);
  });

  it('keeps the cut output, flagged as not finished, when GetCommandInvocation fails', async () => {
    const [cut] = ids(1) as [string];
    answer(() => `${MODE}\n---Output truncated---`);
    ssm.on(GetCommandInvocationCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    const rows = buildFleetReport((await runFleetDoctor(options([cut]))).invocations).rows;
    expect(rows.map((r) => [r.code, r.evidence])).toEqual([
      ['doctor.did-not-run', 'SSM status Success; the output has no closing {"notRun"} line (cut short, or the doctor did not finish)'],
      ['file.mode', '/etc/gitlab-runner/config.toml has mode 0644'],
    ]);
  });
});
