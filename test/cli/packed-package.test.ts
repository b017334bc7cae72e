import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Every file below a folder of the repository, as repository paths. */
async function filesBelow(folder: string): Promise<string[]> {
  const names = await readdir(join(REPO, folder), { recursive: true, withFileTypes: true });
  return names.filter((entry) => entry.isFile()).map((entry) => relative(REPO, join(entry.parentPath, entry.name)));
}

/**
 * The repository files the code reads beside itself at run time: every `new URL('<relative path>',
 * import.meta.url)` in src/ (the host updater and its awk program, the SSM documents' scripts, package.json).
 */
async function filesReadBesideTheCode(): Promise<string[]> {
  const found: string[] = [];
  for (const file of (await filesBelow('src')).filter((name) => name.endsWith('.ts'))) {
    const text = await readFile(join(REPO, file), 'utf8');
    for (const match of text.matchAll(/new URL\('(\.{1,2}\/[^']+)', import\.meta\.url\)/g)) {
      found.push(relative(REPO, resolve(REPO, dirname(file), match[1] ?? '')));
    }
  }
  return found;
}

describe('the npm package (`npm pack`)', () => {
  let packed: Set<string>;

  beforeAll(async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO });
    const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
    packed = new Set(pack?.files.map((file) => file.path));
  }, 60_000);

  it('holds every file of src/, the launcher and package.json', async () => {
    const source = await filesBelow('src');
    expect(source).toContain('src/cli/rotator.mjs');
    for (const file of [...source, 'package.json']) expect(packed, file).toContain(file);
  });

  it('holds every file the code reads beside itself at run time, the host updater among them', async () => {
    const read = await filesReadBesideTheCode();
    expect(read).toEqual(expect.arrayContaining(['host/update-runner-token.sh', 'host/toml-edit.awk', 'host/doctor.sh', 'package.json']));
    for (const file of read) expect(packed, file).toContain(file);
  });

  it('holds what docs/install.md installs from it: the systemd units, the example fleet file, the install guide', () => {
    for (const file of ['host/systemd/gitlab-runner-rotator.service', 'host/systemd/gitlab-runner-rotator.timer', 'fleet.example.json', 'docs/install.md']) {
      expect(packed, file).toContain(file);
    }
  });

  it('leaves out the tests, the benchmark and the CDK app, which an installed command never runs', () => {
    expect(packed.size).toBeGreaterThan(100);
    const left = [...packed].filter((file) => /^(test|bench|lib|functions|bin|events|\.ci)\//.test(file));
    expect(left).toEqual([]);
  });
});

// The tarball unpacked and given its production dependencies only, offline, as `npm ci --omit=dev` does
// for a clone (with the lock file beside it): the command then runs a whole rotation from another folder,
// which needs every file it reads at run time, the host updater included.
describe('the packed package with its production dependencies only', () => {
  let work: string;
  let launcher: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rotator-packed-'));
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: REPO });
    const [pack] = JSON.parse(stdout) as Array<{ filename: string }>;
    await run('tar', ['-xzf', join(work, pack?.filename ?? ''), '-C', work]);
    const installed = join(work, 'package');
    await copyFile(join(REPO, 'package-lock.json'), join(installed, 'package-lock.json'));
    await run('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: installed });
    launcher = join(installed, 'src/cli/rotator.mjs');
    await mkdir(join(work, 'cwd'));
  }, 300_000);

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('has no dev dependency installed (no vitest, no typescript, no aws-cdk-lib)', async () => {
    const modules = await readdir(join(work, 'package', 'node_modules'));
    expect(modules).toContain('tsx');
    for (const dev of ['vitest', 'typescript', 'aws-cdk-lib']) expect(modules).not.toContain(dev);
  });

  it('lists `scan --every-hours`, the command the systemd timer runs', async () => {
    const { stdout } = await run(process.execPath, [launcher, 'scan', '--help'], { cwd: join(work, 'cwd') });
    expect(stdout).toContain('--every-hours <hours>');
  }, 60_000);

  it('runs the demo to its end: three runners rotated on eight hosts through the packed host updater', async () => {
    const { stdout } = await run(process.execPath, [launcher, 'demo'], { cwd: join(work, 'cwd') });
    expect(stdout).toContain('demo: 3/3 runners rotated (reset), 8/8 hosts hold a token GitLab accepts, 0 problems');
  }, 180_000);
});
