/**
 * `rotator doctor --aws RUNNER` end to end: the CLI sends the real doctor document through the fake SSM
 * (test/support/fake-ssm.ts), which runs its runCommand with sh on host folders, as the agent would.
 * Four hosts: healthy, world-readable config, malformed config, offline. The table has one row per
 * finding per host, the offline host is doctor.did-not-run, the exit code is the worst severity, no
 * token is printed or sent, and every config.toml is byte-identical afterwards.
 */
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetCommandInvocationCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDoctorDocument, doctorDocumentName } from '../../src/adapters/aws/doctor-document.ts';
import { registerDoctorCommand } from '../../src/cli/doctor-command.ts';
import type { Output } from '../../src/cli/output.ts';
import { CHECKS } from '../../src/doctor/finding.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { FakeSsm, NO_SECRETS, type FakeInstance } from '../support/fake-ssm.ts';
import { deploymentOf } from '../support/iam/deployment.ts';
import { describeRefusals, IamEvaluator } from '../support/iam/iam-evaluator.ts';
import { iamRequestsOf } from '../support/iam/iam-requests.ts';
import { CallRecorder } from '../support/iam/recorded-calls.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';
import { FIXTURES, stamp, tempRoot } from './doctor-harness.ts';

const DAY_MS = 86_400_000;
const CONFIG_PATH = '/etc/gitlab-runner/config.toml';
const HEALTHY = 'i-0aaaaaaaaaaaaaaa1';
const READABLE = 'i-0bbbbbbbbbbbbbbb2';
const MALFORMED = 'i-0ccccccccccccccc3';
const OFFLINE = 'i-0ddddddddddddddd4';
const STALLED = 'i-0eeeeeeeeeeeeeee5';
const CROWDED = 'i-0fffffffffffffff6';
const CUSTOM_DOCUMENT = 'OperatorDoctor';

let root: string;
let sim: GitLabSimulator;
let fake: FakeSsm;
/** The fleet file that lists the runner `name` (see beforeAll). */
const fleetPaths = new Map<string, string>();
const fleetOf = (name: string): string => fleetPaths.get(name) ?? '/nonexistent/fleet.json';
let fleetText: string;
/** The doctor's SSM calls, charged to the operator who runs `rotator doctor --aws`. */
const recorder = new CallRecorder();
const tokens: string[] = [];
const configs = new Map<string, string>();

/** A host folder with `text` as /etc/gitlab-runner/config.toml, with `mode`. */
async function host(instanceId: string, text: string, mode = 0o600, tags: Record<string, string> = {}): Promise<FakeInstance> {
  const dir = join(root, instanceId);
  const path = join(dir, CONFIG_PATH);
  await mkdir(join(dir, '/etc/gitlab-runner'), { recursive: true });
  await writeFile(path, text);
  await chmod(path, mode);
  configs.set(instanceId, path);
  return { instanceId, tags, root: dir };
}

async function fixture(name: string, vars: Record<string, string | number>): Promise<string> {
  let text = await readFile(join(FIXTURES, name), 'utf8');
  for (const [key, value] of Object.entries(vars)) text = text.split(`@${key}@`).join(String(value));
  return text;
}

beforeAll(async () => {
  root = await tempRoot('fleet-doctor-');
  sim = new GitLabSimulator();
  await sim.start();
  const { id, token } = sim.addRunner({ tokenExpiresAt: new Date(Date.now() + 60 * DAY_MS) });
  tokens.push(token, 'glrt-MALFORMEDHOSTTOKEN0001');
  const healthy = await fixture('runner.toml', { URL: sim.url, ID: id, TOKEN: token, OBTAINED_AT: stamp(new Date()), EXPIRES_AT: stamp(new Date(Date.now() + 60 * DAY_MS)) });
  // Many runner tables on one host: its output is longer than the 2,500 characters the plugin output keeps.
  const legacy = Array.from({ length: 14 }, (_, i) => `[[runners]]\n  name = "legacy-${i}"\n  url = "https://gitlab.example.com/"\n  id = ${100 + i}\n  token = "Lg${String(i).padStart(2, '0')}LegacyRegistrationTok"\n`);
  tokens.push(...legacy.map((_, i) => `Lg${String(i).padStart(2, '0')}LegacyRegistrationTok`));
  const instances = [
    await host(HEALTHY, healthy, 0o600, { 'gitlab-runner': 'builders' }),
    await host(READABLE, healthy, 0o644, { 'gitlab-runner': 'builders' }),
    await host(MALFORMED, await fixture('malformed.toml', { TOKEN: 'glrt-MALFORMEDHOSTTOKEN0001' })),
    await host(OFFLINE, healthy),
    await host(STALLED, healthy),
    await host(CROWDED, `concurrent = 4\n\n${legacy.join('\n')}`),
  ];
  fake = new FakeSsm(instances, root, NO_SECRETS);
  fake.addDocument(doctorDocumentName(), buildDoctorDocument());
  fake.addDocument(CUSTOM_DOCUMENT, buildDoctorDocument());
  fake.offline.add(OFFLINE);
  fake.stalled.add(STALLED);
  fake.markTruncation = true;
  const runner = (name: string, runnerId: number, hosts: unknown) => ({ name, gitlabUrl: sim.url, runnerId, hosts });
  // Several names for one GitLab runner, each looking at other hosts: a fleet file lists a GitLab runner
  // once, so each name gets a fleet file of its own (fleetOf), and the stack the doctor's calls are judged
  // against lists them all under ids of their own (its policies depend on the hosts, not on runner ids).
  const runners = [
    runner('fleet', id, { instanceIds: [HEALTHY, READABLE, MALFORMED, OFFLINE] }),
    runner('healthy', id, { instanceIds: [HEALTHY] }),
    runner('readable', id, { instanceIds: [READABLE] }),
    runner('builders', id, { tag: { key: 'gitlab-runner', value: 'builders' } }),
    runner('nobody', id, { tag: { key: 'gitlab-runner', value: 'nobody' } }),
    runner('stalled', id, { instanceIds: [STALLED, OFFLINE] }),
    runner('crowded', 100, { instanceIds: [CROWDED] }),
  ];
  const settings = { ssm: { maxConcurrency: '10' }, defaults: { configPath: CONFIG_PATH } };
  for (const entry of runners) {
    const path = join(root, `fleet-${entry.name}.aws.json`);
    await writeFile(path, JSON.stringify({ ...settings, runners: [entry] }));
    fleetPaths.set(entry.name, path);
  }
  fleetText = JSON.stringify({ ...settings, runners: runners.map((entry, index) => ({ ...entry, runnerId: 1_000 + index })) });
});

afterAll(async () => {
  // Every SSM call the doctor made, judged against the operator policy of the stack this fleet deploys; not
  // those sent with --document to an operator's own document, which that policy does not cover.
  const deployment = deploymentOf(fleetText.replaceAll(sim.url, 'https://gitlab.example.com'));
  const calls = recorder.calls.filter((c) => c.input.DocumentName !== CUSTOM_DOCUMENT);
  const requests = calls.flatMap((call) => iamRequestsOf(call, deployment, fake.instances));
  expect(requests.filter((r) => r.action === 'ssm:SendCommand').length).toBeGreaterThan(0);
  expect(describeRefusals(await new IamEvaluator(deployment).judge(requests))).toEqual([]);
  await sim.stop();
  await rm(root, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string[];
  err: string[];
  rows: Array<{ host: string; code: string; severity: string; runner: string | null; evidence: string; fix: string }>;
  notRun: Array<{ host: string; check: string; runner: string | null; reason: string }>;
}

/** `rotator [--fleet F] doctor ARGS` as main.ts wires it (a global --fleet), with the fake SSM and a short poll. */
async function doctor(args: string[], globalFleet = true): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const output: Output = { out: (l) => out.push(l), err: (l) => err.push(l) };
  let code = -1;
  const program = new Command('rotator').exitOverride().configureOutput({ writeOut: (s) => out.push(s.trimEnd()), writeErr: (s) => err.push(s.trimEnd()) });
  if (globalFleet) program.option('--fleet <path>', 'fleet file', '/nonexistent/fleet.json');
  registerDoctorCommand(program, output, (c) => (code = c), { ssm: () => recorder.as('Operator', 'ssm', fake.client), pollIntervalMs: 25 });
  await program.parseAsync(['doctor', ...args], { from: 'user' });
  const rows: Run['rows'] = [];
  let notRun: Run['notRun'] = [];
  if (args.includes('--json')) {
    for (const line of out) {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if ('notRun' in parsed) notRun = parsed.notRun as Run['notRun'];
      else rows.push(parsed as unknown as Run['rows'][number]);
    }
  }
  return { code, out, err, rows, notRun };
}

async function snapshot(): Promise<Map<string, { bytes: Buffer; mtimeMs: number; mode: number }>> {
  const result = new Map<string, { bytes: Buffer; mtimeMs: number; mode: number }>();
  for (const [id, path] of configs) {
    const s = await stat(path);
    result.set(id, { bytes: await readFile(path), mtimeMs: s.mtimeMs, mode: s.mode });
  }
  return result;
}

function sentCommands() {
  return fake.mock.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
}

describe('rotator doctor --aws', () => {
  it('prints one row per finding per host, the offline host as did-not-run, exits 2, sends no token and leaves every config.toml byte-identical', async () => {
    const before = await snapshot();
    fake.mock.resetHistory();
    const run = await doctor(['--aws', 'fleet', '--fleet', fleetOf('fleet'), '--json']);

    expect(run.rows.map((r) => [r.host, r.code, r.severity])).toEqual([
      [OFFLINE, 'doctor.did-not-run', 'error'],
      [MALFORMED, 'config.unparseable', 'error'],
      [READABLE, 'file.mode', 'warning'],
    ]);
    const [offline, malformed, readable] = run.rows;
    expect(offline!.evidence).toBe('SSM status Failed (Undeliverable); no output');
    expect(malformed!.evidence).toBe(`${join(root, MALFORMED, CONFIG_PATH)}: malformed TOML at line 7: unterminated string (the host updater's validator)`);
    expect(readable!.evidence).toMatch(/has mode 0644: group and others may access the runner tokens in it \(want 0600\)$/);
    expect(readable!.fix).toBe(CHECKS['file.mode'].fix);
    expect(readable!.runner).toBeNull();
    // The healthy host has no row, but did run: its remote-only checks are listed as not run.
    // runner.version-too-old too, unless this machine has a gitlab-runner on PATH (the fake agent runs with the test's PATH).
    expect(run.notRun.filter((n) => n.host === HEALTHY && n.check !== 'runner.version-too-old').map((n) => n.check)).toEqual(['token.invalid', 'registration.disallowed', 'url.mismatch', 'manager.stale']);
    expect(run.notRun.some((n) => n.host === OFFLINE)).toBe(false);
    expect(run.code).toBe(2);
    expect(run.err).toEqual([]);

    const [sent, ...more] = sentCommands();
    expect(more).toEqual([]);
    expect(sent).toMatchObject({
      DocumentName: 'GitLabRunnerRotator-RunnerDoctor',
      DocumentVersion: '$LATEST',
      InstanceIds: [HEALTHY, READABLE, MALFORMED, OFFLINE],
      Parameters: { ConfigPath: [CONFIG_PATH], ExpiringDays: ['7'], Shared: ['no'], Probe: ['yes'], ProbeTimeout: ['10'] },
      MaxConcurrency: '10',
      MaxErrors: '100%',
    });
    expect(sent!.Targets).toBeUndefined();

    expect(await snapshot()).toEqual(before);
    expectNoTokens(captured(run.out, run.err, fake.mock.calls().map((c) => c.args[0].input)), tokens);
  });

  it('prints the table HOST | CODE | SEVERITY | RUNNER | EVIDENCE, the fixes once per code, and the checks not run', async () => {
    const run = await doctor(['--aws', 'fleet', '--fleet', fleetOf('fleet')]);
    expect(run.code).toBe(2);
    expect(run.out[0]).toMatch(/^HOST +CODE +SEVERITY +RUNNER +EVIDENCE$/);
    expect(run.out[1]).toMatch(/^-+ +-+ +-+ +-+ +-+$/);
    const body = run.out.slice(2, run.out.indexOf(''));
    expect(body.map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      [OFFLINE, 'doctor.did-not-run', 'error'],
      [MALFORMED, 'config.unparseable', 'error'],
      [READABLE, 'file.mode', 'warning'],
    ]);
    expect(run.out).toContain('fixes:');
    expect(run.out).toContain(`  file.mode: ${CHECKS['file.mode'].fix}`);
    expect(run.out).toContain('checks not run:');
    expect(run.out).toContain(`  token.invalid, registration.disallowed, url.mismatch, manager.stale: the host document does not send the token to GitLab (run rotator doctor on the host) (2 hosts: ${HEALTHY}, ${READABLE})`);
    expect(run.out.find((l) => l.includes('config.toml is not valid TOML'))).toMatch(new RegExp(`^  config.no-runners, .+: config.toml is not valid TOML \\(1 host: ${MALFORMED}\\)$`));
    expectNoTokens(run.out.join('\n'), tokens);
  });

  it('exits 1 when the worst finding is a warning, 0 when a host has nothing wrong', async () => {
    const readable = await doctor(['--aws', 'readable', '--fleet', fleetOf('readable')]);
    expect(readable.code).toBe(1);
    const healthy = await doctor(['--aws', 'healthy', '--fleet', fleetOf('healthy')]);
    expect(healthy.code).toBe(0);
    expect(healthy.out[0]).toBe('No problems found on any host.');
  });

  it('sends to the runner\'s EC2 tag when its fleet entry names one, and names the tag when no instance carries it', async () => {
    fake.mock.resetHistory();
    const run = await doctor(['--aws', 'builders', '--fleet', fleetOf('builders'), '--json', '--no-probe', '--expiring-days', '90']);
    expect(sentCommands()[0]).toMatchObject({ Targets: [{ Key: 'tag:gitlab-runner', Values: ['builders'] }], Parameters: { Probe: ['no'], ExpiringDays: ['90'] } });
    expect(sentCommands()[0]!.InstanceIds).toBeUndefined();
    // Both hosts: the token expires within 90 days; the world-readable one also has file.mode.
    expect(run.rows.map((r) => [r.host, r.code])).toEqual([
      [HEALTHY, 'token.expiring'],
      [READABLE, 'token.expiring'],
      [READABLE, 'file.mode'],
    ]);
    expect(run.code).toBe(1);

    const nobody = await doctor(['--aws', 'nobody', '--fleet', fleetOf('nobody'), '--json']);
    expect(nobody.rows).toEqual([expect.objectContaining({ host: 'tag:gitlab-runner=nobody', code: 'doctor.did-not-run', severity: 'error' })]);
    expect(nobody.rows[0]!.evidence).toContain('no instance carries this tag');
    expect(nobody.code).toBe(2);
  });

  it('stops waiting after --wait-seconds with a clear message, and lists the host that did not answer with its SSM status', async () => {
    const started = Date.now();
    const run = await doctor(['--aws', 'stalled', '--fleet', fleetOf('stalled'), '--json', '--wait-seconds', '1']);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(run.err).toEqual([expect.stringMatching(new RegExp(`^rotator doctor: timed out after 1 s \\(--wait-seconds\\) waiting for 1 host of runner stalled: ${STALLED}; they are listed as doctor.did-not-run`))]);
    expect(run.rows.map((r) => [r.host, r.code])).toEqual([
      [OFFLINE, 'doctor.did-not-run'],
      [STALLED, 'doctor.did-not-run'],
    ]);
    expect(run.rows[0]!.evidence).toBe('SSM status Failed (Undeliverable); no output');
    expect(run.rows[1]!.evidence).toMatch(/^SSM status InProgress \(no result within 1 s \(--wait-seconds\); it may still finish: aws ssm list-command-invocations --command-id [0-9a-f-]+ --details\); no output$/);
    expect(run.code).toBe(2);
  });

  it('reads the whole output with GetCommandInvocation when the agent cut the plugin output', async () => {
    fake.mock.resetHistory();
    const run = await doctor(['--aws', 'crowded', '--fleet', fleetOf('crowded'), '--json', '--no-probe']);
    const calls = fake.mock.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([expect.objectContaining({ InstanceId: CROWDED, PluginName: 'runnerDoctor' })]);
    expect(run.rows.filter((r) => r.code === 'token.legacy')).toHaveLength(14);
    expect(run.rows.some((r) => r.code === 'doctor.did-not-run')).toBe(false);
    expect(run.code).toBe(1);
    expectNoTokens(run.out.join('\n'), tokens);
  });

  it('takes the document from --document, and --fleet on the doctor command when there is no global one', async () => {
    fake.mock.resetHistory();
    const run = await doctor(['--aws', 'healthy', '--fleet', fleetOf('healthy'), '--document', CUSTOM_DOCUMENT, '--shared', '--timeout-seconds', '3'], false);
    expect(run.code).toBe(0);
    expect(sentCommands()[0]).toMatchObject({ DocumentName: CUSTOM_DOCUMENT, Parameters: { Shared: ['yes'], ProbeTimeout: ['3'] } });
  });

  it.each([
    [['--aws', 'fleet', '--config', '/etc/gitlab-runner/config.toml'], /--config: does not go with --aws/],
    [['--aws', 'fleet', '--gitlab-url', 'https://gitlab.example.com'], /--gitlab-url: does not go with --aws/],
    [['--aws', 'nope'], /runner "nope": not in the AWS fleet config \(known: fleet\)/],
    [['--aws', 'fleet', '--wait-seconds', '0'], /--wait-seconds: must be a whole number/],
    [['--aws', 'fleet', '--expiring-days', '1.5'], /--expiring-days: must be a whole number/],
    [['--aws', 'fleet', '--timeout-seconds', '0'], /--timeout-seconds: must be a whole number/],
    [['--aws', 'fleet', '--document', 'bad name!'], /--document: "bad name!" is not an SSM document name/],
    [['--wait-seconds', '10'], /--wait-seconds: only goes with --aws/],
    [['--document', 'X'], /--document: only goes with --aws/],
    [['--no-probe'], /--no-probe: only goes with --aws/],
  ])('refuses %j before sending anything', async (args, message) => {
    fake.mock.resetHistory();
    await expect(doctor([...args, '--fleet', fleetOf('fleet')])).rejects.toThrow(message);
    expect(sentCommands()).toEqual([]);
  });
});
