import type { AlertKind } from './alerts.ts';

/**
 * Which engine raises an alert: its advice names that engine's tools. The AWS engine's operator has Secrets
 * Manager, the rotate-secret log and `rotator … --aws`; the local engine's has `rotator rotate`, `rotator
 * scan` and the files of its fleet file, and no Secrets Manager that retries anything.
 */
export type AlertEngine = 'aws' | 'local';

type NextStep = (runner: string) => string;

/**
 * What the operator does next, per engine and kind: the one place where an alert's advice is written.
 * docs/operations.md has a runbook section for each kind (#runbook-<kind>).
 */
const NEXT_STEPS: Record<AlertEngine, Record<AlertKind, NextStep>> = {
  aws: {
    'rotation-failed': () =>
      'Read the failing step in the rotate-secret log; fix its cause and Secrets Manager retries the step. Cancel the rotation only when AWSPENDING holds no token (a stored token must be finished, it is the only valid one).',
    'host-missed': () =>
      'Bring the named hosts back (instance running, SSM agent online, config.toml valid); the next scan re-pushes the current token to them without a new rotation. To repair at once, run the scanner (or `rotator scan`).',
    'token-rejected': () =>
      'GitLab no longer accepts the stored token: reset it by id with an access token that may manage the runner (configure the admin token secret), or reset it in GitLab and adopt the new token; then rotate.',
    'rotation-stuck': () =>
      'A rotation holds AWSPENDING and keeps failing: read its failing step in the rotate-secret log, fix the cause, and let Secrets Manager retry; new rotations are refused until it finishes.',
    'near-expiry': () =>
      'Rotate now (`rotator rotate --aws RUNNER` or `aws secretsmanager rotate-secret`), then find out why the scan did not: scanner errors, rotation stuck, or a policy that rotates too late.',
    'admin-token-missing': () =>
      'Recovery needs an access token that may manage the runner: store one in the admin token secret for this GitLab (adminTokenSecrets), or reset the runner token by hand and adopt it.',
    'replacement-stalled': () =>
      'Nothing is offline: the old runner still works on every host. Fix gitlab-runner on the named hosts (`rotator doctor`), then rotate again: the rotation resumes with the same new runner and removes the old one once every host runs it.',
  },
  local: {
    'rotation-failed': (r) =>
      `Fix the cause the summary names, then run \`rotator rotate ${r}\` again: it resumes the rotation where it stopped (a new token already stored is finished, never reset twice). The next \`rotator scan\` retries it too, once the runner is due.`,
    'host-missed': (r) =>
      `Bring the named hosts back (config.toml present, valid and writable); the next \`rotator scan\` re-pushes the current token of ${r} to them without a new rotation. To repair at once, run \`rotator scan\`.`,
    'token-rejected': (r) =>
      `GitLab no longer accepts the stored token: set adminTokenFile in the fleet file to an access token that may manage the runner and run \`rotator rotate ${r}\` (it resets by id), or reset the token in GitLab and run \`rotator adopt ${r} --token-file FILE\`.`,
    'rotation-stuck': (r) =>
      `A rotation holds AWSPENDING in the local secret store and keeps failing: run \`rotator rotate ${r}\`, fix the cause its error names and run it again; new rotations of ${r} wait until it finishes.`,
    'near-expiry': (r) =>
      `Rotate now (\`rotator rotate ${r}\`), then find out why \`rotator scan\` did not: is its timer or cron job running, is a rotation stuck, or does the policy rotate too late?`,
    'admin-token-missing': (r) =>
      `Recovery needs an access token that may manage the runner: name a file holding one as adminTokenFile in the fleet file and run \`rotator rotate ${r}\`, or reset the runner token in GitLab and run \`rotator adopt ${r} --token-file FILE\`.`,
    'replacement-stalled': (r) =>
      `Nothing is offline: the old runner still works on every host. Fix gitlab-runner on the named hosts (\`rotator doctor\`), then run \`rotator rotate ${r}\` again: it resumes with the same new runner and removes the old one once every host runs it.`,
  },
};

/** The advice of an alert of `kind` about `runner`, in the words of the engine that raises it. */
export function nextStepFor(engine: AlertEngine, kind: AlertKind, runner: string): string {
  return NEXT_STEPS[engine][kind](runner);
}
