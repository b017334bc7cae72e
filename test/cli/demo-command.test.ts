import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/demo-command.ts';
import { recordingOutput } from '../../src/cli/output.ts';
import { captured, expectNoTokens } from '../support/token-leaks.ts';

const run = promisify(execFile);

describe('the demo', () => {
  it('rotates three runners on eight hosts, checks every host against GitLab, and prints no token', async () => {
    const output = recordingOutput();
    const result = await runDemo({ output });
    const text = output.lines.join('\n');
    expect(result.exitCode).toBe(0);
    expect(text).toContain('3/3 runners rotated (reset), 8/8 hosts hold a token GitLab accepts, 0 problems');
    expect(text.match(/^outage window \S+: \d+ ms \(GitLab reset -> last host updated\)$/gm)).toHaveLength(3);
    expect(text.match(/accepted \(204\)\s+true/g)).toHaveLength(8);
    expect(text).toMatch(/^gitlab-runner polls in which a host could take no job while the rotation ran: \d+ of \d+$/m);
    // Three old tokens, three new, and the neighbour runner's token were all seen, and none was printed.
    expect(result.tokensSeen).toHaveLength(7);
    expectNoTokens(captured(text), result.tokensSeen);
  });

  it('replaces three runners with an outage window of 0 ms each, no host ever without a working runner, and no old runner left', async () => {
    const output = recordingOutput();
    const result = await runDemo({ output, strategy: 'replace' });
    const text = output.lines.join('\n');
    expect(result.exitCode).toBe(0);
    expect(result.outageWindowsMs).toEqual({ 'docker-builders': 0, 'shell-deployers': 0, 'arm64-builders': 0 });
    expect(result.offlinePolls).toBe(0);
    expect(text.match(/^outage window \S+: 0 ms \(old runner \d+ deleted after the last host ran runner \d+\)$/gm)).toHaveLength(3);
    expect(text).toContain('replaced runners still in GitLab: none');
    expect(text).toContain('3/3 runners rotated (replace), 8/8 hosts hold a token GitLab accepts, 0 problems');
    // Three old tokens, three new runners' tokens, the neighbour's and the access token: none printed.
    expect(result.tokensSeen).toHaveLength(8);
    expectNoTokens(captured(text), result.tokensSeen);
  });

  it('prints no token on the real stdout and stderr of `rotator demo`', async () => {
    const { stdout, stderr } = await run(process.execPath, ['src/cli/rotator.mjs', 'demo'], { cwd: process.cwd() });
    expect(stdout).toContain('8/8 hosts hold a token GitLab accepts');
    expectNoTokens(captured(stdout, stderr), []);
  });
});
