import { readFile } from 'node:fs/promises';
import { SendCommandCommand } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/rotate-secret.ts';
import { adoptAws, createAwsCli, rotateAws } from '../../src/cli/aws-commands.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { RUNNER_TAG } from '../../src/config/runner-tags.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { ROTATOR_SYSTEM_ID } from '../../src/core/rotator-identity.ts';
import { hostHoldsVersion } from '../../src/core/types.ts';
import { checkHosts } from '../../src/simulator/simulated-fleet.ts';
import { RUNNER, startAwsHarness, type AwsHarness, closeCheckingLogs } from '../support/aws-harness.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
let harness: AwsHarness | undefined;

afterEach(async () => {
  await closeCheckingLogs(harness);
  harness = undefined;
});

const resets = (h: AwsHarness) => Object.entries(h.simulator.stats.byRoute).filter(([route]) => route.includes('reset_authentication_token')).reduce((n, [, c]) => n + c, 0);
const handlerOf = (h: AwsHarness) => createHandler(() => h.engine, h.telemetry);
const logRecords = (h: AwsHarness) => h.logLines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

async function expectEveryHostOnCurrent(h: AwsHarness): Promise<void> {
  const current = await h.store.getValue(h.secretArn, { stage: 'AWSCURRENT' });
  const token = (JSON.parse(current ?? '{}') as { token?: string }).token;
  expect(token && h.simulator.accepts(token)).toBe(true);
  for (const check of await checkHosts(h.fleet.hosts, h.fleet.url)) {
    expect(check.token === token && check.accepted && check.selfRotationDisabled, `${check.host.name} holds AWSCURRENT`).toBe(true);
  }
}

describe('the rotation hook', () => {
  it('rotates through the four steps: GitLab reset, store, SSM push to every host, promote', async () => {
    harness = await startAwsHarness();
    const handler = handlerOf(harness);
    const versionId = await harness.store.startRotation(harness.secretArn);
    for (const Step of STEPS) await handler({ Step, SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context);
    expect(harness.secretsManager.stages(`gitlab-runner-rotator/${RUNNER}`)[versionId]).toEqual(['AWSCURRENT']);
    await expectEveryHostOnCurrent(harness);
    const last = await harness.ledger.lastRotation(harness.secretArn);
    expect(last?.hosts.map((h) => h.host).sort()).toEqual(harness.instances.map((i) => i.instanceId).sort());
    expect(last?.hosts.every((h) => h.status === 'updated' && /^s_/.test(h.systemId ?? ''))).toBe(true);
    expect(harness.published).toEqual([]);
    const finished = logRecords(harness).find((r) => r.message === 'rotation finished');
    expect(finished).toMatchObject({ level: 'INFO', secretId: harness.secretArn, rotation: { toVersionId: versionId } });
    expect(typeof finished?.outageWindowMs).toBe('number');
    // The command carried the secret ARN and version, never the token.
    const sent = harness.ssm.mock.commandCalls(SendCommandCommand).map((call) => call.args[0].input);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.Parameters).toMatchObject({ SecretArn: [harness.secretArn], VersionId: [versionId] });
    expectNoTokens(captured(sent), harness.knownTokens());
  });

  it('leaves every host\'s runner-manager record as the host left it: GitLab sees only the rotator\'s own record', async () => {
    harness = await startAwsHarness();
    const runnerId = harness.fleet.runners[0]?.id ?? 0;
    const contacted = () => new Map(harness!.simulator.runner(runnerId)!.managers.map((m) => [m.systemId, m.contactedAt.getTime()]));
    const before = contacted();
    expect(before.size).toBe(harness.fleet.hosts.length);
    const handler = handlerOf(harness);
    const versionId = await harness.store.startRotation(harness.secretArn);

    for (const Step of STEPS) await handler({ Step, SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context);

    const after = contacted();
    // The reset and testSecret's verify are filed under the rotator; no host looks contacted by them.
    expect([...after.keys()].sort()).toEqual([...before.keys(), ROTATOR_SYSTEM_ID].sort());
    for (const [systemId, at] of before) expect(after.get(systemId), systemId).toBe(at);
  });

  it('mints one token and pushes once per host change when every step runs twice', async () => {
    harness = await startAwsHarness();
    const handler = handlerOf(harness);
    const versionId = await harness.store.startRotation(harness.secretArn);
    const outcomes = [];
    for (const Step of STEPS) {
      for (let run = 0; run < 2; run += 1) outcomes.push(await handler({ Step, SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context));
    }
    expect(resets(harness)).toBe(1);
    expect(outcomes[1]?.skipped).toContain('already holds a token');
    expect(outcomes[3]?.hosts?.every((h) => h.status === 'already-current')).toBe(true);
    expect(outcomes[7]?.skipped).toContain('already AWSCURRENT');
    await expectEveryHostOnCurrent(harness);
  });

  it('rotates now from the CLI: RotateSecret, then Secrets Manager runs the hook', async () => {
    harness = await startAwsHarness();
    const handler = handlerOf(harness);
    const h = harness;
    harness.secretsManager.rotationHook = (event) => handler(event, h.context);
    const fleetText = JSON.stringify({ runners: [{ name: RUNNER, gitlabUrl: harness.simulator.url, runnerId: harness.fleet.runners[0]?.id, hosts: { tag: { key: 'gitlab-runner', value: RUNNER } } }] });
    const output = recordingOutput();
    await rotateAws(createAwsCli(fleetText, 'fleet.aws.json', harness.clientsAs('Operator').secretsManager), RUNNER, output);
    await Promise.all(harness.secretsManager.rotations);
    expect(output.lines.join('\n')).toContain('rotation started');
    await expectEveryHostOnCurrent(harness);
    expectNoTokens(captured(output.lines), harness.knownTokens());
  });

  it('recovers by id with the admin token from its own secret when GitLab rejects the current token', async () => {
    harness = await startAwsHarness({ adminToken: true });
    harness.simulator.expireToken(harness.fleet.runners[0]?.id ?? 0);
    const handler = handlerOf(harness);
    const versionId = await harness.store.startRotation(harness.secretArn);
    for (const Step of STEPS) await handler({ Step, SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context);
    expect(logRecords(harness).find((r) => r.message === 'token-reset')).toMatchObject({ via: 'admin-token' });
    await expectEveryHostOnCurrent(harness);
  });

  it('fails createSecret naming the runner and the fix when no admin token is configured, and logs it without a token', async () => {
    harness = await startAwsHarness();
    harness.simulator.revokeToken(harness.fleet.runners[0]?.id ?? 0);
    const versionId = await harness.store.startRotation(harness.secretArn);
    const error = await handlerOf(harness)({ Step: 'createSecret', SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context).catch((e: unknown) => e);
    expect((error as Error).message).toContain(`runner ${harness.fleet.runners[0]?.id}`);
    const logged = logRecords(harness).find((r) => r.message === 'rotation step failed');
    expect(logged).toMatchObject({ level: 'ERROR', step: 'createSecret' });
    expect(String(logged?.fix)).toContain('reset_authentication_token');
    expect(await harness.store.getValue(harness.secretArn, { versionId })).toBeUndefined();
    expect(harness.published.map((a) => [a.kind, a.runner])).toEqual([['admin-token-missing', RUNNER]]);
    expect(harness.published[0]?.nextStep).toContain('admin token secret');
  });

  it('records an offline host as undeliverable, still promotes, and names it in the log', async () => {
    harness = await startAwsHarness();
    const offline = harness.instances[1]?.instanceId ?? '';
    harness.ssm.offline.add(offline);
    const handler = handlerOf(harness);
    const versionId = await harness.store.startRotation(harness.secretArn);
    for (const Step of STEPS) await handler({ Step, SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context);
    const last = await harness.ledger.lastRotation(harness.secretArn);
    expect(last?.hosts.find((h) => h.host === offline)?.status).toBe('undeliverable');
    expect(last?.hosts.filter(hostHoldsVersion)).toHaveLength(2);
    expect(logRecords(harness).some((r) => r.level === 'WARN' && String(r.message).includes(offline))).toBe(true);
    const offlineHost = harness.fleet.hosts[1];
    expect(await readFile(offlineHost?.configPath ?? '', 'utf8')).toContain(harness.fleet.tokens[1] ?? 'missing');
    expect(harness.published).toHaveLength(1);
    expect(harness.published[0]).toMatchObject({ kind: 'host-missed', runner: RUNNER, severity: 'critical', hosts: [{ host: offline, status: 'undeliverable' }], runbook: 'runbook-host-missed' });
    expect(harness.published[0]?.logUrl).toContain('log-group/rotate-secret');
  });

  it('rotates a runner known only from its secret\'s tags: no fleet the Lambda was given lists it', async () => {
    harness = await startAwsHarness();
    // Registered after the Lambdas were deployed: only the secret's tags say it exists.
    harness.secretsManager.setTags(harness.secretArn, { [RUNNER_TAG.name]: 'late-joiner' });
    expect(harness.engine.env.fleet).not.toHaveProperty('runners');
    expect(harness.fleetText).not.toContain('late-joiner');
    const offline = harness.instances[0]?.instanceId ?? '';
    harness.ssm.offline.add(offline);
    const handler = handlerOf(harness);
    const versionId = await harness.store.startRotation(harness.secretArn);

    for (const Step of STEPS) await handler({ Step, SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context);

    expect(harness.secretsManager.stages(`gitlab-runner-rotator/${RUNNER}`)[versionId]).toEqual(['AWSCURRENT']);
    const last = await harness.ledger.lastRotation(harness.secretArn);
    expect(last?.hosts.filter(hostHoldsVersion).map((h) => h.host).sort()).toEqual(harness.instances.slice(1).map((i) => i.instanceId).sort());
    expect(harness.published.map((a) => [a.kind, a.runner])).toEqual([['host-missed', 'late-joiner']]);
    expect(logRecords(harness).find((r) => r.message === 'rotation finished')).toMatchObject({ runner: 'late-joiner' });
  });

  it('fails the step naming the secret and the tag when its tags make no runner, before GitLab is asked anything', async () => {
    harness = await startAwsHarness();
    harness.secretsManager.setTags(harness.secretArn, { [RUNNER_TAG.runnerId]: 'twelve' });
    const versionId = await harness.store.startRotation(harness.secretArn);
    const requests = harness.simulator.stats.requests;

    const error = await handlerOf(harness)({ Step: 'createSecret', SecretId: harness.secretArn, ClientRequestToken: versionId }, harness.context).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toContain(`secret gitlab-runner-rotator/${RUNNER}: tag ${RUNNER_TAG.runnerId}`);
    expect(harness.simulator.stats.requests).toBe(requests);
    expect(await harness.store.getValue(harness.secretArn, { versionId })).toBeUndefined();
    expect(logRecords(harness).find((r) => r.message === 'rotation step failed')).toMatchObject({ level: 'ERROR', step: 'createSecret', runner: RUNNER, error: { name: 'InvalidInputError' } });
  });

  it('refuses an event that is not a rotation step, before any call', async () => {
    harness = await startAwsHarness();
    const error = await handlerOf(harness)({ Step: 'dropSecret', SecretId: harness.secretArn, ClientRequestToken: 'x'.repeat(36) }, harness.context).catch((e: unknown) => e);
    expect((error as Error).message).toContain('rotation event: Step');
    expect(harness.simulator.stats.requests).toBe(harness.fleet.hosts.length);
  });
});

describe('adopting a runner into the deployed stack', () => {
  it('stores the token from a file as AWSCURRENT and rotates at once, printing no token', async () => {
    harness = await startAwsHarness();
    const h = harness;
    const handler = handlerOf(h);
    h.secretsManager.rotationHook = (event) => handler(event, h.context);
    const tokenFile = `${h.fleet.hosts[0]?.configPath}.token`;
    await import('node:fs/promises').then((fs) => fs.writeFile(tokenFile, `${h.fleet.tokens[1]}\n`, { mode: 0o600 }));
    const fleetText = JSON.stringify({ runners: [{ name: RUNNER, gitlabUrl: h.simulator.url, runnerId: h.fleet.runners[0]?.id, hosts: { tag: { key: 'gitlab-runner', value: RUNNER } } }] });
    const output = recordingOutput();
    await adoptAws(createAwsCli(fleetText, 'fleet.aws.json', h.clientsAs('Operator').secretsManager), RUNNER, tokenFile, true, output, new Date());
    await Promise.all(h.secretsManager.rotations);
    expect(output.lines.join('\n')).toMatch(/stored the token .* as AWSCURRENT[\s\S]*rotation started/);
    await expectEveryHostOnCurrent(h);
    expectNoTokens(captured(output.lines), h.knownTokens());
  });
});
