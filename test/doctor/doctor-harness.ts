/** Shared by the doctor tests: runner hosts on disk from fixtures, and the CLI run in-process. */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { expect } from 'vitest';
import { registerDoctorCommand } from '../../src/cli/doctor-command.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { CHECKS, type FindingCode } from '../../src/doctor/finding.ts';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** A TOML datetime as gitlab-runner writes it (UTC, whole seconds). */
export function stamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface TestHost {
  dir: string;
  configPath: string;
  systemId: string | null;
}

/**
 * A runner host folder: config.toml from a fixture with `@NAME@` placeholders filled in, mode 0600
 * unless told, and `.runner_system_id` unless `systemId: null`.
 */
export async function writeHost(
  root: string,
  fixture: string,
  vars: Record<string, string | number> = {},
  opts: { mode?: number; systemId?: string | null } = {},
): Promise<TestHost> {
  const dir = await mkdtemp(join(root, 'host-'));
  let text = await readFile(join(FIXTURES, fixture), 'utf8');
  for (const [name, value] of Object.entries(vars)) text = text.split(`@${name}@`).join(String(value));
  const configPath = join(dir, 'config.toml');
  await writeFile(configPath, text);
  await chmod(configPath, opts.mode ?? 0o600);
  const systemId = opts.systemId === undefined ? `s_${randomBytes(6).toString('hex')}` : opts.systemId;
  if (systemId !== null) await writeFile(join(dir, '.runner_system_id'), `${systemId}\n`, { mode: 0o600 });
  return { dir, configPath, systemId };
}

export async function tempRoot(prefix: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(root, { recursive: true });
  return root;
}

export interface CliRun {
  code: number;
  lines: string[];
  text: string;
  /** The parsed --json lines that are findings. */
  findings: Array<{ code: FindingCode; severity: string; runner: string | null; evidence: string; fix: string }>;
  notRun: Array<{ check: string; runner: string | null; reason: string }>;
}

/** Runs `rotator doctor ARGS` through registerDoctorCommand, as main.ts wires it. */
export async function runDoctorCli(args: string[]): Promise<CliRun> {
  const output = recordingOutput();
  let code = -1;
  const program = new Command('rotator').exitOverride().configureOutput({ writeOut: (s) => output.out(s.trimEnd()), writeErr: (s) => output.err(s.trimEnd()) });
  registerDoctorCommand(program, output, (c) => {
    code = c;
  });
  await program.parseAsync(['doctor', ...args], { from: 'user' });
  const findings: CliRun['findings'] = [];
  let notRun: CliRun['notRun'] = [];
  if (args.includes('--json')) {
    for (const line of output.lines) {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if ('code' in parsed) findings.push(parsed as unknown as CliRun['findings'][number]);
      else notRun = parsed.notRun as CliRun['notRun'];
    }
  }
  return { code, lines: output.lines, text: output.lines.join('\n'), findings, notRun };
}

/** The one finding with `code` (fails when there is none or more than one), its fix checked against the table. */
export function only(run: CliRun, code: FindingCode): CliRun['findings'][number] {
  const found = run.findings.filter((f) => f.code === code);
  expect(found, `findings with code ${code} in:\n${run.text}`).toHaveLength(1);
  const f = found[0]!;
  expect(f.fix).toBe(CHECKS[code].fix);
  return f;
}
