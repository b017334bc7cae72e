import { awsSetupError } from '../adapters/aws/sdk-clients.ts';
import { DescribeSecretCommand, GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pLimit from 'p-limit';
import type { AwsFleetConfig } from '../config/aws-fleet-config.ts';
import { parseSecretValue } from '../core/secret-value.ts';
import type { Output } from './output.ts';
import { formatTable } from './table.ts';

/** One runner of the AWS fleet file as its secret shows it: Secrets Manager's rotation state and the recorded expiry. */
export interface AwsRunnerStatus {
  runner: string;
  secretId: string;
  rotationEnabled: boolean | null;
  lastRotatedAt: string | null;
  nextRotationAt: string | null;
  /** Each version with a staging label, and its labels (AWSCURRENT, AWSPENDING, AWSPREVIOUS). */
  versions: Array<{ versionId: string; stages: string[] }>;
  /** An AWSPENDING version that is not AWSCURRENT: a rotation is running or stuck, and RotateSecret is refused. */
  rotationOpen: boolean;
  /** False while the secret holds the stack's placeholder (no `rotator adopt --aws` yet); null when unread. */
  adopted: boolean | null;
  /** token_expires_at of AWSCURRENT; null when the token has none (or the secret could not be read). */
  expiresAt: string | null;
  daysLeft: number | null;
  /** Why the row is incomplete (no such secret, access denied, a malformed value): never a value. */
  problem: string | null;
}

/** Runners read at once: two calls each, far under Secrets Manager's per-second quotas. */
const CONCURRENCY = 8;
const DAY_MS = 86_400_000;

/**
 * `rotator --fleet fleet.aws.json status --aws`: for each runner of the AWS fleet file, DescribeSecret (rotation
 * on, last and next rotation, versions and stages) and the expiry of the token AWSCURRENT holds.
 *
 * Why the expiry comes from AWSCURRENT's value (GetSecretValue) and not from tags or the ledger: the stack
 * records a token's expiry in the secret version itself (`token_expires_at`, next to the token, written by
 * createSecret with GitLab's reply; src/core/secret-value.ts), which is what the scanner reads to decide a
 * rotation. The tags carry only the runner's record (runner-tags.ts), and the ledger holds rotation history
 * and per-host results, not the current expiry (and the operator policy grants no read of it). So this reads
 * the value with the operator's GetSecretValue, keeps the expiry and drops the rest at once: no token reaches
 * the output, and a malformed value is described by its field, never shown.
 */
export async function collectAwsStatus(fleet: AwsFleetConfig, client: SecretsManagerClient, now: Date): Promise<AwsRunnerStatus[]> {
  const limit = pLimit(CONCURRENCY);
  return Promise.all(fleet.runners.map((runner) => limit(() => statusOf(runner.name, runner.secretId, client, now))));
}

async function statusOf(runner: string, secretId: string, client: SecretsManagerClient, now: Date): Promise<AwsRunnerStatus> {
  const row: AwsRunnerStatus = { runner, secretId, rotationEnabled: null, lastRotatedAt: null, nextRotationAt: null, versions: [], rotationOpen: false, adopted: null, expiresAt: null, daysLeft: null, problem: null };
  try {
    const described = await client.send(new DescribeSecretCommand({ SecretId: secretId }));
    row.rotationEnabled = described.RotationEnabled === true;
    row.lastRotatedAt = described.LastRotatedDate?.toISOString() ?? null;
    row.nextRotationAt = described.NextRotationDate?.toISOString() ?? null;
    row.versions = Object.entries(described.VersionIdsToStages ?? {}).map(([versionId, stages]) => ({ versionId, stages: [...stages].sort() }));
    row.rotationOpen = row.versions.some((v) => v.stages.includes('AWSPENDING') && !v.stages.includes('AWSCURRENT'));
    const raw = (await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }))).SecretString;
    if (raw === undefined) throw new Error('AWSCURRENT holds SecretBinary; a runner secret holds a SecretString (JSON)');
    row.adopted = !isPlaceholder(raw);
    if (row.adopted) {
      const value = parseSecretValue(raw, `${secretId} AWSCURRENT`);
      row.expiresAt = value.tokenExpiresAt;
      row.daysLeft = value.tokenExpiresAt === null ? null : Math.floor(((Date.parse(value.tokenExpiresAt) - now.getTime()) / DAY_MS) * 10) / 10;
    }
  } catch (error) {
    // No region or no credentials is the whole command's problem, not this runner's: said once, exit 2.
    const setup = awsSetupError(error);
    if (setup !== error) throw setup;
    row.problem = describeProblem(error, secretId);
  }
  return row;
}

/** The stack's placeholder before adoption: `{"adopted":false,…}` (runner-secret.ts). */
function isPlaceholder(raw: string): boolean {
  try {
    return (JSON.parse(raw) as { adopted?: unknown }).adopted === false;
  } catch {
    return false;
  }
}

/**
 * A failure as one line. SDK errors name the secret and the caller, never a value; parseSecretValue names
 * the field only. ResourceNotFoundException is said in the operator's terms.
 */
function describeProblem(error: unknown, secretId: string): string {
  const err = error as Error;
  if (err.name === 'ResourceNotFoundException') return `no secret ${secretId} (deploy the stack with this fleet file)`;
  if (err.name === 'AccessDeniedException') return `access denied: attach the stack's OperatorPolicyArn (${err.message})`;
  return `${err.name === 'Error' || err.name === 'InvalidInputError' ? '' : `${err.name}: `}${err.message}`;
}

/** The rows as a table (or one JSON object per runner); returns the exit code: 1 when a runner could not be read. */
export function printAwsStatus(rows: AwsRunnerStatus[], output: Output, json: boolean): number {
  if (json) {
    for (const row of rows) output.out(JSON.stringify(row));
  } else {
    const date = (iso: string | null) => (iso === null ? '-' : iso.slice(0, 16).replace('T', ' '));
    const table = formatTable(
      ['RUNNER', 'ROTATION', 'LAST ROTATED', 'NEXT ROTATION', 'EXPIRES', 'DAYS LEFT', 'VERSIONS'],
      rows.map((r) => [
        r.runner,
        r.rotationEnabled === null ? '?' : r.rotationEnabled ? (r.rotationOpen ? 'on, open' : 'on') : 'off',
        date(r.lastRotatedAt),
        date(r.nextRotationAt),
        r.adopted === false ? 'not adopted' : r.problem !== null ? '?' : r.expiresAt === null ? 'never' : date(r.expiresAt),
        r.daysLeft === null ? '-' : String(r.daysLeft),
        r.versions.map((v) => `${v.versionId.slice(0, 8)}:${v.stages.map((s) => s.replace(/^AWS/, '').toLowerCase()).join('+')}`).join(' ') || '-',
      ]),
    );
    for (const line of table) output.out(line);
  }
  const unread = rows.filter((r) => r.problem !== null);
  for (const row of unread) output.err(`[${row.runner}] ${row.problem}`);
  return unread.length > 0 ? 1 : 0;
}
