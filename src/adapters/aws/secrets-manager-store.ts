import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  UpdateSecretVersionStageCommand,
  paginateListSecrets,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { InvalidInputError, RotationInProgressError, SecretNotFoundError } from '../../core/errors.ts';
import { openRotationVersionId } from '../../core/rotation-guards.ts';
import type { SecretDescription, SecretStore, SecretVersionInfo, VersionRef } from '../../core/ports.ts';
import type { VersionStage } from '../../core/types.ts';

/** One secret of the fleet as ListSecrets shows it: metadata only, never a value. */
export interface ManagedSecretSummary {
  arn: string;
  name: string;
  /** Every tag of the secret (ListSecrets returns them): the runner's record (runner-tags.ts runnerFromTags). */
  tags: Record<string, string>;
  /** RotationRules.AutomaticallyAfterDays: Secrets Manager's own schedule; undefined when it has none in days. */
  rotateEveryDays: number | undefined;
  rotationEnabled: boolean;
  /** ISO 8601 of LastRotatedDate; null when the secret was never rotated. */
  lastRotatedAt: string | null;
  /** From SecretVersionsToStages: versions with at least one staging label. */
  versions: SecretVersionInfo[];
  /** Some version has AWSPENDING without AWSCURRENT: RotateSecret would be refused. */
  rotationInProgress: boolean;
}

const KNOWN_STAGES: readonly VersionStage[] = ['AWSCURRENT', 'AWSPENDING', 'AWSPREVIOUS'];

/**
 * The AWS engine's secret store: a runner's token lives in one Secrets Manager secret, one version per
 * token, with the service's own staging labels. Each method maps to the API like this:
 *
 * - `describe` → DescribeSecret (RotationEnabled, VersionIdsToStages).
 * - `describeManaged` → DescribeSecret: name, tags (the runner a secret records), rotation and versions in one
 *   call (the rotation hook's and the scan worker's read).
 * - `getValue` → GetSecretValue by VersionId or VersionStage; a version without a value (the AWSPENDING
 *   version RotateSecret opens before createSecret fills it) answers ResourceNotFoundException → undefined.
 * - `putPendingValue` → PutSecretValue with ClientRequestToken = the version id and VersionStages
 *   [AWSPENDING]. The API reference of PutSecretValue (ClientRequestToken): the same token with the same
 *   SecretString "succeeds but does nothing"; the same token with different data fails, since a version
 *   cannot be modified (ResourceExistsException, the error clients catch for it) → RotationInProgressError.
 * - `promote` → UpdateSecretVersionStage moving AWSCURRENT (MoveToVersionId / RemoveFromVersionId). The API
 *   reference: "Whenever you move AWSCURRENT, Secrets Manager automatically moves the label AWSPREVIOUS to
 *   the version that AWSCURRENT was removed from." Then a second UpdateSecretVersionStage takes AWSPENDING
 *   off the promoted version, as finish_secret of the AWS rotation template does
 *   (aws-samples/aws-secrets-manager-rotation-lambdas, SecretsManagerRotationTemplate/lambda_function.py).
 *   Should that second call fail, the rotation is still finished: RotateSecret's reference counts AWSPENDING
 *   on the AWSCURRENT version as a completed rotation, and a retried finishSecret stops at its guard.
 * - `adoptCurrent` → PutSecretValue with VersionStages [AWSCURRENT] (an existing runner token becomes current).
 * - `startRotation` → RotateSecret with RotateImmediately; "A previous rotation isn't complete. That rotation
 *   will be reattempted." (InvalidRequestException, the text Secrets Manager and its emulators answer while
 *   AWSPENDING sits on a version that is not AWSCURRENT) → RotationInProgressError.
 * - `listManagedSecrets` → ListSecrets filtered by tag key and name prefix, every page through `paginateListSecrets`; each
 *   entry comes with all of its tags, so a scan reads every runner's record without a call per secret.
 *
 * Sources: the PutSecretValue, UpdateSecretVersionStage and RotateSecret pages of the Secrets Manager API
 * reference (docs.aws.amazon.com/secretsmanager/latest/apireference/) and the same text in this SDK's
 * command typings; the RotateSecret message as quoted in the Terraform AWS provider's tests and AWS rotation
 * troubleshooting write-ups.
 *
 * Only the SDK exceptions named above are translated (matched by `error.name`); anything else is rethrown
 * unchanged. A token never leaves through an error: messages name secrets and versions only, and no error
 * built here carries a request input.
 */
export class SecretsManagerStore implements SecretStore {
  constructor(private readonly client: SecretsManagerClient) {}

  async describe(secretId: string): Promise<SecretDescription> {
    try {
      const reply = await this.client.send(new DescribeSecretCommand({ SecretId: secretId }));
      return { secretId, rotationEnabled: reply.RotationEnabled === true, versions: toVersions(reply.VersionIdsToStages) };
    } catch (error) {
      throw notFound(error, secretId) ?? error;
    }
  }

  /**
   * One managed secret from one DescribeSecret: its tags (the runner's record), rotation settings and
   * versions, read now (a scan message may have waited in its queue). SecretNotFoundError when there is no
   * such secret. Never a value.
   */
  async describeManaged(secretId: string): Promise<ManagedSecretSummary> {
    try {
      const reply = await this.client.send(new DescribeSecretCommand({ SecretId: secretId }));
      return summaryOf(reply.ARN ?? secretId, reply.Name ?? secretId, reply, reply.VersionIdsToStages);
    } catch (error) {
      throw notFound(error, secretId) ?? error;
    }
  }

  async getValue(secretId: string, ref: VersionRef): Promise<string | undefined> {
    const selector = 'versionId' in ref ? { VersionId: ref.versionId } : { VersionStage: ref.stage };
    let secretString: string | undefined;
    try {
      secretString = (await this.client.send(new GetSecretValueCommand({ SecretId: secretId, ...selector }))).SecretString;
    } catch (error) {
      if (errorName(error) === 'ResourceNotFoundException') return undefined;
      throw error;
    }
    if (secretString === undefined) {
      const label = 'versionId' in ref ? `version ${ref.versionId}` : ref.stage;
      throw new InvalidInputError(`${secretId} ${label}`, 'holds SecretBinary; a runner secret holds a SecretString (JSON)');
    }
    return secretString;
  }

  async putPendingValue(secretId: string, versionId: string, value: string): Promise<void> {
    try {
      await this.client.send(
        new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: versionId, SecretString: value, VersionStages: ['AWSPENDING'] }),
      );
    } catch (error) {
      if (errorName(error) === 'ResourceExistsException') {
        throw new RotationInProgressError(`Version ${versionId} of ${secretId} already holds a different value`, {
          secretId,
          step: 'createSecret',
          fix: `A version cannot be changed once written: let the rotation that owns ${versionId} finish, or cancel it and rotate again.`,
          cause: error,
        });
      }
      throw notFound(error, secretId) ?? error;
    }
  }

  async promote(secretId: string, toVersionId: string, fromVersionId: string | null): Promise<void> {
    try {
      await this.client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: secretId,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: toVersionId,
          ...(fromVersionId === null ? {} : { RemoveFromVersionId: fromVersionId }),
        }),
      );
      await this.client.send(new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: 'AWSPENDING', RemoveFromVersionId: toVersionId }));
    } catch (error) {
      throw notFound(error, secretId) ?? error;
    }
  }

  /** Stores a runner's existing token as the current version (how a runner is adopted); AWSPREVIOUS follows. */
  async adoptCurrent(secretId: string, versionId: string, value: string): Promise<void> {
    try {
      await this.client.send(
        new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: versionId, SecretString: value, VersionStages: ['AWSCURRENT'] }),
      );
    } catch (error) {
      if (errorName(error) === 'ResourceExistsException') {
        throw new InvalidInputError(`${secretId} version ${versionId}`, 'already holds a different value; adopt under a new version id', {
          cause: error,
        });
      }
      throw notFound(error, secretId) ?? error;
    }
  }

  /**
   * Asks Secrets Manager to rotate now (it calls the rotation hook with the returned version id, which
   * it has labelled AWSPENDING). Refused while an earlier rotation has not finished.
   */
  async startRotation(secretId: string): Promise<string> {
    let versionId: string | undefined;
    try {
      versionId = (await this.client.send(new RotateSecretCommand({ SecretId: secretId, RotateImmediately: true }))).VersionId;
    } catch (error) {
      if (errorName(error) === 'InvalidRequestException' && /previous rotation/i.test(errorMessage(error))) {
        throw new RotationInProgressError(`A previous rotation of ${secretId} isn't complete; Secrets Manager refuses to start another`, {
          secretId,
          step: 'createSecret',
          fix: `Wait: Secrets Manager retries the failed step of the open rotation. If it is stuck, cancel it with \`aws secretsmanager cancel-rotate-secret --secret-id ${secretId}\` (this also turns scheduled rotation off) - but when its AWSPENDING version already holds a token, GitLab has killed the current one: finish that rotation instead of dropping the version.`,
          cause: error,
        });
      }
      throw notFound(error, secretId) ?? error;
    }
    if (versionId === undefined) throw new Error(`RotateSecret of ${secretId} answered without a VersionId`);
    return versionId;
  }

  /**
   * Every secret carrying the tag `tagKey`, across all pages (ListSecrets is eventually consistent). The
   * `tag-key` filter is a prefix match (Secrets Manager API reference, Filter: "tag-key: Prefix match,
   * case-sensitive"), so `gitlab-runner-rotator:runner` also lists secrets tagged only
   * `gitlab-runner-rotator:runner-id`: only entries with the exact key are kept. `namePrefix` (the fleet's
   * `secretPrefix`, "name: Prefix match, case-sensitive", same reference) keeps out the secrets of another
   * deployment in the account, which this one's roles may not read.
   */
  async listManagedSecrets(tagKey: string, namePrefix: string): Promise<ManagedSecretSummary[]> {
    const summaries: ManagedSecretSummary[] = [];
    const pages = paginateListSecrets(
      { client: this.client, pageSize: 100, stopOnSameToken: true },
      { Filters: [{ Key: 'tag-key', Values: [tagKey] }, { Key: 'name', Values: [namePrefix] }] },
    );
    for await (const page of pages) {
      for (const entry of page.SecretList ?? []) {
        if (entry.ARN === undefined || entry.Name === undefined || !entry.Name.startsWith(namePrefix)) continue;
        if (!entry.Tags?.some((tag) => tag.Key === tagKey)) continue;
        summaries.push(summaryOf(entry.ARN, entry.Name, entry, entry.SecretVersionsToStages));
      }
    }
    return summaries;
  }
}

/** A secret's metadata as DescribeSecret and ListSecrets both give it (they name the versions' map differently). */
function summaryOf(
  arn: string,
  name: string,
  entry: { Tags?: Array<{ Key?: string; Value?: string }>; RotationRules?: { AutomaticallyAfterDays?: number }; RotationEnabled?: boolean; LastRotatedDate?: Date },
  versionsToStages: Record<string, string[]> | undefined,
): ManagedSecretSummary {
  const versions = toVersions(versionsToStages);
  return {
    arn,
    name,
    tags: toTags(entry.Tags),
    rotateEveryDays: entry.RotationRules?.AutomaticallyAfterDays,
    rotationEnabled: entry.RotationEnabled === true,
    lastRotatedAt: entry.LastRotatedDate?.toISOString() ?? null,
    versions,
    rotationInProgress: openRotationVersionId({ versions }) !== null,
  };
}

/** Staging labels per version, keeping the three the service works with (custom labels are not ours). */
function toVersions(versionsToStages: Record<string, string[]> | undefined): SecretVersionInfo[] {
  return Object.entries(versionsToStages ?? {}).map(([versionId, stages]) => ({
    versionId,
    stages: stages.filter((s): s is VersionStage => (KNOWN_STAGES as readonly string[]).includes(s)),
  }));
}

/** Tags as a record (a key listed twice, which Secrets Manager does not allow, keeps its first value). */
function toTags(tags: Array<{ Key?: string; Value?: string }> | undefined): Record<string, string> {
  const record: Record<string, string> = {};
  for (const { Key, Value } of tags ?? []) if (Key !== undefined && !(Key in record)) record[Key] = Value ?? '';
  return record;
}

function notFound(error: unknown, secretId: string): SecretNotFoundError | undefined {
  if (errorName(error) !== 'ResourceNotFoundException') return undefined;
  return new SecretNotFoundError(`Secrets Manager has no secret ${secretId} (or no such version of it)`, { secretId, cause: error });
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : '';
}

/** The admin access token of a GitLab url: a secret of its own per url, holding the token as plain text. */
export async function readAdminTokenSecret(store: Pick<SecretStore, 'getValue'>, secretNames: Record<string, string>, gitlabUrl: string): Promise<string | undefined> {
  const secretName = secretNames[gitlabUrl];
  if (secretName === undefined) return undefined;
  const value = (await store.getValue(secretName, { stage: 'AWSCURRENT' }))?.trim();
  if (!value || /\s/.test(value)) {
    throw new InvalidInputError(`admin token secret ${secretName}`, `holds no access token for ${gitlabUrl} (store the token as plain text)`);
  }
  return value;
}
