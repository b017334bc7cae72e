import { redactSecrets } from './redact.ts';
import type { HostStatus } from './types.ts';

/** What one run of host/update-runner-token.sh left: its exit code and its two streams. */
export interface UpdaterRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}


export interface UpdaterVerdict {
  status: HostStatus;
  systemId: string | null;
  detail: string;
}

const SUCCESS = new Set(['updated', 'added', 'removed', 'already-current']);

/**
 * What gitlab-runner writes to `.runner_system_id` (common/system_id.go): `s_` and 12 hex digits derived
 * from the machine id, or `r_` and 12 random letters and digits. Anything else a host prints as its
 * system_id is dropped: it would reach GitLab's verify, reports and the ledger.
 */
export const SYSTEM_ID_SHAPE = /^(?:s_[0-9a-f]{12}|r_[A-Za-z0-9]{12})$/;

/**
 * Reads the updater's contract output, the same whether it ran here (local engine) or through SSM Run
 * Command: one `status=updated|added|removed|already-current … system_id=… reload=…` line on success, one
 * error line on stderr otherwise. Anything else is a failure with the last line as the reason, `kept-newer`
 * included: only a convergence run (--unless-newer) prints it, and the host then does not hold the version
 * it was sent, so a push that read it as a success would record a host that is behind as current. The
 * detail is redacted (core/redact.ts): `secrets` are the values the caller handed the host (the tokens it
 * pushed), replaced wherever they appear; token shapes are replaced too (the updater never prints a token;
 * a host's shell might).
 */
export function interpretUpdaterRun(run: UpdaterRun, secrets: readonly string[] = []): UpdaterVerdict {
  const fields = parseStatusLine(run.stdout);
  const systemId = fields.system_id !== undefined && SYSTEM_ID_SHAPE.test(fields.system_id) ? fields.system_id : null;
  if (run.exitCode === 0 && fields.status !== undefined && SUCCESS.has(fields.status)) {
    const warning = lastLine(run.stderr);
    // `added` (--mode add) and `removed` (--mode remove) changed the file as asked: updated, saying which.
    const status = fields.status === 'already-current' ? 'already-current' : 'updated';
    const verb = fields.status === 'added' || fields.status === 'removed' ? `${fields.status}, ` : '';
    return { status, systemId, detail: redactSecrets(`${verb}reload=${fields.reload ?? 'unknown'}${warning ? `; ${warning}` : ''}`, secrets) };
  }
  const reason = lastLine(run.stderr) || lastLine(run.stdout) || 'no output';
  return { status: 'failed', systemId, detail: redactSecrets(`exit ${run.exitCode ?? 'unknown'}: ${reason}`, secrets) };
}

/** The `key=value` fields of the line that starts with `status=`. */
export function parseStatusLine(stdout: string): Record<string, string> {
  const line = stdout.split(/\r?\n/).find((l) => l.startsWith('status=')) ?? '';
  const fields: Record<string, string> = {};
  for (const pair of line.trim().split(/\s+/)) {
    const at = pair.indexOf('=');
    if (at > 0) fields[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return fields;
}

function lastLine(text: string): string {
  return text.trim().split(/\r?\n/).at(-1)?.trim() ?? '';
}
