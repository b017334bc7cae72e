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
    expect(text).toContain('3/3 runners rotated, 8/8 hosts hold a token GitLab accepts, 0 problems');
    expect(text.match(/^outage window \S+: \d+ ms \(GitLab reset -> last host updated\)$/gm)).toHaveLength(3);
    expect(text.match(/accepted \(204\)\s+true/g)).toHaveLength(8);
    // Three old tokens, three new, and the neighbour runner's token were all seen, and none was printed.
    expect(result.tokensSeen).toHaveLength(7);
    expectNoTokens(captured(text), result.tokensSeen);
  });

  it('prints no token on the real stdout and stderr of `rotator demo`', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo'], { cwd: process.cwd() });
    expect(stdout).toContain('8/8 hosts hold a token GitLab accepts');
    expectNoTokens(captured(stdout, stderr), []);
  });
});
