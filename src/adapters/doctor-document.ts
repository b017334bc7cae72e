import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../core/errors.ts';
import { HEREDOC_DELIMITER, SSM_DOCUMENT_MAX_BYTES } from './host-update-document.ts';

/**
 * The read-only SSM Command document (schema 2.2, aws:runShellScript) that runs the doctor's host
 * checks on every targeted host: host/doctor.sh, with host/update-runner-token.sh beside it only so that
 * doctor.sh can run the updater's TOML validator in its plan mode (the awk walker without an output
 * file). The updater itself is never executed. Nothing writes config.toml, nothing calls
 * POST /runners/verify, no token is sent anywhere: the only network call is an unauthenticated
 * `GET /api/v4/version` with curl (turn it off with Probe=no).
 *
 * Codes the host side covers: config.unreadable, config.unparseable, config.no-runners, file.mode,
 * token.missing, token.legacy, token.expired, token.expiring (config.toml's token_expires_at only),
 * self-rotation.enabled (info per host; the fleet report makes it a warning when the runner is on more
 * than one host, or Shared=yes), network.unreachable, tls.untrusted, clock.skew. Not covered, and
 * listed as not run in every host's output: token.invalid, registration.disallowed, url.mismatch,
 * manager.stale (they need the token sent to GitLab, or an access token).
 *
 * Exit code: 0 whenever doctor.sh ran to the end, whatever it found (its verdict is in the output; a
 * per-host SSM status of Failed then means the doctor itself could not run); otherwise doctor.sh's code
 * (3 bad parameters). Parameters are ENV_VAR with an allowedPattern, as in host-update-document.ts.
 * src/doctor/fleet-report.ts turns the invocations' outputs into the per-host table.
 */

export type DoctorParameterName = 'ConfigPath' | 'ExpiringDays' | 'Shared' | 'Probe' | 'ProbeTimeout';

export interface DoctorParameter {
  name: DoctorParameterName;
  allowedPattern: string;
  description: string;
  default: string;
}

export const DOCTOR_PARAMETERS: readonly DoctorParameter[] = [
  { name: 'ConfigPath', allowedPattern: '^/[A-Za-z0-9._/-]{1,1024}$', description: "Absolute path of gitlab-runner's config.toml on the host.", default: '/etc/gitlab-runner/config.toml' },
  { name: 'ExpiringDays', allowedPattern: '^[0-9]{1,4}$', description: 'token.expiring fires this many days before token_expires_at.', default: '7' },
  { name: 'Shared', allowedPattern: '^(yes|no)$', description: 'yes: the runners on these hosts are shared (self-rotation.enabled is a warning on each host).', default: 'no' },
  { name: 'Probe', allowedPattern: '^(yes|no)$', description: 'yes: GET /api/v4/version (no credentials) with curl for network, TLS and clock checks.', default: 'yes' },
  { name: 'ProbeTimeout', allowedPattern: '^[1-9][0-9]{0,2}$', description: 'Seconds for that GET.', default: '10' },
];

const STEP_NAME = 'runnerDoctor';

export function buildDoctorDocument(): Record<string, unknown> {
  const doctor = readScript(new URL('../../host/doctor.sh', import.meta.url));
  const updater = readScript(new URL('../../host/update-runner-token.sh', import.meta.url));
  const runCommand = [
    // POSIX sh up to the bash line (the agent runs these lines with sh -c).
    'set -eu',
    'umask 077',
    'DOCTOR_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gitlab-runner-doctor.XXXXXXXXXX")',
    `trap 'rm -rf -- "$DOCTOR_DIR"' EXIT`,
    `trap 'exit 129' HUP`,
    `trap 'exit 130' INT`,
    `trap 'exit 143' TERM`,
    `cat >"$DOCTOR_DIR/doctor.sh" <<'${HEREDOC_DELIMITER}'`,
    ...doctor,
    HEREDOC_DELIMITER,
    // Only read by doctor.sh (its TOML validator); never run.
    `cat >"$DOCTOR_DIR/update-runner-token.sh" <<'${HEREDOC_DELIMITER}'`,
    ...updater,
    HEREDOC_DELIMITER,
    'DOCTOR_RC=0',
    'bash "$DOCTOR_DIR/doctor.sh" --config "$SSM_ConfigPath" --updater "$DOCTOR_DIR/update-runner-token.sh" --expiring-days "$SSM_ExpiringDays" --shared "$SSM_Shared" --probe "$SSM_Probe" --timeout "$SSM_ProbeTimeout" || DOCTOR_RC=$?',
    // 1 and 2 are findings (in the output), not a failure of the command.
    'case "$DOCTOR_RC" in 0|1|2) exit 0 ;; *) exit "$DOCTOR_RC" ;; esac',
  ];
  if (runCommand.some((line) => line.includes('{{'))) throw new Error('the doctor document must not contain "{{" in runCommand');
  const parameters = Object.fromEntries(
    DOCTOR_PARAMETERS.map((p) => [p.name, { type: 'String', description: p.description, allowedPattern: p.allowedPattern, interpolationType: 'ENV_VAR', default: p.default }]),
  );
  const document: Record<string, unknown> = {
    schemaVersion: '2.2',
    description:
      "Read-only: checks gitlab-runner's config.toml (mode, TOML, tokens' kind and expiry, self-rotation flag) and GitLab's reachability, TLS and clock from this host. Prints one JSON line per finding, then {\"runners\":[…]} and {\"notRun\":[…]}. Never writes config.toml, never sends a token.",
    parameters,
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: STEP_NAME,
        precondition: { StringEquals: ['platformType', 'Linux'] },
        inputs: { timeoutSeconds: '120', runCommand },
      },
    ],
  };
  const bytes = Buffer.byteLength(JSON.stringify(document), 'utf8');
  if (bytes >= SSM_DOCUMENT_MAX_BYTES) throw new Error(`the doctor document is ${bytes} bytes; SSM accepts less than ${SSM_DOCUMENT_MAX_BYTES}`);
  return document;
}

function readScript(url: URL): string[] {
  const path = fileURLToPath(url);
  const text = readFileSync(path, 'utf8');
  if (text.includes(HEREDOC_DELIMITER)) throw new Error(`${path} contains the heredoc delimiter ${HEREDOC_DELIMITER}`);
  if (text.includes('{{')) throw new Error(`${path} contains "{{", which SSM would treat as a parameter placeholder`);
  if (text.includes('\r')) throw new Error(`${path} has CR characters (CRLF line ends?)`);
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** SendCommand `Parameters` for the doctor document; each value checked against its allowedPattern. */
export function doctorCommandParameters(values: Partial<Record<DoctorParameterName, string>> = {}): Record<string, string[]> {
  const parameters: Record<string, string[]> = {};
  for (const p of DOCTOR_PARAMETERS) {
    const value = values[p.name] ?? p.default;
    if (!new RegExp(p.allowedPattern).test(value)) throw new InvalidInputError(`doctor document parameter ${p.name}`, `"${value}" does not match ${p.allowedPattern}`);
    parameters[p.name] = [value];
  }
  return parameters;
}
