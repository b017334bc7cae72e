/**
 * Minimal counterexamples of what the property tests in this folder found (F1-F6), and two more found by
 * probing next to them (F7, F8): each states the contract; all are fixed and stay as regression tests.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostUpdateCommandParameters } from '../../src/adapters/aws/host-update-document.ts';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { parseAwsFleetConfig } from '../../src/config/aws-fleet-config.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { parseRotationEvent, parseRotationOutcomeEvent } from '../../src/core/rotation-event.ts';
import { parseSecretValue, serializeSecretValue } from '../../src/core/secret-value.ts';
import { listing, runUpdater, tomlAccepts, workspaces } from './updater-harness.ts';

let ws: Awaited<ReturnType<typeof workspaces>>;
beforeAll(async () => {
  ws = await workspaces('found-bugs-');
});
afterAll(async () => {
  await ws.dispose();
});

const RUNNER = [
  '[[runners]]',
  '  name = "r"',
  '  url = "https://gitlab.example.com"',
  '  id = 1',
  '  token = "glrt-OLD-aaaaaaaaaaaaaaaa"',
  '  executor = "docker"',
  '  [runners.docker]',
  '    image = "alpine"',
  '',
].join('\n');

/** The runner table with `line` added after `executor`. */
const withLine = (line: string): string => RUNNER.replace('  executor = "docker"\n', `  executor = "docker"\n${line}\n`);

/** Invariant 4: malformed TOML is left byte-identical, with a non-zero exit and one stderr line. */
async function expectRefused(text: string): Promise<void> {
  expect(tomlAccepts(text), 'smol-toml accepts this text: not a counterexample').toBe(false);
  const w = await ws.create(text, 0o600);
  const r = await runUpdater(['--config', w.config, '--runner-id', '1', '--url', 'https://gitlab.example.com', '--token-file', w.tokenFile, '--reload', 'none']);
  expect({ code: r.code === 0 ? 0 : 'non-zero', stdout: r.stdout }).toEqual({ code: 'non-zero', stdout: '' });
  expect(r.stderr).toMatch(/^update-runner-token: error: [^\n]+\n$/);
  expect((await readFile(w.config)).equals(w.original)).toBe(true);
  expect(await listing(w.dir)).toEqual(['config.toml', 'new-token']);
}

describe('F1: the host updater accepts a table defined twice', () => {
  it('refuses a [runners.docker] header repeated in the same runner', async () => {
    await expectRefused(`${RUNNER}  [runners.docker]\n    privileged = true\n`);
  });
  it('refuses [session_server] defined twice', async () => {
    await expectRefused(`[session_server]\n  session_timeout = 1800\n[session_server]\n  listen_address = "0.0.0.0:8093"\n\n${RUNNER}`);
  });
  it('refuses a table defined by dotted keys and again by a header', async () => {
    await expectRefused(withLine('  docker.privileged = true'));
  });
});

describe('F2: the host updater accepts scalars that are not TOML', () => {
  it.each([
    ['a number with a leading zero', '  limit = 01'],
    ['a doubled underscore in a number', '  limit = 1__0'],
    ['a trailing underscore in a number', '  limit = 1_'],
    ['an underscore right after 0x', '  limit = 0x_1'],
    ['month 13', '  token_expires_at = 2024-13-01T00:00:00Z'],
    ['hour 25', '  start = 25:00:00'],
    ['an offset of +25:00', '  token_expires_at = 1979-05-27T07:32:00+25:00'],
    ['an unknown escape in a basic string', '  shell = "\\q"'],
    ['a \\u escape with two hex digits', '  shell = "\\u12"'],
  ])('refuses %s', async (_what, line) => {
    await expectRefused(withLine(line));
  });
});

describe('F3: the host updater does not check what separates or fills arrays and inline tables', () => {
  it.each([
    ['a bare word as an array element', '  volumes = ["/cache", garbage]'],
    ['a bare word on its own line inside a multi-line array', '  volumes = [\n    "/cache",\n    garbage\n  ]'],
    ['a header-like line inside a multi-line array (read as nested arrays and a bare word)', '  volumes = [\n    "/cache",\n    [[runners]] trailing\n  ]'],
    ['an empty array element', '  volumes = [1,,2]'],
    ['array elements without a comma', '  volumes = [1 2]'],
    ['inline-table keys without a comma', '  feature_flags = {FF_USE_FASTZIP=true FF_SCRIPT_SECTIONS=true}'],
    ['an empty inline-table entry', '  feature_flags = { FF_USE_FASTZIP = true, , FF_SCRIPT_SECTIONS = true }'],
  ])('refuses %s', async (_what, line) => {
    await expectRefused(withLine(line));
  });
});

describe('F4: a JSON syntax error in a fleet file gives a multi-line message that quotes the file', () => {
  it('prints one line for a pretty-printed fleet file with an unexpected token', async () => {
    const w = await ws.create('', 0o600);
    const path = `${w.dir}/fleet.json`;
    await writeFile(path, '{\n  "stateDir": state,\n  "runners": []\n}\n');
    const before = await listing(w.dir);
    const out = recordingOutput();
    expect(await main(['--fleet', path, 'status'], out)).toBe(2);
    expect(await listing(w.dir)).toEqual(before);
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).not.toMatch(/[\r\n]/);
  });
});

const localFleet = (gitlabUrl: string): string =>
  JSON.stringify({ stateDir: 'state', runners: [{ name: 'builders', gitlabUrl, runnerId: 12, hosts: [{ config: 'config.toml' }] }] });

describe('F5: the local fleet file accepts a gitlabUrl with an upper-case scheme that the secret value and the host updater refuse', () => {
  it('either refuses HTTPS://… or yields a url that survives the secret value and the updater', async () => {
    let config;
    try {
      config = parseFleetConfig(localFleet('HTTPS://gitlab.example.com'), '/srv/rotator/fleet.json');
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidInputError);
      return;
    }
    const runner = config.runners[0];
    if (runner === undefined) throw new Error('no runner');
    // adopt stores runner.gitlabUrl in the secret; every later read goes through parseSecretValue.
    const stored = serializeSecretValue({ runnerId: runner.runnerId, gitlabUrl: runner.gitlabUrl, token: 'glrt-aaaaaaaaaaaaaaaaaaaa', tokenExpiresAt: null, tokenObtainedAt: '2025-01-01T00:00:00Z' });
    expect(() => parseSecretValue(stored, 'secret builders')).not.toThrow();
    // The local fleet passes runner.gitlabUrl as --url to the host updater.
    const w = await ws.create(RUNNER, 0o600);
    const r = await runUpdater(['--config', w.config, '--runner-id', '1', '--url', runner.gitlabUrl, '--token-file', w.tokenFile, '--reload', 'none']);
    expect(r.stderr).toBe('');
  });
});

const awsFleet = (runner: Record<string, unknown>): string =>
  JSON.stringify({ runners: [{ name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } }, ...runner }] });
const delivery = { secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbC123', versionId: '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b', previousVersionId: null, tokenExpiresAt: null };

describe('F6: the AWS fleet file accepts runners that the host-update SSM document refuses at setSecret (after GitLab reset the token)', () => {
  it.each([
    ['an upper-case scheme', { gitlabUrl: 'HTTPS://gitlab.example.com' }],
    ['userinfo in the url', { gitlabUrl: 'https://ops:hunter2@gitlab.example.com' }],
    ['a query in the url', { gitlabUrl: 'https://gitlab.example.com/?x=1' }],
    ['a fragment in the url', { gitlabUrl: 'https://gitlab.example.com/#top' }],
    ['an IPv6 host', { gitlabUrl: 'https://[::1]:8443' }],
    ['a comma in the host', { gitlabUrl: 'http://,itlab.lan:8080' }],
    ['a runner id of 14 digits', { runnerId: 10_000_000_000_000 }],
  ])('either refuses %s at load time or can push it', (_what, patch) => {
    let config;
    try {
      config = parseAwsFleetConfig(awsFleet(patch), 'fleet.aws.json');
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidInputError);
      return;
    }
    const runner = config.runners[0];
    if (runner === undefined) throw new Error('no runner');
    expect(() => hostUpdateCommandParameters(delivery, runner)).not.toThrow();
  });
});

describe('F7 (low): the AWS fleet file silently merges two admin-token secrets for one url', () => {
  it('refuses https://x and https://x/ with different secrets instead of keeping the last one', () => {
    const text = JSON.stringify({
      adminTokenSecrets: { 'https://gitlab.example.com': 'admin-a', 'https://gitlab.example.com/': 'admin-b' },
      runners: [{ name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 12, hosts: { tag: { key: 'k', value: 'v' } } }],
    });
    expect(() => parseAwsFleetConfig(text, 'fleet.aws.json')).toThrow(InvalidInputError);
  });
});

describe('F8 (low): the event parsers throw a TypeError for values JSON cannot carry', () => {
  it('parseRotationEvent refuses a BigInt Step with an InvalidInputError', () => {
    expect(() => parseRotationEvent({ Step: 1n, SecretId: 's', ClientRequestToken: 'x'.repeat(32) })).toThrow(InvalidInputError);
  });
  it('parseRotationOutcomeEvent does not throw for an eventTime without a prototype', () => {
    const event = { detail: { eventName: 'RotationFailed', eventTime: Object.create(null) as object, additionalEventData: { SecretId: 's' } } };
    expect(() => parseRotationOutcomeEvent(event, new Date())).not.toThrow();
  });
});
