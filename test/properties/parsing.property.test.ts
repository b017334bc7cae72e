/**
 * Property tests of the parsers that guard the service's inputs: rotation events, rotation outcome
 * events, secret values, and both fleet files. For any JSON-ish input, each parser either returns a
 * value that keeps its type's invariants (including what the next component needs: the host updater's
 * --url and the SSM document's allowedPatterns), or throws an InvalidInputError whose `where` names the
 * file/field, never another error and never a token. A bad local fleet file changes nothing on disk.
 */
import fc from 'fast-check';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { parseAwsFleetConfig } from '../../src/config/aws-fleet-config.ts';
import { parseFleetConfig } from '../../src/config/fleet-config.ts';
import { hostUpdateCommandParameters } from '../../src/adapters/aws/host-update-document.ts';
import { InvalidInputError } from '../../src/core/errors.ts';
import { parseRotationEvent, parseRotationOutcomeEvent } from '../../src/core/rotation-event.ts';
import { parseSecretValue } from '../../src/core/secret-value.ts';
import { ROTATION_STEPS } from '../../src/core/types.ts';
import { formatPath, mutatedArb, type Json, type Mutated } from './json-mutation.arbitrary.ts';
import { runs, SEED } from './updater-harness.ts';

const RUNS = runs(300);
const CLI_RUNS = runs(60);
const options = { seed: SEED, numRuns: RUNS };

/** Calls `f`; returns its value, or the error it threw. */
function attempt<T>(f: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** The error must be an InvalidInputError whose `where` starts with `prefix` and leads its message. */
function expectInvalidInput(error: unknown, prefix: string): InvalidInputError {
  expect(error, String(error)).toBeInstanceOf(InvalidInputError);
  const e = error as InvalidInputError;
  expect(e.where.startsWith(prefix), `where "${e.where}" does not start with "${prefix}"`).toBe(true);
  expect(e.message.startsWith(`${e.where}: `)).toBe(true);
  expect(e.message.length).toBeGreaterThan(e.where.length + 2);
  return e;
}

/** Input the way a parser of unknown data may meet it: anything, JSON values, mutations of valid inputs. */
function anyInput(valid: fc.Arbitrary<Json>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: fc.anything(), weight: 1 },
    { arbitrary: fc.jsonValue(), weight: 1 },
    { arbitrary: valid, weight: 1 },
    { arbitrary: mutatedArb(valid).map((m) => m.value), weight: 4 },
  );
}

const isoArb = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
const secretArnArb = fc
  .tuple(fc.constantFrom('eu-west-1', 'us-east-1'), fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.stringMatching(/^[A-Za-z0-9]{6}$/))
  .map(([region, name, suffix]) => `arn:aws:secretsmanager:${region}:123456789012:secret:gitlab-runner-rotator/${name}-${suffix}`);
const tokenArb = fc.stringMatching(/^[A-Za-z0-9_-]{20,30}$/).map((b) => `glrt-${b}`);

// ---------------------------------------------------------------------------------------------------
// Rotation events
// ---------------------------------------------------------------------------------------------------
const rotationEventArb = fc.record({ Step: fc.constantFrom(...ROTATION_STEPS), SecretId: secretArnArb, ClientRequestToken: fc.uuid() });

describe('parseRotationEvent', () => {
  it('returns the step, secret and version of any valid event', () => {
    fc.assert(
      fc.property(rotationEventArb, (event) => {
        expect(parseRotationEvent(event)).toEqual({ step: event.Step, secretId: event.SecretId, versionId: event.ClientRequestToken });
      }),
      options,
    );
  });

  it('returns a well-formed event or throws an InvalidInputError naming the field, for any input', () => {
    fc.assert(
      fc.property(anyInput(rotationEventArb), (input) => {
        const r = attempt(() => parseRotationEvent(input));
        if (r.ok) {
          expect(ROTATION_STEPS).toContain(r.value.step);
          expect(r.value.secretId).toBe((input as Record<string, unknown>).SecretId);
          expect(r.value.secretId).not.toBe('');
          expect(r.value.versionId).toMatch(/^[A-Za-z0-9-]{32,64}$/);
        } else expectInvalidInput(r.error, 'rotation event');
      }),
      options,
    );
  });

  it('names the dropped, renamed or retyped field', () => {
    fc.assert(
      fc.property(mutatedArb(rotationEventArb), (m) => {
        const r = attempt(() => parseRotationEvent(m.value));
        // Only the three fields exist: any mutation breaks exactly the one it touched.
        if (r.ok) throw new Error(`accepted ${JSON.stringify(m.value)}`);
        expect(expectInvalidInput(r.error, 'rotation event').where).toBe(`rotation event: ${String(m.path[0])}`);
      }),
      options,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Rotation outcome events (EventBridge, from CloudTrail)
// ---------------------------------------------------------------------------------------------------
const outcomeEventArb = fc
  .record({ eventName: fc.constantFrom('RotationFailed', 'RotationAbandoned', 'RotationSucceeded'), secretId: secretArnArb, time: isoArb })
  .map(({ eventName, secretId, time }) => ({
    version: '0',
    'detail-type': 'AWS Service Event via CloudTrail',
    source: 'aws.secretsmanager',
    time,
    detail: { eventTime: time, eventSource: 'secretsmanager.amazonaws.com', eventName, additionalEventData: { SecretId: secretId }, requestParameters: null },
  }));

describe('parseRotationOutcomeEvent', () => {
  it('returns the event name, the secret and the time of any valid event', () => {
    fc.assert(
      fc.property(outcomeEventArb, (event) => {
        expect(parseRotationOutcomeEvent(event, new Date())).toEqual({
          eventName: event.detail.eventName,
          secretId: event.detail.additionalEventData.SecretId,
          at: new Date(event.detail.eventTime),
        });
      }),
      options,
    );
  });

  it('never throws: returns undefined or an outcome with a name, a secret and a valid time, for any input', () => {
    fc.assert(
      fc.property(anyInput(outcomeEventArb), (input) => {
        const r = attempt(() => parseRotationOutcomeEvent(input, new Date()));
        if (!r.ok) throw r.error;
        if (r.value === undefined) return;
        const detail = (input as { detail: { eventName: unknown; additionalEventData: { SecretId: unknown } } }).detail;
        expect(r.value.eventName).toBe(detail.eventName);
        expect(r.value.secretId).toBe(detail.additionalEventData.SecretId);
        expect(r.value.at).toBeInstanceOf(Date);
        expect(Number.isNaN(r.value.at.getTime())).toBe(false);
      }),
      options,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Secret values (the JSON in each secret version: it holds a token)
// ---------------------------------------------------------------------------------------------------
const WHERE = 'secret gitlab-runner-rotator/builders (version 0f1e2d3c)';
const secretValueArb = fc.record({
  runner_id: fc.integer({ min: 1, max: 2 ** 31 }),
  url: fc.constantFrom('https://gitlab.example.com', 'http://gitlab.lan:8080', 'https://git.example.org/gitlab'),
  token: tokenArb,
  token_expires_at: fc.option(isoArb, { nil: null }),
  token_obtained_at: isoArb,
});

/** Raw secret texts that hold a token: mutated values, truncated JSON, JSON of other shapes. */
const rawSecretArb: fc.Arbitrary<{ raw: string; token: string }> = fc.oneof(
  mutatedArb(secretValueArb).map((m) => ({ raw: JSON.stringify(m.value), token: m.original.token })),
  fc.tuple(secretValueArb, fc.nat()).map(([v, cut]) => {
    const raw = JSON.stringify(v);
    return { raw: raw.slice(0, cut % raw.length), token: v.token };
  }),
  fc.tuple(tokenArb, fc.jsonValue()).map(([token, other]) => ({ raw: JSON.stringify({ value: other, token: [token], runner_id: token }), token })),
  fc.tuple(tokenArb, fc.string()).map(([token, s]) => ({ raw: `${s}${token}${s}`, token })),
  fc.tuple(tokenArb, fc.jsonValue()).map(([token, a]) => ({ raw: `{"token": "${token}", "x": ${JSON.stringify(a)}`, token })),
);

describe('parseSecretValue', () => {
  it('reads back any valid value', () => {
    fc.assert(
      fc.property(secretValueArb, (v) => {
        expect(parseSecretValue(JSON.stringify(v), WHERE)).toEqual({
          runnerId: v.runner_id,
          gitlabUrl: v.url,
          token: v.token,
          tokenExpiresAt: v.token_expires_at,
          tokenObtainedAt: v.token_obtained_at,
        });
      }),
      options,
    );
  });

  it('returns a well-formed value or throws an InvalidInputError naming the secret, never with the token in it', () => {
    fc.assert(
      fc.property(rawSecretArb, ({ raw, token }) => {
        const r = attempt(() => parseSecretValue(raw, WHERE));
        if (r.ok) {
          const v = r.value;
          expect(Number.isInteger(v.runnerId) && v.runnerId > 0).toBe(true);
          expect(v.gitlabUrl).toMatch(/^https?:\/\/[^\s/]+/);
          expect(v.token.length).toBeGreaterThanOrEqual(8);
          expect(v.token).not.toMatch(/\s/);
          expect(v.tokenExpiresAt === null || !Number.isNaN(Date.parse(v.tokenExpiresAt))).toBe(true);
          expect(Number.isNaN(Date.parse(v.tokenObtainedAt))).toBe(false);
          return;
        }
        const e = expectInvalidInput(r.error, WHERE);
        for (const text of [e.message, e.where, String(e.stack), JSON.stringify(e)]) expect(text).not.toContain(token);
        expect(e.message).not.toMatch(/glrt-[A-Za-z0-9_-]{8,}/);
      }),
      options,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Fleet files
// ---------------------------------------------------------------------------------------------------
/** Mostly ordinary urls; now and then one that URL() accepts but is not a plain http(s)://host[:port][/path]. */
const gitlabUrlArb = fc.oneof(
  { arbitrary: fc.constantFrom('https://gitlab.example.com', 'https://gitlab.example.com/', 'http://gitlab.lan:8080', 'https://git.example.org/gitlab/'), weight: 12 },
  {
    arbitrary: fc.constantFrom('HTTPS://gitlab.example.com', 'https://ops:hunter2@gitlab.example.com', 'https://gitlab.example.com/?x=1', 'https://gitlab.example.com/#top', 'https://[::1]:8443', 'ftp://gitlab.example.com', 'gitlab.example.com', 'https://'),
    weight: 1,
  },
);
const runnerNameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,15}$/);
const policyArb = fc.record({ rotateAtRemainingShare: fc.double({ min: 0.05, max: 0.95, noNaN: true }), minDaysBeforeExpiry: fc.integer({ min: 0, max: 30 }), maxAgeDaysWithoutExpiry: fc.integer({ min: 1, max: 365 }) }, { requiredKeys: [] });
const reloadArb = fc.constantFrom('sighup', 'restart', 'none');

const localFleetArb = fc.record(
  {
    stateDir: fc.constantFrom('state', '/var/lib/gitlab-runner-rotator', './state/local'),
    adminTokenFile: fc.constantFrom('admin-token', '/etc/gitlab-runner-rotator/admin-token'),
    alerts: fc.record({ slackWebhookUrlFile: fc.constant('slack-webhook'), nearExpiryDays: fc.integer({ min: 0, max: 365 }), reminderHours: fc.integer({ min: 1, max: 720 }) }, { requiredKeys: [] }),
    defaults: fc.record({ reload: reloadArb, policy: policyArb }, { requiredKeys: [] }),
    runners: fc.uniqueArray(
      fc.record(
        {
          name: runnerNameArb,
          gitlabUrl: gitlabUrlArb,
          runnerId: fc.integer({ min: 1, max: 99_999_999 }),
          hosts: fc.array(fc.record({ name: fc.constantFrom('b1', 'b2', 'builder 3'), config: fc.constantFrom('/etc/gitlab-runner/config.toml', 'hosts/b2.toml', 'c.toml') }, { requiredKeys: ['config'] }), { minLength: 1, maxLength: 3 }),
          reload: reloadArb,
          policy: policyArb,
        },
        { requiredKeys: ['name', 'gitlabUrl', 'runnerId', 'hosts'] },
      ),
      { minLength: 1, maxLength: 3, selector: (r) => r.name },
    ),
  },
  { requiredKeys: ['stateDir', 'runners'] },
) as fc.Arbitrary<Json>;

const instanceIdArb = fc.stringMatching(/^i-[0-9a-f]{17}$/);
const awsFleetArb = fc.record(
  {
    secretPrefix: fc.constantFrom('gitlab-runner-rotator/', 'ci/runners/', ''),
    scanEveryHours: fc.integer({ min: 1, max: 24 }),
    adminTokenSecrets: fc.dictionary(fc.constantFrom('https://gitlab.example.com', 'http://gitlab.lan:8080'), fc.constantFrom('gitlab-runner-rotator/admin', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:admin-AbC123'), { maxKeys: 2 }),
    ssm: fc.record({ maxConcurrency: fc.constantFrom('50', '10%', '1'), maxErrors: fc.constantFrom('100%', '1'), executionTimeoutSeconds: fc.integer({ min: 30, max: 3600 }) }, { requiredKeys: [] }),
    defaults: fc.record({ reload: reloadArb, policy: policyArb, configPath: fc.constant('/etc/gitlab-runner/config.toml'), rotateEveryDays: fc.integer({ min: 1, max: 1000 }) }, { requiredKeys: [] }),
    runners: fc.uniqueArray(
      fc.record(
        {
          name: runnerNameArb,
          gitlabUrl: gitlabUrlArb,
          runnerId: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 99_999_999 }), weight: 12 }, { arbitrary: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), weight: 1 }),
          hosts: fc.oneof(
            fc.record({ tag: fc.record({ key: fc.constantFrom('gitlab-runner', 'Role'), value: fc.constantFrom('builders', 'deploy ers', '') }) }),
            fc.record({ instanceIds: fc.array(instanceIdArb, { minLength: 1, maxLength: 3 }) }),
          ),
          configPath: fc.constantFrom('/srv/runner/config.toml', '/etc/gitlab-runner/config.toml'),
          reload: reloadArb,
          policy: policyArb,
          rotateEveryDays: fc.integer({ min: 1, max: 1000 }),
        },
        { requiredKeys: ['name', 'gitlabUrl', 'runnerId', 'hosts'] },
      ),
      { minLength: 1, maxLength: 3, selector: (r) => r.name },
    ),
    alerts: fc.record({ emails: fc.uniqueArray(fc.constantFrom('ops@example.com', 'runner-admins@example.org'), { maxLength: 2 }), slackWebhookSecretName: fc.constant('gitlab-runner-rotator/slack'), nearExpiryDays: fc.integer({ min: 1, max: 365 }), reminderHours: fc.integer({ min: 1, max: 168 }) }, { requiredKeys: [] }),
  },
  { requiredKeys: ['runners'] },
) as fc.Arbitrary<Json>;

/** Fleet texts: mutations of valid files (pretty or compact), truncated files, other JSON, garbage. */
function fleetTextArb(valid: fc.Arbitrary<Json>): fc.Arbitrary<{ text: string; mutation: Mutated<Json> | undefined }> {
  const print = (v: Json, pretty: boolean): string => JSON.stringify(v, null, pretty ? 2 : undefined);
  return fc.oneof(
    { arbitrary: fc.tuple(mutatedArb(valid), fc.boolean()).map(([m, pretty]) => ({ text: print(m.value, pretty), mutation: m })), weight: 6 },
    { arbitrary: fc.tuple(valid, fc.boolean()).map(([v, pretty]) => ({ text: print(v, pretty), mutation: undefined })), weight: 1 },
    { arbitrary: fc.tuple(valid, fc.boolean(), fc.nat()).map(([v, pretty, cut]) => ({ text: print(v, pretty).slice(0, cut % print(v, pretty).length), mutation: undefined })), weight: 1 },
    {
      // One character of a valid file replaced: a syntax error somewhere inside.
      arbitrary: fc.tuple(valid, fc.boolean(), fc.nat(), fc.constantFrom('x', '', ',', '}', '"')).map(([v, pretty, at, by]) => {
        const text = print(v, pretty);
        const i = at % text.length;
        return { text: `${text.slice(0, i)}${by}${text.slice(i + 1)}`, mutation: undefined };
      }),
      weight: 3,
    },
    { arbitrary: fc.jsonValue().map((v) => ({ text: JSON.stringify(v), mutation: undefined })), weight: 1 },
    { arbitrary: fc.string().map((text) => ({ text, mutation: undefined })), weight: 1 },
  );
}

/** The host updater's --url check and parseSecretValue's url check (adopt stores the fleet url in the secret). */
const UPDATER_URL = /^https?:\/\/[^\s\p{Cc}]+$/u;
const SECRET_URL = /^https?:\/\/[^\s/]+/;

/**
 * What later stages take (findings F5 and F6 of found-bugs.test.ts, fixed): a lower-case scheme for the
 * secret value and the updater; the host-update document's allowedPatterns for the url and runner id.
 */
const UPPER_CASE_SCHEME = /^[A-Za-z]*[A-Z][A-Za-z]*:/;
const SSM_GITLAB_URL = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~/-]*)?$/;
const SSM_RUNNER_ID = /^[1-9][0-9]{0,12}$/;

/**
 * The error names the file, and, when one field of an otherwise valid file was mutated, that field or
 * the object that holds it.
 */
function expectNamesField(error: unknown, path: string, mutation: Mutated<Json> | undefined, parse: (text: string, path: string) => unknown): void {
  const e = expectInvalidInput(error, path);
  if (mutation === undefined || !attempt(() => parse(JSON.stringify(mutation.original), path)).ok) return;
  // The first problem zod reports is at the mutated field itself (under its old or new name), or at an
  // object or union that holds it (a missing or unknown key, a union such as hosts that no longer
  // matches): exactly one of those.
  const field = formatPath(mutation.path);
  const holders = mutation.path.map((_, i) => formatPath(mutation.path.slice(0, i)));
  const renamed = mutation.renamedPath === undefined ? [] : [formatPath(mutation.renamedPath)];
  const named = [field, ...renamed, ...holders].some((p) => e.where === (p === '' ? path : `${path}: ${p}`));
  expect(named, `"${e.where}" does not name ${field}`).toBe(true);
}

describe('parseFleetConfig', () => {
  const PATH = '/srv/rotator/fleet.json';
  it('returns a fleet whose every runner can be pushed by the host updater, or an InvalidInputError naming the file and field', () => {
    fc.assert(
      fc.property(fleetTextArb(localFleetArb), ({ text, mutation }) => {
        const r = attempt(() => parseFleetConfig(text, PATH));
        if (!r.ok) return expectNamesField(r.error, PATH, mutation, parseFleetConfig);
        const c = r.value;
        expect(c.stateDir.startsWith('/')).toBe(true);
        expect(c.adminTokenFile === undefined || c.adminTokenFile.startsWith('/')).toBe(true);
        expect(c.alerts.nearExpiryDays).toBeGreaterThanOrEqual(0);
        expect(c.alerts.reminderHours).toBeGreaterThanOrEqual(1);
        expect(c.runners.length).toBeGreaterThan(0);
        expect(new Set(c.runners.map((x) => x.name)).size).toBe(c.runners.length);
        for (const runner of c.runners) {
          expect(runner.secretId).toBe(runner.name);
          expect(Number.isSafeInteger(runner.runnerId) && runner.runnerId > 0).toBe(true);
          expect(runner.gitlabUrl).toMatch(UPDATER_URL);
          expect(runner.gitlabUrl).toMatch(SECRET_URL);
          expect(runner.gitlabUrl).not.toMatch(UPPER_CASE_SCHEME);
          expect(runner.gitlabUrl.endsWith('/')).toBe(false);
          expect(['sighup', 'restart', 'none']).toContain(runner.reload);
          expect(runner.policy.rotateAtRemainingShare > 0 && runner.policy.rotateAtRemainingShare < 1).toBe(true);
          expect(runner.policy.minDaysBeforeExpiry >= 0 && runner.policy.maxAgeDaysWithoutExpiry > 0).toBe(true);
          if (runner.hosts.kind !== 'config-files') throw new Error('local runners have config-file hosts');
          expect(runner.hosts.files.length).toBeGreaterThan(0);
          for (const f of runner.hosts.files) expect(f.configPath.startsWith('/')).toBe(true);
        }
      }),
      options,
    );
  });
});

describe('parseAwsFleetConfig', () => {
  const PATH = 'fleet.aws.json';
  const delivery = { secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/x-AbC123', versionId: '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b', previousVersionId: null, tokenExpiresAt: null };
  it('returns a fleet whose every runner can be pushed through the SSM document, or an InvalidInputError naming the file and field', () => {
    fc.assert(
      fc.property(fleetTextArb(awsFleetArb), ({ text, mutation }) => {
        const r = attempt(() => parseAwsFleetConfig(text, PATH));
        if (!r.ok) return expectNamesField(r.error, PATH, mutation, parseAwsFleetConfig);
        const c = r.value;
        expect(Number.isInteger(c.scanEveryHours) && c.scanEveryHours >= 1 && c.scanEveryHours <= 24).toBe(true);
        expect(c.runners.length).toBeGreaterThan(0);
        expect(new Set(c.runners.map((x) => x.secretId)).size).toBe(c.runners.length);
        for (const url of Object.keys(c.adminTokenSecrets)) {
          expect(url).toMatch(SECRET_URL);
          expect(url.endsWith('/')).toBe(false);
        }
        expect(new Set(c.alerts.emails.map((e) => e.toLowerCase())).size).toBe(c.alerts.emails.length);
        for (const runner of c.runners) {
          expect(runner.secretId).toBe(`${c.secretPrefix}${runner.name}`);
          expect(Number.isInteger(runner.rotateEveryDays) && runner.rotateEveryDays >= 1 && runner.rotateEveryDays <= 1000).toBe(true);
          expect(runner.hosts.kind === 'ec2-tag' || runner.hosts.kind === 'ec2-instances').toBe(true);
          // What setSecret needs: every value passes the host-update document's allowedPatterns.
          expect(runner.gitlabUrl).toMatch(SSM_GITLAB_URL);
          expect(String(runner.runnerId)).toMatch(SSM_RUNNER_ID);
          expect(() => hostUpdateCommandParameters(delivery, runner)).not.toThrow();
        }
      }),
      options,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// The CLI with a bad local fleet file: exit 2, one error line, nothing written
// ---------------------------------------------------------------------------------------------------
describe('rotator --fleet BAD status', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'fleet-prop-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('exits 2 with one line per problem, each naming the file, and creates nothing', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fleetTextArb(localFleetArb), async ({ text }) => {
        const dir = join(root, String(n++));
        const path = join(dir, 'fleet.json');
        fc.pre(!attempt(() => parseFleetConfig(text, path)).ok);
        await mkdir(dir);
        await writeFile(path, text);
        const before = await readdir(dir);
        const out = recordingOutput();
        expect(await main(['--fleet', path, 'status'], out)).toBe(2);
        // One line per problem, each naming the file.
        expect(out.lines.length).toBeGreaterThanOrEqual(1);
        for (const line of out.lines) {
          expect(line).toMatch(new RegExp(`^rotator: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(: |$)`));
          expect(line).not.toMatch(/[\r\n\u2028\u2029]/);
        }
        expect(await readdir(dir)).toEqual(before);
      }),
      { seed: SEED, numRuns: CLI_RUNS },
    );
  });
});
