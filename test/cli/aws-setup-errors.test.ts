/**
 * `--aws` on a machine with no AWS set up: the real SDK clients (no mock) fail before any request is sent,
 * and the CLI says what to set, as bad input (exit 2). The instance metadata service is turned off, so no
 * provider reaches for the network.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';

const FLEET = fileURLToPath(new URL('../../fleet.aws.example.json', import.meta.url));
const NAMES = ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_EC2_METADATA_DISABLED', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_WEB_IDENTITY_TOKEN_FILE'];
let saved: Record<string, string | undefined>;

beforeEach(() => {
  saved = Object.fromEntries(NAMES.map((name) => [name, process.env[name]]));
  for (const name of NAMES) delete process.env[name];
  process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});

afterEach(() => {
  for (const name of NAMES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

describe('--aws with no AWS set up', () => {
  it('with no region, exits 2 and says to set AWS_REGION', async () => {
    const output = recordingOutput();

    expect(await main(['--fleet', FLEET, 'rotate', '--aws', 'docker-builders'], output)).toBe(2);

    expect(output.lines).toEqual([expect.stringMatching(/^rotator: AWS region: is not set: set AWS_REGION \(e\.g\. AWS_REGION=eu-west-1\)/)]);
  });

  it('with a region and no credentials, exits 2 and says how to sign in', async () => {
    process.env.AWS_REGION = 'eu-west-1';
    const output = recordingOutput();

    expect(await main(['--fleet', FLEET, 'rotate', '--aws', 'docker-builders'], output)).toBe(2);

    expect(output.lines.join('\n')).toMatch(/rotator: AWS credentials: none found \(.*\): set AWS_PROFILE, or run `aws sso login`/);
    const status = recordingOutput();
    expect(await main(['--fleet', FLEET, 'status', '--aws'], status)).toBe(2);
    expect(status.lines).toEqual([expect.stringMatching(/^rotator: AWS credentials: none found/)]);
  });

  it('doctor --aws with no credentials names the credentials, not the hosts\' SSM agent (exit 2)', async () => {
    process.env.AWS_REGION = 'eu-west-1';
    const output = recordingOutput();

    expect(await main(['doctor', '--aws', 'docker-builders', '--fleet', FLEET, '--wait-seconds', '5'], output)).toBe(2);

    expect(output.lines).toEqual([expect.stringMatching(/^rotator: AWS credentials: none found/)]);
  });
});
