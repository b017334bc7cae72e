/**
 * The convergence document's runCommand (host/run-update-runner-token.sh in mode converge) in real sh and
 * bash on real files, with the stand-in AWS CLI of the fake SSM (labels, --query as the real CLI prints it).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHostConvergeDocument } from '../../src/adapters/aws/host-update-document.ts';
import { FAKE_AWS_CLI } from '../support/fake-ssm.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf';
const CURRENT = '6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5';
const PENDING = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const TOKEN = `glrt-${randomBytes(15).toString('base64url')}`;
const PENDING_TOKEN = `glrt-${randomBytes(15).toString('base64url')}`;
/** several-runners.toml: runner 7 holds glrt-OLDTOKEN-A, recorded to expire 2025-06-01. */
const OLD_TOKEN = 'glrt-OLDTOKEN-A';

const value = (token: string, fields: Record<string, unknown> = {}) =>
  JSON.stringify({ runner_id: 7, url: 'https://gitlab.example.com', token, token_expires_at: '2026-03-01T12:00:00.000Z', token_obtained_at: '2025-12-01T12:00:00.000Z', ...fields });

let root: string;
let script: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'converge-'));
  script = join(root, '_script.sh');
  const step = (buildHostConvergeDocument().mainSteps as Array<{ inputs: { runCommand: string[] } }>)[0];
  await writeFile(script, `${step?.inputs.runCommand.join('\n')}\n`);
  await mkdir(join(root, 'bin'));
  await writeFile(join(root, 'bin', 'aws'), FAKE_AWS_CLI, { mode: 0o755 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Versions {
  [versionId: string]: { value: string; labels: string[] };
}

/** Runs the document as the agent would, on a copy of several-runners.toml, with the secret's versions as given. */
async function converge(versions: Versions, env: Record<string, string> = {}) {
  const work = await mkdtemp(join(root, 'host-'));
  const secrets = join(work, 'secrets');
  await mkdir(secrets);
  for (const [id, { value: text, labels }] of Object.entries(versions)) {
    await writeFile(join(secrets, `${id}.json`), text);
    for (const label of labels) await writeFile(join(secrets, `stage-${label}`), id);
  }
  const config = join(work, 'config.toml');
  await copyFile(join(FIXTURES, 'several-runners.toml'), config);
  const calls = join(work, 'calls');
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      'sh',
      [script],
      {
        env: {
          PATH: `${join(root, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          HOME: work,
          FAKE_AWS_CALLS: calls,
          FAKE_AWS_SECRETS: secrets,
          FAKE_AWS_SECRET_ID: SECRET_ARN,
          UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false',
          UPDATE_RUNNER_TOKEN_PKILL: 'false',
          SSM_SecretArn: SECRET_ARN,
          SSM_ConfigPath: config,
          SSM_ReloadMode: 'none',
          ...env,
        },
      },
      (error, stdout, stderr) => done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr }),
    );
  });
  const text = await readFile(config, 'utf8');
  const runner7 = (parse(text) as { runners: Array<Record<string, unknown>> }).runners.find((r) => r.id === 7);
  const awsCalls = (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { ...result, text, token: runner7?.token, expiresAt: runner7?.token_expires_at, awsCalls };
}

const expectNoToken = (run: { stdout: string; stderr: string }) => {
  for (const token of [TOKEN, PENDING_TOKEN, OLD_TOKEN]) expect(`${run.stdout}${run.stderr}`).not.toContain(token);
};

describe('the convergence document on a host', () => {
  it('installs AWSCURRENT, with the runner id, url and expiry read from its value, in three reads of the one secret', async () => {
    const run = await converge({ [CURRENT]: { value: value(TOKEN), labels: ['AWSCURRENT'] } });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(/^status=updated runner_id=7 config=\S+ system_id=\S* reload=none$/);
    expect(run.token).toBe(TOKEN);
    expect((run.expiresAt as Date).toISOString()).toBe('2026-03-01T12:00:00.000Z');
    // AWSCURRENT's id and fields (token blanked), AWSPENDING's id, then the token of that very version.
    expect(run.awsCalls).toEqual([`${SECRET_ARN}\t\tAWSCURRENT`, `${SECRET_ARN}\t\tAWSPENDING`, `${SECRET_ARN}\t${CURRENT}\t`]);
    expectNoToken(run);
  });

  it('goes on when AWSPENDING is left on the version that is AWSCURRENT (a finished rotation)', async () => {
    const run = await converge({ [CURRENT]: { value: value(TOKEN), labels: ['AWSCURRENT', 'AWSPENDING'] } });
    expect(run.code).toBe(0);
    expect(run.token).toBe(TOKEN);
  });

  it('installs nothing while another version is AWSPENDING, and says so in one line', async () => {
    const run = await converge({
      [CURRENT]: { value: value(TOKEN), labels: ['AWSCURRENT'] },
      [PENDING]: { value: value(PENDING_TOKEN), labels: ['AWSPENDING'] },
    });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(/^status=skipped reason=rotation-open runner_id=7 config=\S+$/);
    expect(run.token).toBe(OLD_TOKEN);
    // The token was never read.
    expect(run.awsCalls.some((call) => call.includes(`\t${CURRENT}\t`))).toBe(false);
  });

  it("keeps a token whose recorded expiry is later than AWSCURRENT's: a rotation got there after this run read AWSCURRENT", async () => {
    const run = await converge({ [CURRENT]: { value: value(TOKEN, { token_expires_at: '2025-01-01T00:00:00.000Z' }), labels: ['AWSCURRENT'] } });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status=kept-newer runner_id=7 /);
    expect(run.token).toBe(OLD_TOKEN);
  });

  it("installs nothing before adoption, when the value is still the stack's placeholder", async () => {
    const run = await converge({ [CURRENT]: { value: JSON.stringify({ adopted: false, runner_id: 7, url: 'https://gitlab.example.com', placeholder: 'x'.repeat(32) }), labels: ['AWSCURRENT'] } });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(/^status=skipped reason=not-adopted config=\S+$/);
    expect(run.token).toBe(OLD_TOKEN);
  });

  it('fails with 8 naming the secret and the error code when the instance role may not read it, and writes nothing', async () => {
    const run = await converge({ [CURRENT]: { value: value(TOKEN), labels: ['AWSCURRENT'] } }, { FAKE_AWS_SECRET_ID: 'another-secret' });
    expect(run.code).toBe(8);
    expect(run.stderr.trim()).toBe(`run-update-runner-token: error: cannot read the AWSCURRENT version of ${SECRET_ARN}: AccessDeniedException (aws exit 254)`);
    expect(run.token).toBe(OLD_TOKEN);
  });

  it('fails with 9 when AWSCURRENT holds no runner token value, and writes nothing', async () => {
    const run = await converge({ [CURRENT]: { value: JSON.stringify({ token: TOKEN }), labels: ['AWSCURRENT'] } });
    expect(run.code).toBe(9);
    expect(run.stderr).toContain('is not a runner token value');
    expect(run.token).toBe(OLD_TOKEN);
    expectNoToken(run);
  });

  it('needs only the secret and the host side: a missing SecretArn is a usage error (2)', async () => {
    const run = await converge({}, { SSM_SecretArn: '' });
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe('run-update-runner-token: error: parameter SSM_SecretArn is missing or empty (the SSM document sets it)');
  });
});
