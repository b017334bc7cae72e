/**
 * Convergence as deployed: the stack's State Manager associations, applied by the fake State Manager
 * (test/support/fake-ssm.ts applyAssociation: the association's document on its targets, with its
 * parameters, under the instance's role), run the real convergence document in sh/bash on the hosts'
 * config.toml files. Every host read is judged against the deployed host read policy when the harness closes.
 */
import { cp, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse } from 'smol-toml';
import { afterEach, describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/rotate-secret.ts';
import { checkHosts } from '../../src/simulator/simulated-fleet.ts';
import { RUNNER, startAwsHarness, type AwsHarness, closeCheckingLogs } from '../support/aws-harness.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
let harness: AwsHarness | undefined;

afterEach(async () => {
  await closeCheckingLogs(harness);
  harness = undefined;
});

async function rotate(h: AwsHarness, steps: readonly string[] = STEPS): Promise<string> {
  const handler = createHandler(() => h.engine, h.telemetry);
  const versionId = await h.store.startRotation(h.secretArn);
  for (const Step of steps) await handler({ Step, SecretId: h.secretArn, ClientRequestToken: versionId }, h.context);
  return versionId;
}

async function currentToken(h: AwsHarness): Promise<string> {
  const value = await h.store.getValue(h.secretArn, { stage: 'AWSCURRENT' });
  return (JSON.parse(value ?? '{}') as { token: string }).token;
}

async function tokenIn(configPath: string, runnerId: number): Promise<unknown> {
  const document = parse(await readFile(configPath, 'utf8')) as { runners: Array<Record<string, unknown>> };
  return document.runners.find((r) => r.id === runnerId)?.token;
}

const statusOf = (output: string) => /status=(\S+)/.exec(output)?.[1];

describe("the stack's host convergence", () => {
  it('gives a host that missed a rotation the current token at the next association run, and leaves the others already current', async () => {
    harness = await startAwsHarness();
    const missed = harness.instances[1]?.instanceId ?? '';
    harness.ssm.offline.add(missed);
    await rotate(harness);
    const token = await currentToken(harness);
    expect(await tokenIn(harness.fleet.hosts[1]?.configPath ?? '', harness.fleet.runners[0]?.id ?? 0)).not.toBe(token);

    harness.ssm.offline.delete(missed);
    const runs = await harness.applyAssociations();

    expect(runs.map((r) => [r.instanceId, r.status, statusOf(r.output)]).sort()).toEqual(
      harness.instances.map((i) => [i.instanceId, 'Success', i.instanceId === missed ? 'updated' : 'already-current']).sort(),
    );
    for (const check of await checkHosts(harness.fleet.hosts, harness.fleet.url)) {
      expect(check.token === token && check.accepted, `${check.host.name} holds AWSCURRENT and GitLab takes it`).toBe(true);
    }
    // No rotation: GitLab was not asked for a token, the secret kept its versions.
    expect(Object.keys(harness.secretsManager.stages(`gitlab-runner-rotator/${RUNNER}`))).toHaveLength(2);
    expectNoTokens(captured(runs.map((r) => r.output)), harness.knownTokens());
    expect(await harness.iamRefusals()).toEqual([]);
  });

  it('installs nothing while a rotation is open: the hook is pushing AWSPENDING, and AWSCURRENT is already revoked at GitLab', async () => {
    harness = await startAwsHarness();
    await rotate(harness, ['createSecret', 'setSecret']);
    const runnerId = harness.fleet.runners[0]?.id ?? 0;
    const before = await Promise.all(harness.fleet.hosts.map((h) => readFile(h.configPath, 'utf8')));

    const runs = await harness.applyAssociations();

    expect(runs).toHaveLength(harness.instances.length);
    for (const run of runs) {
      expect(run.status).toBe('Success');
      // The fake maps the association's /config.toml into the instance's folder.
      expect(run.output.trim()).toMatch(new RegExp(`^status=skipped reason=rotation-open runner_id=${runnerId} config=/\\S+/config\\.toml$`));
    }
    expect(await Promise.all(harness.fleet.hosts.map((h) => readFile(h.configPath, 'utf8')))).toEqual(before);
    // The hosts hold the pending token, which GitLab takes; the promotion then finds them current.
    for (const check of await checkHosts(harness.fleet.hosts, harness.fleet.url)) expect(check.accepted).toBe(true);
  });

  it('gives an instance that joins the runner tag from an old image the current token when State Manager applies the association to it', async () => {
    harness = await startAwsHarness();
    const image = harness.fleet.hosts[0];
    const joined = join(dirname(dirname(image?.configPath ?? '')), 'joined-later');
    await cp(dirname(image?.configPath ?? ''), joined, { recursive: true });
    await rotate(harness);
    harness.ssm.instances.push({ instanceId: `i-0${randomBytes(8).toString('hex')}`, tags: { 'gitlab-runner': RUNNER }, root: joined });

    const runs = await harness.applyAssociations();

    expect(runs.filter((r) => statusOf(r.output) === 'updated')).toHaveLength(1);
    expect(await tokenIn(join(joined, 'config.toml'), harness.fleet.runners[0]?.id ?? 0)).toBe(await currentToken(harness));
    expect(await harness.iamRefusals()).toEqual([]);
  });
});
