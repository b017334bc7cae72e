import { describe, expect, it } from 'vitest';
import { interpretUpdaterRun, parseStatusLine } from '../../src/core/updater-output.ts';

describe('interpretUpdaterRun', () => {
  it.each([
    [
      'an update',
      { exitCode: 0, stdout: 'status=updated runner_id=3 config=/etc/gitlab-runner/config.toml system_id=s_0123456789ab reload=sighup\n', stderr: '' },
      { status: 'updated', systemId: 's_0123456789ab', detail: 'reload=sighup' },
    ],
    [
      'a host already current, with CRLF output',
      { exitCode: 0, stdout: 'status=already-current runner_id=3 config=/c system_id= reload=skipped\r\n', stderr: '' },
      { status: 'already-current', systemId: null, detail: 'reload=skipped' },
    ],
    [
      'an update whose reload failed',
      { exitCode: 0, stdout: 'status=updated runner_id=3 config=/c system_id=r_AbCdEf012345 reload=failed\n', stderr: 'update-runner-token: warning: SIGHUP failed\n' },
      { status: 'updated', systemId: 'r_AbCdEf012345', detail: 'reload=failed; update-runner-token: warning: SIGHUP failed' },
    ],
    [
      'a system_id of another shape (the first line of some other file), dropped',
      { exitCode: 0, stdout: 'status=updated runner_id=3 config=/c system_id=root:x:0:0:root:/root:/bin/bash reload=none\n', stderr: '' },
      { status: 'updated', systemId: null, detail: 'reload=none' },
    ],
    [
      'a system_id one digit too long, dropped',
      { exitCode: 0, stdout: 'status=updated runner_id=3 config=/c system_id=s_0123456789abc reload=none\n', stderr: '' },
      { status: 'updated', systemId: null, detail: 'reload=none' },
    ],
    [
      'a malformed config',
      { exitCode: 4, stdout: '', stderr: 'update-runner-token: error: malformed TOML at line 3: unterminated string (/c)\n' },
      { status: 'failed', systemId: null, detail: 'exit 4: update-runner-token: error: malformed TOML at line 3: unterminated string (/c)' },
    ],
    [
      'a kept-newer (only a convergence run prints it), as a failure: the host does not hold the version a push sent',
      { exitCode: 0, stdout: 'status=kept-newer runner_id=3 config=/c system_id=s_0123456789ab reload=skipped\n', stderr: '' },
      { status: 'failed', systemId: 's_0123456789ab', detail: 'exit 0: status=kept-newer runner_id=3 config=/c system_id=s_0123456789ab reload=skipped' },
    ],
    [
      'a status it does not know (kept-older), as a failure',
      { exitCode: 0, stdout: 'status=kept-older runner_id=3 config=/c system_id= reload=skipped\n', stderr: '' },
      { status: 'failed', systemId: null, detail: 'exit 0: status=kept-older runner_id=3 config=/c system_id= reload=skipped' },
    ],
    ['a run with no output at all', { exitCode: 127, stdout: '', stderr: '' }, { status: 'failed', systemId: null, detail: 'exit 127: no output' }],
    ['exit 0 without a status line', { exitCode: 0, stdout: 'hello\n', stderr: '' }, { status: 'failed', systemId: null, detail: 'exit 0: hello' }],
  ])('reads %s', (_name, run, verdict) => {
    expect(interpretUpdaterRun(run)).toEqual(verdict);
  });

  it('keeps values that contain "="', () => {
    expect(parseStatusLine('status=updated config=/srv/a=b/config.toml')).toEqual({ status: 'updated', config: '/srv/a=b/config.toml' });
  });
});

describe('a host that prints something shaped like a token', () => {
  it('never lets it into the host result', () => {
    const verdict = interpretUpdaterRun({ exitCode: 1, stdout: '', stderr: 'bash: line 3: glrt-AbCdEfGhIjKlMnOpQrSt: command not found\n' });
    expect(verdict.detail).toBe('exit 1: bash: line 3: [redacted]: command not found');
  });

  it.each([
    ['a routable runner token with an instance prefix', 'acme-glrt-t1_AbCdEfGhIjKl.01xyz'],
    ['a registration token', 'GR1348941AbCdEfGhIjKlMnOp'],
  ])('redacts %s whole', (_what, token) => {
    const verdict = interpretUpdaterRun({ exitCode: 1, stdout: '', stderr: `bash: ${token}: command not found\n` });
    expect(verdict.detail).not.toMatch(/AbCdEfGhIjKl|01xyz/);
    expect(verdict.detail).toContain('[redacted]');
  });

  it('redacts a legacy token without prefix when the caller knows it', () => {
    const legacy = 'x7Hq2LmN9pRs4TvW';
    const verdict = interpretUpdaterRun({ exitCode: 0, stdout: 'status=updated system_id=s_1 reload=sighup\n', stderr: `warning: ${legacy} seen\n` }, [legacy]);
    expect(verdict.detail).toBe('reload=sighup; warning: [redacted] seen');
  });
});
