import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * bin/app.ts as the cdk CLI runs it (a child process; the CLI hands it the context in CDK_CONTEXT_JSON and
 * the output folder in CDK_OUTDIR). Only refusals are run here: each stops before any bundling.
 */
function runApp(context: Record<string, unknown>) {
  const outdir = mkdtempSync(join(tmpdir(), 'rotator-synth-'));
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify(context), CDK_OUTDIR: outdir },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function fleetFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'rotator-fleet-')), 'fleet.aws.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const RUNNER = { name: 'builders', gitlabUrl: 'https://gitlab.example.com', runnerId: 11, hosts: { tag: { key: 'gitlab-runner', value: 'builders' } } };

describe('cdk synth with a missing or wrong fleet file', () => {
  it('refuses to synthesize without a fleet file, saying how to name one, with exit code 2 and no stack trace', () => {
    const { status, stderr } = runApp({});
    expect(status).toBe(2);
    expect(stderr).toMatch(/^rotator synth: cdk context fleetConfig: is not set: .*-c fleetConfig=fleet\.aws\.json/);
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  it('names the file and the field of a wrong value, with exit code 2 and no stack trace', () => {
    const path = fleetFile({ runners: [{ ...RUNNER, gitlabUrl: 'gitlab.example.com' }] });
    const { status, stderr } = runApp({ fleetConfig: path });
    expect(status).toBe(2);
    expect(stderr.trim().split('\n')[0]).toMatch(new RegExp(`^rotator synth: ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: runners\\[0\\]\\.gitlabUrl: `));
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  it('names a fleet file that cannot be read, and one that is not JSON', () => {
    const missing = runApp({ fleetConfig: '/nonexistent/fleet.aws.json' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^rotator synth: \/nonexistent\/fleet\.aws\.json: cannot read the fleet file \(ENOENT\)/);
    const notJson = runApp({ fleetConfig: fleetFile('{ "runners": [') });
    expect(notJson.status).toBe(2);
    expect(notJson.stderr).toMatch(/fleet\.aws\.json: not valid JSON/);
  });

  it('refuses a second stack name on the default secret prefix, naming the field', () => {
    const { status, stderr } = runApp({ fleetConfig: fleetFile({ stackName: 'TeamBRotator', runners: [RUNNER] }) });
    expect(status).toBe(2);
    expect(stderr).toMatch(/fleet\.aws\.json: secretPrefix: is not set, but stackName is "TeamBRotator"/);
  });
});
