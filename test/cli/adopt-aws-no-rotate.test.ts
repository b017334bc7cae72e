/**
 * `adopt --aws --no-rotate`: the token is checked with GitLab (the simulator, over HTTP) before it is stored
 * in Secrets Manager (faked at the SDK boundary), so the secret records its real expiry and runner.
 */
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitLabAdapter } from '../../src/adapters/gitlab/gitlab.ts';
import { adoptAws, createAwsCli } from '../../src/cli/aws-commands.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { GitLabSimulator } from '../../src/simulator/gitlab-simulator.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const sm = mockClient(SecretsManagerClient);
let dir: string;
let simulator: GitLabSimulator;
let runner: { id: number; token: string };
let tokenFile: string;
let fleetText: string;

beforeEach(async () => {
  sm.reset();
  dir = await mkdtemp(join(tmpdir(), 'adopt-aws-'));
  simulator = new GitLabSimulator({ tokenLifetimeSeconds: 30 * 86_400 });
  const url = await simulator.start();
  runner = simulator.addRunner({ description: 'builders' });
  tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${runner.token}\n`, { mode: 0o600 });
  fleetText = JSON.stringify({ runners: [{ name: 'builders', gitlabUrl: url, runnerId: runner.id, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } }] });
  sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ adopted: false, runner_id: runner.id, url, password: 'placeholder' }) });
  sm.on(PutSecretValueCommand).resolves({});
});

afterEach(async () => {
  await simulator.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('adopt --aws --no-rotate', () => {
  it('stores the token with the expiry GitLab gives for it', async () => {
    const output = recordingOutput();

    await adoptAws(createAwsCli(fleetText, 'fleet.aws.json', new SecretsManagerClient({ region: 'eu-west-1' })), 'builders', tokenFile, false, output, new Date(), undefined, new GitLabAdapter());

    const [put] = sm.commandCalls(PutSecretValueCommand);
    const stored = JSON.parse(put?.args[0].input.SecretString ?? '{}') as { token_expires_at?: string; runner_id?: number };
    expect(stored.runner_id).toBe(runner.id);
    expect(stored.token_expires_at).toBe(simulator.runner(runner.id)?.tokenExpiresAt?.toISOString());
    expectNoTokens(captured(output.lines), [runner.token]);
  });

  it('refuses a token of another runner, naming its id, and stores nothing', async () => {
    const cli = createAwsCli(fleetText, 'fleet.aws.json', new SecretsManagerClient({ region: 'eu-west-1' }));

    const attempt = adoptAws(cli, 'builders', tokenFile, false, recordingOutput(), new Date(), runner.id + 1, new GitLabAdapter());

    await expect(attempt).rejects.toThrow(`runner "builders": GitLab says the token belongs to runner ${runner.id}, not ${runner.id + 1}: set runnerId in the fleet file, or pass --runner-id ${runner.id}`);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });
});
