import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXECUTION_TIMEOUT_PARAMETER,
  HEREDOC_DELIMITER,
  HOST_UPDATE_PARAMETERS,
  SSM_DOCUMENT_MAX_BYTES,
  buildHostUpdateDocument,
} from '../../src/adapters/aws/host-update-document.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, 'fixtures');
const HOST = resolve(HERE, '../../host');
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf';
const VERSION = '6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5';
const PREVIOUS = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const NO_TOKEN_VERSION = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
const WRONG_VERSION = 'ffffffff-0000-4000-8000-000000000000';

type Doc = Record<string, unknown>;
interface Step {
  action: string;
  precondition: unknown;
  inputs: { runCommand: string[]; timeoutSeconds: string };
}
interface Parameter {
  type: string;
  description: string;
  allowedPattern: string;
  interpolationType: string;
  default?: string;
}

const fakeToken = (): string => `glrt-${randomBytes(15).toString('base64url')}`;
const NEW_TOKEN = fakeToken();
/** The previous version's token: legacy-no-ids.toml's first runner holds it. */
const OLD_TOKEN = 'glrt-OLDTOKEN-A';

/**
 * A stand-in for the AWS CLI: it accepts only the exact call the wrapper should make and prints the
 * JSON value of a version from $FAKE_AWS_SECRETS/<version>. For an unknown version it fails the way the
 * real CLI does, echoing its arguments and (as a CLI in debug mode might) a token-shaped string. Asked
 * for $FAKE_AWS_HANG_ON, it creates $FAKE_AWS_HANGING and hangs (a host run killed mid-way).
 */
const FAKE_AWS = `#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$FAKE_AWS_LOG"
region=""
if [[ \${3:-} == --region ]]; then region=$4; set -- "$1" "$2" "\${@:5}"; fi
if [[ $# -ne 10 || $1 != secretsmanager || $2 != get-secret-value || $3 != --secret-id || $5 != --version-id ||
      $7 != --query || $8 != SecretString || $9 != --output || \${10} != text ]]; then
  echo "aws: error: unexpected arguments: $*" >&2
  exit 252
fi
if [[ $4 != "$FAKE_AWS_SECRET_ID" || ( -n $region && $region != eu-west-1 ) ]]; then
  echo "An error occurred (AccessDeniedException) when calling the GetSecretValue operation: not this secret" >&2
  exit 254
fi
if [[ $6 == "\${FAKE_AWS_HANG_ON:-}" ]]; then : >"$FAKE_AWS_HANGING"; exec sleep 60; fi
if [[ -f $FAKE_AWS_SECRETS/$6 ]]; then cat -- "$FAKE_AWS_SECRETS/$6"; exit 0; fi
echo "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: Secrets Manager can't find the specified secret value for VersionId: $6 (args: $*; cached: $FAKE_AWS_LEAK)" >&2
exit 254
`;

const secretValue = (token: string): string =>
  JSON.stringify({ runner_id: 7, url: 'https://gitlab.example.com', token, token_expires_at: null, token_obtained_at: '2025-06-01T08:00:00.000Z' });

let root: string;
let script: string;
let document: Doc;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'run-urt-'));
  document = buildHostUpdateDocument();
  script = join(root, '_script.sh');
  await writeFile(script, `${stepOf(document).inputs.runCommand.join('\n')}\n`);
  await mkdir(join(root, 'bin'));
  await writeFile(join(root, 'bin', 'aws'), FAKE_AWS, { mode: 0o755 });
  await mkdir(join(root, 'secrets'));
  await writeFile(join(root, 'secrets', VERSION), `${secretValue(NEW_TOKEN)}\n`);
  await writeFile(join(root, 'secrets', PREVIOUS), `${secretValue(OLD_TOKEN)}\n`);
  await writeFile(join(root, 'secrets', NO_TOKEN_VERSION), `${JSON.stringify({ runner_id: 7, url: 'https://gitlab.example.com', adopted: false })}\n`);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function stepOf(doc: Doc): Step {
  const steps = doc.mainSteps as Step[];
  expect(steps).toHaveLength(1);
  return steps[0] as Step;
}

const parametersOf = (doc: Doc): Record<string, Parameter> => doc.parameters as Record<string, Parameter>;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** What is left in the TMPDIR the run used (it starts empty). */
  leftInTmp: string[];
  config: string;
  work: string;
  awsCalls: string;
}

/** Runs the document's runCommand as the agent would, in a fresh work dir with config.toml from `fixture`. */
async function runDocument(fixture: string, env: Record<string, string> = {}, shell = 'bash'): Promise<Run> {
  const work = await mkdtemp(join(root, 'host-'));
  const tmp = join(work, 'tmp');
  await mkdir(tmp);
  const config = join(work, 'config.toml');
  await copyFile(join(FIXTURES, fixture), config);
  await chmod(config, 0o600);
  const awsLog = join(work, 'aws-calls');
  const fullEnv: Record<string, string> = {
    PATH: `${join(root, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: work,
    TMPDIR: tmp,
    FAKE_AWS_LOG: awsLog,
    FAKE_AWS_SECRETS: join(root, 'secrets'),
    FAKE_AWS_SECRET_ID: SECRET_ARN,
    FAKE_AWS_LEAK: OLD_TOKEN,
    // The updater's reload hooks: no real gitlab-runner is signalled.
    UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false',
    UPDATE_RUNNER_TOKEN_PKILL: 'false',
    SSM_SecretArn: SECRET_ARN,
    SSM_VersionId: VERSION,
    SSM_PreviousVersionId: 'none',
    SSM_RunnerId: '7',
    SSM_GitLabUrl: 'https://gitlab.example.com',
    SSM_ConfigPath: config,
    SSM_ReloadMode: 'sighup',
    SSM_ExpiresAt: '2026-03-01T12:00:00.000Z',
    ...env,
  };
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(shell, [script], { env: fullEnv, cwd: work }, (error, out, err) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout: out, stderr: err });
    });
  });
  const awsCalls = existsSync(awsLog) ? await readFile(awsLog, 'utf8') : '';
  return { code, stdout, stderr, leftInTmp: await readdir(tmp, { recursive: true }), config, work, awsCalls };
}

/**
 * Starts the document's runCommand as runDocument does, in its own process group, waits for `marker` to
 * appear (a hanging `aws` or reload tool creates it), then kills the whole group with SIGKILL, as SSM does
 * on cancel or timeout (no trap runs). Returns the files under the run's TMPDIR whose bytes hold any of `secrets`.
 */
async function killMidRun(fixture: string, env: Record<string, string>, marker: string, secrets: string[]): Promise<string[]> {
  const work = await mkdtemp(join(root, 'host-'));
  const tmp = join(work, 'tmp');
  await mkdir(tmp);
  const config = join(work, 'config.toml');
  await copyFile(join(FIXTURES, fixture), config);
  await chmod(config, 0o600);
  const fullEnv: Record<string, string> = {
    PATH: `${join(root, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: work,
    TMPDIR: tmp,
    FAKE_AWS_LOG: join(work, 'aws-calls'),
    FAKE_AWS_SECRETS: join(root, 'secrets'),
    FAKE_AWS_SECRET_ID: SECRET_ARN,
    FAKE_AWS_HANGING: marker,
    UPDATE_RUNNER_TOKEN_SYSTEMCTL: 'false',
    UPDATE_RUNNER_TOKEN_PKILL: 'false',
    SSM_SecretArn: SECRET_ARN,
    SSM_VersionId: VERSION,
    SSM_PreviousVersionId: PREVIOUS,
    SSM_RunnerId: '7',
    SSM_GitLabUrl: 'https://gitlab.example.com',
    SSM_ConfigPath: config,
    SSM_ReloadMode: 'sighup',
    SSM_ExpiresAt: 'none',
    ...env,
  };
  const child = spawn('sh', [script], { env: fullEnv, cwd: work, detached: true, stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  try {
    for (let i = 0; i < 500 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(marker), 'the run never reached the point where it hangs').toBe(true);
  } finally {
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
  }
  const holding: string[] = [];
  for (const name of await readdir(tmp, { recursive: true })) {
    const path = join(tmp, name);
    if (!(await stat(path)).isFile()) continue;
    const bytes = await readFile(path);
    if (secrets.some((secret) => bytes.includes(secret))) holding.push(name);
  }
  return holding;
}

function tokenOfRunner(configText: string, index: number): unknown {
  const runners = (parse(configText) as { runners: Array<Record<string, unknown>> }).runners;
  return runners[index]?.token;
}

function expectNoneOf(texts: string[], ...secrets: string[]): void {
  for (const text of texts) for (const secret of secrets) expect(text.includes(secret), 'a token appears in captured output').toBe(false);
}

describe('the host update document run on a host', () => {
  it('installs the version’s token into config.toml and prints status=updated, leaving nothing behind', async () => {
    const run = await runDocument('several-runners.toml');

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status=updated runner_id=7 config=\S+ system_id= reload=not-running\n$/);
    const after = await readFile(run.config, 'utf8');
    expect(tokenOfRunner(after, 0)).toBe(NEW_TOKEN);
    expect(tokenOfRunner(after, 1)).toBe('glrt-OLDTOKEN-B');
    expect(after).toContain('token_expires_at = 2026-03-01T12:00:00Z');
    expect(run.leftInTmp).toEqual([]);
    expectNoneOf([run.stdout, run.stderr, run.awsCalls], NEW_TOKEN);
    // Nor in any file the run left, other than config.toml itself.
    for (const name of await readdir(run.work, { recursive: true })) {
      const path = join(run.work, name);
      if (path === run.config || !(await stat(path)).isFile()) continue;
      expectNoneOf([await readFile(path, 'utf8')], NEW_TOKEN);
    }
    // Only the ARN, the region from it and the version id reach the AWS CLI's command line.
    expect(run.awsCalls.trim()).toBe(
      `secretsmanager get-secret-value --region eu-west-1 --secret-id ${SECRET_ARN} --version-id ${VERSION} --query SecretString --output text`,
    );
  });

  it('runs under the POSIX sh the SSM agent starts it with', async () => {
    const run = await runDocument('single-docker.toml', { SSM_RunnerId: '101' }, 'sh');

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status=updated runner_id=101 /);
    expect(tokenOfRunner(await readFile(run.config, 'utf8'), 0)).toBe(NEW_TOKEN);
    expect(run.leftInTmp).toEqual([]);
  });

  it('says already-current when the host holds the version, without reloading', async () => {
    const first = await runDocument('several-runners.toml');
    const second = await runDocument('several-runners.toml', { SSM_ConfigPath: first.config });

    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^status=already-current runner_id=7 .* reload=skipped\n$/);
    expect(second.leftInTmp).toEqual([]);
  });

  it('finds the runner by the previous version’s token when config.toml has no ids', async () => {
    const run = await runDocument('legacy-no-ids.toml', { SSM_PreviousVersionId: PREVIOUS, SSM_ExpiresAt: 'none' });

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status=updated /);
    const after = await readFile(run.config, 'utf8');
    expect(tokenOfRunner(after, 0)).toBe(NEW_TOKEN);
    expect(tokenOfRunner(after, 1)).toBe('glrt-OLDTOKEN-B');
    expect(run.awsCalls).toContain(`--version-id ${PREVIOUS}`);
    expect(run.leftInTmp).toEqual([]);
    expectNoneOf([run.stdout, run.stderr], NEW_TOKEN, OLD_TOKEN);
  });

  it('exits 8 with one line naming the secret and version when the AWS CLI cannot read the version', async () => {
    const run = await runDocument('several-runners.toml', { SSM_VersionId: WRONG_VERSION });

    expect(run.code).toBe(8);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `run-update-runner-token: error: cannot read secret version ${WRONG_VERSION} of ${SECRET_ARN}: ResourceNotFoundException (aws exit 254)\n`,
    );
    // The CLI's own message echoed its arguments and a token: none of it gets through.
    expectNoneOf([run.stdout, run.stderr], OLD_TOKEN, NEW_TOKEN, '--query');
    expect(await readFile(run.config, 'utf8')).toBe(await readFile(join(FIXTURES, 'several-runners.toml'), 'utf8'));
    expect(run.leftInTmp).toEqual([]);
  });

  it('exits 9 with one line when the version’s value has no token field', async () => {
    const run = await runDocument('several-runners.toml', { SSM_VersionId: NO_TOKEN_VERSION });

    expect(run.code).toBe(9);
    expect(run.stderr).toBe(`run-update-runner-token: error: secret version ${NO_TOKEN_VERSION} of ${SECRET_ARN} holds no token field\n`);
    expect(run.leftInTmp).toEqual([]);
  });

  it('goes on with a warning when the previous version cannot be read', async () => {
    const run = await runDocument('several-runners.toml', { SSM_PreviousVersionId: WRONG_VERSION });

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status=updated /);
    expect(run.stderr).toBe(
      `run-update-runner-token: warning: cannot read previous secret version ${WRONG_VERSION}: ResourceNotFoundException (aws exit 254); going on without it\n`,
    );
    expectNoneOf([run.stdout, run.stderr], OLD_TOKEN, NEW_TOKEN);
  });

  it('passes the updater’s error line and exit code through', async () => {
    const run = await runDocument('several-runners.toml', { SSM_RunnerId: '4242' });

    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/^update-runner-token: error: no \[\[runners\]\] table has url https:\/\/gitlab\.example\.com and id 4242 \(/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.leftInTmp).toEqual([]);
  });

  it('leaves no file holding a token in TMPDIR when killed with SIGKILL while the AWS CLI reads the previous version', async () => {
    const marker = join(root, `hanging-${randomBytes(4).toString('hex')}`);
    const holding = await killMidRun('legacy-no-ids.toml', { FAKE_AWS_HANG_ON: PREVIOUS }, marker, [NEW_TOKEN, OLD_TOKEN]);

    expect(holding).toEqual([]);
  });

  it('leaves no file holding a token in TMPDIR when killed with SIGKILL while the updater reloads gitlab-runner', async () => {
    const marker = join(root, `hanging-${randomBytes(4).toString('hex')}`);
    // The updater has read both tokens and written config.toml (outside TMPDIR) when it asks systemctl.
    const systemctl = join(root, `hanging-systemctl-${randomBytes(4).toString('hex')}`);
    await writeFile(systemctl, `#!/bin/sh\n: >"${marker}"\nexec sleep 60\n`, { mode: 0o755 });
    const holding = await killMidRun('legacy-no-ids.toml', { UPDATE_RUNNER_TOKEN_SYSTEMCTL: systemctl }, marker, [NEW_TOKEN, OLD_TOKEN]);

    expect(holding).toEqual([]);
  });

  it('in mode add copies the table of FromRunnerId as RunnerId with the version’s token, leaving the old table as it was', async () => {
    const run = await runDocument('several-runners.toml', { SSM_Mode: 'add', SSM_RunnerId: '70', SSM_FromRunnerId: '7' });

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status=added runner_id=70 /);
    const runners = (parse(await readFile(run.config, 'utf8')) as { runners: Array<Record<string, unknown>> }).runners;
    expect(runners.map((r) => r.id)).toEqual([7, 70, 8, 9]);
    expect(runners[0]?.token).toBe('glrt-OLDTOKEN-A');
    expect(runners[1]).toMatchObject({ name: runners[0]?.name, url: runners[0]?.url, token: NEW_TOKEN });
    expect(run.leftInTmp).toEqual([]);
    expectNoneOf([run.stdout, run.stderr, run.awsCalls], NEW_TOKEN);
  });

  it('in mode remove takes RunnerId’s table out without reading any secret', async () => {
    const run = await runDocument('several-runners.toml', { SSM_Mode: 'remove', SSM_RunnerId: '8' });

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status=removed runner_id=8 /);
    const runners = (parse(await readFile(run.config, 'utf8')) as { runners: Array<Record<string, unknown>> }).runners;
    expect(runners.map((r) => r.id)).toEqual([7, 9]);
    expect(run.awsCalls).toBe('');
    expect(run.leftInTmp).toEqual([]);
  });

  it.each([
    [{ SSM_Mode: 'add' }, /SSM_FromRunnerId must be a runner id in mode add/],
    [{ SSM_Mode: 'add', SSM_FromRunnerId: '7; touch x' }, /SSM_FromRunnerId must be a runner id in mode add/],
    [{ SSM_Mode: 'replace' }, /SSM_Mode must be update, add, remove or converge/],
  ])('refuses %o with exit 2 before reading the secret', async (env, message) => {
    const run = await runDocument('several-runners.toml', env);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.awsCalls).toBe('');
  });

  // PWNED stands for a path in the test folder: whatever creates it ran code from a parameter value.
  it.each([
    ['SSM_ConfigPath', '/tmp/x; touch PWNED', 3, /config file does not exist \(\/tmp\/x; touch /],
    ['SSM_ConfigPath', '$(touch PWNED)', 3, /config file does not exist/],
    ['SSM_GitLabUrl', 'https://gitlab.example.com/`touch${IFS}PWNED`', 5, /no \[\[runners\]\] table has url/],
    ['SSM_RunnerId', '7; touch PWNED', 2, /runner id must be a positive integer/],
    ['SSM_ReloadMode', 'none && touch PWNED', 2, /reload mode must be/],
    ['SSM_VersionId', '$(touch PWNED)', 2, /SSM_VersionId is not a secret version id/],
    ['SSM_ExpiresAt', "2026-01-01T00:00:00Z'; touch PWNED; '", 2, /expiry must be an ISO 8601 date-time/],
  ] as const)('treats %s=%s as plain text and runs nothing it holds', async (name, value, code, message) => {
    const pwned = join(root, `pwned-${randomBytes(4).toString('hex')}`);
    const run = await runDocument('several-runners.toml', { [name]: value.replace('PWNED', pwned) });

    expect(existsSync(pwned)).toBe(false);
    expect(run.code).toBe(code);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.leftInTmp).toEqual([]);
  });
});

describe('the host update document', () => {
  it('has no token parameter and no parameter that talks about one', () => {
    const parameters = parametersOf(document);
    expect(Object.keys(parameters).sort()).toEqual([...HOST_UPDATE_PARAMETERS.map((p) => p.name), EXECUTION_TIMEOUT_PARAMETER.name].sort());
    for (const [name, parameter] of Object.entries(parameters)) {
      expect(name).not.toMatch(/token/i);
      expect(parameter.description).not.toMatch(/token/i);
    }
  });

  it('declares every parameter as a String with an allowedPattern and ENV_VAR interpolation', () => {
    for (const parameter of Object.values(parametersOf(document))) {
      expect(parameter.type).toBe('String');
      expect(parameter.interpolationType).toBe('ENV_VAR');
      expect(() => new RegExp(parameter.allowedPattern)).not.toThrow();
      if (parameter.default !== undefined) expect(parameter.default).toMatch(new RegExp(parameter.allowedPattern));
    }
  });

  it('never uses {{ }} placeholders in the shell commands', () => {
    const step = stepOf(document);
    expect(step.action).toBe('aws:runShellScript');
    expect(step.precondition).toEqual({ StringEquals: ['platformType', 'Linux'] });
    expect(step.inputs.runCommand.join('\n')).not.toContain('{{');
    // The only placeholder is the plugin's timeout input, which no shell reads.
    expect(step.inputs.timeoutSeconds).toBe('{{ ExecutionTimeout }}');
  });

  it('embeds the updater, its TOML walker and the wrapper, less their comment lines and indentation, side by side in one folder, between heredoc delimiters that occur in none', async () => {
    const lines = stepOf(document).inputs.runCommand;
    const files = ['update-runner-token.sh', 'toml-edit.awk', 'run-update-runner-token.sh'];
    const texts = await Promise.all(files.map((name) => readFile(join(HOST, name), 'utf8')));
    for (const text of texts) expect(text).not.toContain(HEREDOC_DELIMITER);
    const ends = lines.flatMap((line, i) => (line === HEREDOC_DELIMITER ? [i] : []));
    expect(ends).toHaveLength(3);
    const starts = lines.flatMap((line, i) => (line.endsWith(`<<'${HEREDOC_DELIMITER}'`) ? [i] : []));
    // Each file written into the document's one private folder: the updater finds toml-edit.awk next to itself.
    expect(starts.map((i) => lines[i])).toEqual(files.map((name) => `cat >"$ROTATOR_DIR/${name}" <<'${HEREDOC_DELIMITER}'`));
    const withoutComments = (text: string) => `${text.split('\n').filter((line, i) => i === 0 || !/^\s*#/.test(line)).map((line) => line.trimStart()).join('\n')}`;
    files.forEach((name, k) => {
      expect(`${lines.slice((starts[k] as number) + 1, ends[k]).join('\n')}\n`, name).toBe(withoutComments(texts[k] as string));
    });
    // The walker is a file of its own: the updater runs it with awk -f and carries no copy of it.
    expect(texts[0]).toContain('awk -f "$WALKER"');
    expect(texts[0]).not.toContain('function vscan(');
  });

  it('stays under the 64 KB SSM allows for a document, runtime parameters included', () => {
    const parameters = Object.fromEntries(HOST_UPDATE_PARAMETERS.map((p) => [p.name, ['x'.repeat(200)]]));
    const bytes = Buffer.byteLength(JSON.stringify(document), 'utf8') + Buffer.byteLength(JSON.stringify(parameters), 'utf8');
    expect(bytes).toBeLessThan(SSM_DOCUMENT_MAX_BYTES);
  });

  const realistic: Record<string, string[]> = {
    SecretArn: [SECRET_ARN, 'gitlab-runner-rotator/builders', 'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:a/b_c+d=e.f@g-AbCdEf'],
    VersionId: [VERSION, 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE'],
    PreviousVersionId: ['none', PREVIOUS],
    RunnerId: ['7', '4242', '1234567890123'],
    GitLabUrl: ['https://gitlab.example.com', 'https://gitlab.example.com/', 'http://127.0.0.1:8080/gitlab', 'https://git.example.org/sub/path~x'],
    ConfigPath: ['/etc/gitlab-runner/config.toml', '/home/gitlab-runner/.gitlab-runner/config.toml'],
    ReloadMode: ['sighup', 'restart', 'none'],
    ExpiresAt: ['none', '2026-03-01T12:00:00.000Z', '2026-03-01T12:00:00Z'],
    ExecutionTimeout: ['120', '3600'],
  };
  const hostile = [
    '; rm -rf /',
    '$(rm -rf /)',
    '`rm -rf /`',
    'none; rm -rf /',
    'none\nrm -rf /',
    "' || rm -rf / #",
    '&& rm -rf /',
    '| sh',
    '',
  ];

  it.each(Object.entries(realistic))('accepts realistic values for %s and rejects shell syntax', (name, values) => {
    const pattern = new RegExp(parametersOf(document)[name]?.allowedPattern ?? '(?!)');
    for (const value of values) expect(pattern.test(value), `${name} should accept ${value}`).toBe(true);
    for (const value of hostile) {
      expect(pattern.test(value), `${name} should reject ${JSON.stringify(value)}`).toBe(false);
      if (value !== '') expect(pattern.test(`${values[0]}${value}`), `${name} should reject ${JSON.stringify(values[0] + value)}`).toBe(false);
    }
  });
});
