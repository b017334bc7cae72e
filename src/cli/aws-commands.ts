import { randomUUID } from 'node:crypto';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readAdminTokenSecret, SecretsManagerStore } from '../adapters/aws/secrets-manager-store.ts';
import { parseAwsFleetConfig, type AwsFleetConfig, type AwsManagedRunner } from '../config/aws-fleet-config.ts';
import { InvalidInputError } from '../core/errors.ts';
import { runnerAsStored } from '../core/runner-as-stored.ts';
import { atRunnerId } from '../core/types.ts';
import { serializeSecretValue } from '../core/secret-value.ts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoDbDocumentClient, secretsManagerClient } from '../adapters/aws/sdk-clients.ts';
import { DynamoDbLedger } from '../adapters/aws/dynamodb-ledger.ts';
import { GitLabAdapter } from '../adapters/gitlab/gitlab.ts';
import { findCurrentToken } from './adopt-command.ts';
import { migrateAws, type MigrateOptions } from './migrate-command.ts';
import type { Output } from './output.ts';

/** The AWS side of the CLI: the deployed stack's secrets, reached with the operator's own AWS credentials. */
export interface AwsCli {
  fleet: AwsFleetConfig;
  store: SecretsManagerStore;
  /** The client under `store`, for the reads the store does not wrap (status --aws: NextRotationDate). */
  secretsManager: SecretsManagerClient;
}

export function createAwsCli(fleetText: string, fleetPath: string, client: SecretsManagerClient = secretsManagerClient()): AwsCli {
  return { fleet: parseAwsFleetConfig(fleetText, fleetPath), store: new SecretsManagerStore(client), secretsManager: client };
}

function awsRunner(cli: AwsCli, name: string): AwsManagedRunner {
  const runner = cli.fleet.runners.find((r) => r.name === name);
  if (!runner) throw new InvalidInputError(`runner "${name}"`, `not in the AWS fleet config (known: ${cli.fleet.runners.map((r) => r.name).join(', ')})`);
  return runner;
}

/**
 * `rotator adopt --aws NAME --token-file F`: stores the runner's existing token as AWSCURRENT of its secret,
 * then (unless --no-rotate) starts a rotation at once, so the expiry becomes known and every host is in step.
 */
export async function adoptAws(
  cli: AwsCli,
  name: string,
  tokenFile: string | undefined,
  rotate: boolean,
  output: Output,
  now: Date,
  runnerId?: number,
  gitlab: Pick<GitLabAdapter, 'verify'> = new GitLabAdapter(),
): Promise<void> {
  // After a replacement the secret, not the fleet file, knows the runner id the hosts run; --runner-id says it outright.
  const configured = awsRunner(cli, name);
  const runner = runnerId === undefined ? await runnerAsStored(cli.store, configured) : atRunnerId(configured, runnerId);
  if (tokenFile === undefined) throw new InvalidInputError('--token-file', 'is required with --aws: the runner hosts are not on this machine');
  const found = await findCurrentToken({ ...runner, hosts: { kind: 'config-files', files: [] } }, tokenFile);
  // Stored alone (--no-rotate), nothing else would check the token and its expiry would read "never": GitLab
  // says whose it is and when it expires (verify as the rotator, never as a host: invariant 7). A rotation
  // (the default) finds both out by itself.
  let tokenExpiresAt: string | null = null;
  if (!rotate) {
    const checked = await gitlab.verify(runner.gitlabUrl, found.token);
    if (checked.runnerId !== runner.runnerId) {
      throw new InvalidInputError(`runner "${runner.name}"`, `GitLab says the token belongs to runner ${checked.runnerId}, not ${runner.runnerId}: set runnerId in the fleet file, or pass --runner-id ${checked.runnerId}`);
    }
    tokenExpiresAt = checked.tokenExpiresAt;
  }
  const value = serializeSecretValue({ runnerId: runner.runnerId, gitlabUrl: runner.gitlabUrl, token: found.token, tokenExpiresAt, tokenObtainedAt: now.toISOString() });
  await cli.store.adoptCurrent(runner.secretId, randomUUID(), value);
  output.out(`[${runner.name}] stored the token from ${found.source} as AWSCURRENT of ${runner.secretId} (runner ${runner.runnerId})`);
  if (rotate) await rotateAws(cli, name, output);
}

/** `rotator rotate --aws NAME`: RotateSecret; the rotation hook then runs the four steps. */
export async function rotateAws(cli: AwsCli, name: string, output: Output): Promise<void> {
  const runner = awsRunner(cli, name);
  const versionId = await cli.store.startRotation(runner.secretId);
  output.out(`[${runner.name}] rotation started (version ${versionId}); follow it in the rotate-secret function's logs`);
}

/**
 * `rotator migrate --aws NAME`: reads the plan with the operator's credentials (the runner's secret, the
 * admin token secret, GitLab), then asks the stack to carry it out (see migrate-command.ts).
 */
export async function migrateThroughStack(
  cli: AwsCli,
  name: string,
  options: MigrateOptions & { ledgerTable: string | undefined },
  output: Output,
  now: Date,
  clients: { dynamodb?: DynamoDBDocumentClient; gitlab?: GitLabAdapter } = {},
): Promise<number> {
  const runner = awsRunner(cli, name);
  const ledger =
    options.ledgerTable === undefined ? undefined : new DynamoDbLedger(clients.dynamodb ?? dynamoDbDocumentClient(), options.ledgerTable);
  const gitlab = clients.gitlab ?? new GitLabAdapter();
  return migrateAws(
    { secrets: cli.store, gitlab, ledger, adminToken: (url) => readAdminTokenSecret(cli.store, cli.fleet.adminTokenSecrets, url) },
    runner,
    options,
    output,
    now,
  );
}
