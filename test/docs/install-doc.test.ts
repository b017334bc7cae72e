import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './markdown.ts';

const run = promisify(execFile);
const INSTALL = readFileSync(join(ROOT, 'docs/install.md'), 'utf8');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; engines: { node: string } };

/** The text of every fenced code block of the guide: the commands an operator copies. */
const commands = [...INSTALL.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '').join('\n');

/** Where the guide installs the package: each prefix stands for the repository's root. */
const PACKAGE_ROOTS = ['"$PKG/', '/opt/gitlab-runner-rotator/', `/usr/local/lib/node_modules/${PACKAGE.name}/`];

/** Every path the commands name inside the installed package, as a path in the repository. */
function packagePaths(text: string): string[] {
  return PACKAGE_ROOTS.flatMap((root) => [...text.matchAll(new RegExp(`${root.replace(/[$.*/"]/g, '\\$&')}([\\w./-]+)`, 'g'))].map((m) => m[1] ?? ''));
}

describe('docs/install.md', () => {
  it('names in its commands only package files that exist in the repository', () => {
    const paths = packagePaths(commands);
    expect(paths).toEqual(expect.arrayContaining(['fleet.example.json', 'host/systemd/gitlab-runner-rotator.service', 'host/systemd/gitlab-runner-rotator.timer', 'src/cli/rotator.mjs']));
    expect(paths.filter((path) => !existsSync(join(ROOT, path)))).toEqual([]);
  });

  it('spots a package path that does not exist (so the check above can fail)', () => {
    expect(packagePaths('sudo install "$PKG/host/systemd/no-such.timer" /etc/systemd/system/')).toEqual(['host/systemd/no-such.timer']);
    expect(existsSync(join(ROOT, 'host/systemd/no-such.timer'))).toBe(false);
  });

  it('names every unit it enables, checks or removes after a unit file of host/systemd/', () => {
    const units = new Set([...commands.matchAll(/\b(gitlab-runner-rotator\.(?:service|timer))\b/g)].map((m) => m[1] ?? ''));
    expect(units).toEqual(new Set(['gitlab-runner-rotator.service', 'gitlab-runner-rotator.timer']));
    for (const unit of units) expect(existsSync(join(ROOT, 'host/systemd', unit)), unit).toBe(true);
    expect(commands).toContain('systemctl enable --now gitlab-runner-rotator.timer');
    expect(commands).toContain('systemctl list-timers gitlab-runner-rotator.timer');
    expect(commands).toContain('journalctl -u gitlab-runner-rotator');
  });

  it('names the tarball `npm pack` writes for this package and version', () => {
    const tarballs = new Set([...commands.matchAll(/[\w.-]+-\d+\.\d+\.\d+\.tgz/g)].map((m) => m[0]));
    expect(tarballs).toEqual(new Set([`${PACKAGE.name}-${PACKAGE.version}.tgz`]));
  });

  it('runs only rotator commands that `rotator --help` lists', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'src/cli/rotator.mjs'), '--help'], { cwd: ROOT });
    const listed = new Set([...stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]));
    const used = [...commands.matchAll(/(?:^|[\s/])rotator ([a-z]+)\b/gm)].map((m) => m[1]);
    expect(used).toEqual(expect.arrayContaining(['scan', 'adopt', 'status']));
    for (const command of used) expect(listed, `rotator ${command}`).toContain(command);
  }, 60_000);

  it('asks for the Node version of package.json engines', () => {
    const minimum = /^>=(\d+\.\d+)$/.exec(PACKAGE.engines.node)?.[1];
    expect(minimum).toBeDefined();
    expect(INSTALL).toContain(`Node.js ${minimum} or later`);
  });

  it('installs with production dependencies only, both ways', () => {
    expect(commands).toContain('npm ci --omit=dev');
    expect(commands).toMatch(/npm install -g --prefix \/usr\/local \.\/[\w.-]+\.tgz/);
  });
});
