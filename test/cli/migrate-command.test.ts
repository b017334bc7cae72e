import { SendCommandCommand } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/rotate-secret.ts';
import { GitLabAdapter } from '../../src/adapters/gitlab/gitlab.ts';
import { createAwsCli, migrateThroughStack } from '../../src/cli/aws-commands.ts';
import { migrateLocal } from '../../src/cli/migrate-command.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { rotateRunners } from '../../src/cli/rotate-command.ts';
import { isLegacyRunnerToken } from '../../src/core/migration-plan.ts';
import { parseSecretValue } from '../../src/core/secret-value.ts';
import { followDaemons } from '../support/test-clock.ts';
import { RunnerDaemons } from '../../src/simulator/runner-daemons.ts';
import { isManagedTable, managedRunnerIds, type SimulatedHost } from '../../src/simulator/simulated-fleet.ts';
import { RUNNER, startAwsHarness, type AwsHarness } from '../support/aws-harness.ts';
import { startHarness, type Harness } from '../support/rotation-harness.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

let harness: Harness | undefined;
let aws: { harness: AwsHarness; daemons: RunnerDaemons } | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
  await aws?.daemons.stopAll();
  await aws?.harness.close();
  aws = undefined;
});

const SETTINGS = { tagList: ['docker', 'legacy'], runUntagged: false, locked: true, accessLevel: 'ref_protected' as const, maximumTimeout: 7200, paused: false, runnerType: 'project_type' as const, projectIds: [41, 42] };

async function legacyHarness(confirmWithinMs?: number): Promise<Harness> {
  return startHarness({ legacyToken: true, runnerSettings: SETTINGS, replace: { strategy: false, confirmWithinMs, admin: true } });
}

const current = (h: Harness) => h.current();
const tableIds = (hosts: SimulatedHost[]): Promise<number[][]> => Promise.all(hosts.map(managedRunnerIds));

describe('rotator migrate', () => {
  it('tells a legacy runner token from a runner authentication token, with or without an instance prefix', () => {
    expect(isLegacyRunnerToken('t1_4xYzAbCdEfGhIjKlMnOp')).toBe(true);
    expect(isLegacyRunnerToken('4xYzAbCdEfGhIjKlMnOp')).toBe(true);
    expect(isLegacyRunnerToken('glrt-t1_4xYzAbCdEfGhIjKlMn')).toBe(false);
    expect(isLegacyRunnerToken('acme-glrt-4xYzAbCdEfGhIjKlMn')).toBe(false);
  });

  it('--dry-run prints the plan with every setting it copies and changes nothing', async () => {
    harness = await legacyHarness();
    const h = harness;
    const before = await current(h);
    const output = recordingOutput();

    const code = await migrateLocal(h.engine, h.runner.name, { dryRun: true, force: false }, output, new Date());

    const text = output.lines.join('\n');
    expect(code).toBe(0);
    expect(text).toContain(`runner ${before.runnerId} at ${h.fleet.url} (legacy registration token), 3 hosts:`);
    expect(text).toContain('POST /user/runners runner_type=project_type project_id=41 description="runner-a" tag_list="docker,legacy" run_untagged=false locked=true access_level=ref_protected maximum_timeout=7200 paused=false');
    expect(text).toContain('POST /projects/42/runners runner_id=<new runner>');
    expect(text).toContain(`DELETE /runners/${before.runnerId}`);
    expect(text).toContain('dry run: nothing changed');
    expect(await current(h)).toEqual(before);
    expect(h.simulator.stats.byRoute['POST /user/runners']).toBeUndefined();
    expect(await h.engine.ledger.replacementRequested(h.runner.secretId)).toBeUndefined();
    expectNoTokens(captured(text), await h.knownTokens());
  });

  it('moves a legacy runner to a new glrt- runner with the same settings on every host, with no host ever without a working runner, and deletes the legacy one', async () => {
    harness = await legacyHarness();
    const h = harness;
    const legacy = await current(h);
    const mark = h.daemons!.mark();
    const output = recordingOutput();

    const code = await migrateLocal(h.engine, h.runner.name, { dryRun: false, force: false }, output, new Date());

    expect(code).toBe(0);
    const now = await current(h);
    expect(isLegacyRunnerToken(legacy.token)).toBe(true);
    expect(isLegacyRunnerToken(now.token)).toBe(false);
    expect(h.simulator.runner(legacy.runnerId)).toBeUndefined();
    expect(h.simulator.runner(now.runnerId)).toMatchObject({ ...SETTINGS, legacyToken: false, description: 'runner-a' });
    expect(await tableIds(h.fleet.hosts)).toEqual(h.fleet.hosts.map(() => [now.runnerId]));
    expect(h.daemons!.offlineSince(mark).offline).toBe(0);
    expect(await h.engine.ledger.replacementRequested(h.runner.secretId)).toBeUndefined();
    expect(output.lines.join('\n')).toMatch(/outage window runner-a: 0 ms \(old runner \d+ deleted/);
    expectNoTokens(captured(output.lines), await h.knownTokens());
  });

  it('keeps the legacy runner when a host fails mid-way, alerts naming it, and finishes the migration on the next rotate', async () => {
    harness = await legacyHarness(1_000);
    const h = harness;
    const legacy = await current(h);
    const down = h.fleet.hosts[0]!;
    h.daemons!.stop(down.name);
    const output = recordingOutput();

    const code = await migrateLocal(h.engine, h.runner.name, { dryRun: false, force: false }, output, new Date());

    expect(code).toBe(1);
    expect(await current(h)).toEqual(legacy);
    expect(h.simulator.accepts(legacy.token)).toBe(true);
    expect(h.alertLines.join('\n')).toContain(down.name);
    expect(await h.engine.ledger.replacementRequested(h.runner.secretId)).toBeDefined();

    h.daemons!.resume(down.name);
    const [run] = await rotateRunners(h.engine, [h.runner], output);

    expect(run?.error).toBeUndefined();
    expect(isLegacyRunnerToken((await current(h)).token)).toBe(false);
    expect(h.simulator.runner(legacy.runnerId)).toBeUndefined();
    expect(h.simulator.stats.byRoute['POST /user/runners']).toBe(1);
    expect(await h.engine.ledger.replacementRequested(h.runner.secretId)).toBeUndefined();
  });

  it('--cancel withdraws a migration that stalled, so the resumed rotation ends it and later ones reset', async () => {
    harness = await legacyHarness(1_000);
    const h = harness;
    h.daemons!.stop(h.fleet.hosts[0]!.name);
    const output = recordingOutput();
    expect(await migrateLocal(h.engine, h.runner.name, { dryRun: false, force: false }, output, new Date())).toBe(1);
    expect(await h.engine.ledger.replacementRequested(h.runner.secretId)).toBeDefined();

    expect(await migrateLocal(h.engine, h.runner.name, { dryRun: false, force: false, cancel: true }, output, new Date())).toBe(0);

    expect(await h.engine.ledger.replacementRequested(h.runner.secretId)).toBeUndefined();
    expect(output.lines.join('\n')).toContain('no replacement requested any more');
  });

  it('says there is nothing to migrate for a runner already on a glrt- token, unless forced', async () => {
    harness = await startHarness({ replace: { strategy: false } });
    const h = harness;
    const output = recordingOutput();

    expect(await migrateLocal(h.engine, h.runner.name, { dryRun: false, force: false }, output, new Date())).toBe(0);

    expect(output.lines.join('\n')).toContain('nothing to migrate');
    expect(h.simulator.stats.byRoute['POST /user/runners']).toBeUndefined();

    expect(await migrateLocal(h.engine, h.runner.name, { dryRun: false, force: true }, output, new Date())).toBe(0);

    expect(h.simulator.stats.byRoute['POST /user/runners']).toBe(1);
    expect(h.simulator.runner(h.runner.runnerId)).toBeUndefined();
  });

  it('refuses while another rotation is in progress, so that it cannot finish as a reset and drop the request', async () => {
    harness = await legacyHarness();
    const h = harness;
    await h.engine.store.beginRotation(h.runner.secretId, '11111111-2222-4333-8444-555555555555');

    const error = await migrateLocal(h.engine, h.runner.name, { dryRun: false, force: false }, recordingOutput(), new Date()).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'RotationInProgressError' });
    expect(await h.engine.ledger.replacementRequested(h.runner.secretId)).toBeUndefined();
  });
});

/** The CLI's view of the harness's stack: its AWS fleet file (with the admin token secret) and Secrets Manager. */
function awsCliOf(h: AwsHarness) {
  const fleetText = JSON.stringify({
    adminTokenSecrets: { [h.simulator.url]: 'gitlab-runner-rotator/admin' },
    runners: [{ name: RUNNER, gitlabUrl: h.simulator.url, runnerId: h.fleet.runners[0]!.id, hosts: { tag: { key: 'gitlab-runner', value: RUNNER } } }],
  });
  return createAwsCli(fleetText, 'fleet.aws.json', h.clientsAs('Operator').secretsManager);
}

describe('rotator migrate --aws', () => {
  it('asks the stack for a replacement and the rotation hook moves the legacy runner over SSM with no host ever without a working runner', async () => {
    const h = await startAwsHarness({ adminToken: true, legacyToken: true });
    const daemons = followDaemons(h.clock, new RunnerDaemons(h.simulator.url, h.fleet.hosts, { intervalMs: 20, counts: isManagedTable }).start());
    aws = { harness: h, daemons };
    const handler = createHandler(() => h.engine, h.telemetry);
    h.secretsManager.rotationHook = (event) => handler(event, h.context);
    const legacyId = h.fleet.runners[0]!.id;
    const cli = awsCliOf(h);
    const mark = daemons.mark();
    const output = recordingOutput();

    const code = await migrateThroughStack(cli, RUNNER, { dryRun: false, force: false, ledgerTable: h.deployment.ledgerTableName }, output, new Date(), { dynamodb: h.clientsAs('Operator').dynamodb, gitlab: new GitLabAdapter() });
    await Promise.all(h.secretsManager.rotations);

    expect(code).toBe(0);
    expect(output.lines.join('\n')).toContain('migration started');
    const value = parseSecretValue((await h.store.getValue(h.secretArn, { stage: 'AWSCURRENT' }))!, 'test');
    expect(value.runnerId).not.toBe(legacyId);
    expect(isLegacyRunnerToken(value.token)).toBe(false);
    expect(h.simulator.runner(legacyId)).toBeUndefined();
    expect(await tableIds(h.fleet.hosts)).toEqual(h.fleet.hosts.map(() => [value.runnerId]));
    expect(daemons.offlineSince(mark).offline).toBe(0);
    expect(h.ssm.mock.commandCalls(SendCommandCommand).map((call) => call.args[0].input.Parameters?.Mode?.[0])).toEqual(['add', 'remove']);
    expect(await h.ledger.replacementRequested(h.secretArn)).toBeUndefined();
    expectNoTokens(captured(output.lines, h.logLines, h.published), h.knownTokens());
  });

  it('withdraws its request when RotateSecret refuses, and keeps it when the answer is unclear', async () => {
    const h = await startAwsHarness({ adminToken: true, legacyToken: true });
    aws = { harness: h, daemons: new RunnerDaemons(h.simulator.url, []) };
    const cli = awsCliOf(h);
    const migrate = (output = recordingOutput()) =>
      migrateThroughStack(cli, RUNNER, { dryRun: false, force: false, ledgerTable: h.deployment.ledgerTableName }, output, new Date(), { dynamodb: h.clientsAs('Operator').dynamodb, gitlab: new GitLabAdapter() }).catch((e: unknown) => e);

    h.secretsManager.failNext('RotateSecret', 1);
    const output = recordingOutput();
    expect(await migrate(output)).toMatchObject({ name: 'InternalServiceError' });
    expect(await h.ledger.replacementRequested(h.secretArn)).toBeDefined();
    expect(output.lines.join('\n')).toContain('rotator migrate --aws --cancel builders');

    (h.secretsManager as unknown as { secrets: Map<string, { rotationEnabled: boolean }> }).secrets.get(`gitlab-runner-rotator/${RUNNER}`)!.rotationEnabled = false;
    expect(await migrate()).toMatchObject({ name: 'InvalidRequestException' });
    expect(await h.ledger.replacementRequested(h.secretArn)).toBeUndefined();
  });

  it('needs the ledger table to start, and says where to find it', async () => {
    const h = await startAwsHarness({ adminToken: true, legacyToken: true });
    aws = { harness: h, daemons: new RunnerDaemons(h.simulator.url, []) };
    const cli = awsCliOf(h);

    const error = await migrateThroughStack(cli, RUNNER, { dryRun: false, force: false, ledgerTable: undefined }, recordingOutput(), new Date()).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'InvalidInputError' });
    expect((error as Error).message).toContain('LedgerTableName');
  });
});
