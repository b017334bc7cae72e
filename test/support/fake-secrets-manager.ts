import { randomUUID } from 'node:crypto';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  InternalServiceError,
  InvalidParameterException,
  InvalidRequestException,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type DescribeSecretCommandInput,
  type GetSecretValueCommandInput,
  type ListSecretsCommandInput,
  type PutSecretValueCommandInput,
  type RotateSecretCommandInput,
  type UpdateSecretVersionStageCommandInput,
} from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { SITE, secretArnOf } from './iam/cfn-resolver.ts';

/** The calls failNext can fail. */
export type FailingApi = 'PutSecretValue' | 'UpdateSecretVersionStage' | 'RotateSecret';

interface FakeVersion {
  stages: string[];
  /** Absent on the version RotateSecret opens for the rotation hook to fill. */
  value?: string;
}

interface FakeSecret {
  arn: string;
  name: string;
  rotationEnabled: boolean;
  tags: Record<string, string>;
  versions: Map<string, FakeVersion>;
}

/** What Secrets Manager sends the rotation function, one step at a time, after RotateSecret. */
export type RotationHook = (event: { Step: string; SecretId: string; ClientRequestToken: string }) => Promise<unknown>;

const $metadata = {};

/**
 * A small model of the Secrets Manager service, behind aws-sdk-client-mock: it stands for AWS, not for our
 * code. It keeps versions and staging labels as the API reference describes them:
 * - PutSecretValue: ClientRequestToken becomes the VersionId (32–64 characters); the same token with the
 *   same value is ignored, with a different value ResourceExistsException; VersionStages defaults to
 *   AWSCURRENT; moving AWSCURRENT moves AWSPREVIOUS to the version it left; it fills the empty version
 *   RotateSecret opened.
 * - RotateSecret: refused ("A previous rotation isn't complete…", InvalidRequestException) while AWSPENDING
 *   sits on a version that is not AWSCURRENT; otherwise opens a new version labelled AWSPENDING with no
 *   value (the rotation hook is not modelled).
 * - UpdateSecretVersionStage: a label attached elsewhere needs RemoveFromVersionId naming its holder
 *   (InvalidParameterException otherwise); moving AWSCURRENT moves AWSPREVIOUS and nothing else; without
 *   MoveToVersionId the label is removed from RemoveFromVersionId, which must hold it.
 * - GetSecretValue: a version or label without a value is ResourceNotFoundException.
 * - DescribeSecret: VersionIdsToStages lists versions that still carry a label; Tags as [{Key, Value}]
 *   (absent when the secret has none), like ListSecrets.
 */
export class FakeSecretsManager {
  readonly client = new SecretsManagerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  readonly mock: AwsClientStub<SecretsManagerClient> = mockClient(this.client);
  private readonly secrets = new Map<string, FakeSecret>();

  constructor() {
    this.mock.on(DescribeSecretCommand).callsFake((input: DescribeSecretCommandInput) => this.describeSecret(input));
    this.mock.on(GetSecretValueCommand).callsFake((input: GetSecretValueCommandInput) => this.getSecretValue(input));
    this.mock.on(PutSecretValueCommand).callsFake(async (input: PutSecretValueCommandInput) => {
      this.injectedFailure('PutSecretValue');
      return this.putSecretValue(input);
    });
    this.mock.on(RotateSecretCommand).callsFake((input: RotateSecretCommandInput) => this.rotateSecret(input));
    this.mock.on(UpdateSecretVersionStageCommand).callsFake(async (input: UpdateSecretVersionStageCommandInput) => {
      this.injectedFailure('UpdateSecretVersionStage');
      return this.updateSecretVersionStage(input);
    });
    this.mock.on(ListSecretsCommand).callsFake((input: ListSecretsCommandInput) => this.listSecrets(input));
  }

  /**
   * The rotation function, as Secrets Manager calls it after RotateSecret: createSecret, setSecret,
   * testSecret, finishSecret in turn, stopping at the first that throws (Secrets Manager would retry it).
   * The run is kept in `rotations` so tests can await it; RotateSecret itself returns at once.
   */
  rotationHook: RotationHook | undefined;
  readonly rotations: Array<Promise<void>> = [];

  private readonly failures: Array<{ api: FailingApi; remaining: number }> = [];

  /**
   * The next `count` calls of `api` fail, changing nothing, with InternalServiceError ("An error occurred on
   * the server side"), as they would after the SDK's own retries gave up. `disarm` ends it early.
   */
  failNext(api: FailingApi, count: number): { disarm(): void } {
    const armed = { api, remaining: count };
    this.failures.push(armed);
    return { disarm: () => void (armed.remaining = 0) };
  }

  private injectedFailure(api: FailingApi): void {
    const armed = this.failures.find((f) => f.api === api && f.remaining > 0);
    if (!armed) return;
    armed.remaining -= 1;
    throw new InternalServiceError({ message: 'An error occurred on the server side.', $metadata });
  }

  /** The value of one version, as a host with the instance role would read it. */
  valueOf(secretId: string, versionId: string): string | undefined {
    return this.secret(secretId).versions.get(versionId)?.value;
  }

  /** CreateSecret with no value, as the stack does (rotation configured). */
  createSecret(name: string, options: { rotationEnabled?: boolean; tags?: Record<string, string> } = {}): string {
    const arn = secretArnOf(SITE, name);
    this.secrets.set(name, { arn, name, rotationEnabled: options.rotationEnabled ?? true, tags: { ...options.tags }, versions: new Map() });
    return arn;
  }

  /** A secret's tags now (by ARN or name), as IAM sees them in `aws:ResourceTag/<key>`; undefined for no such secret. */
  tagsOf(secretId: string): Record<string, string> | undefined {
    const secret = this.secrets.get(secretId) ?? [...this.secrets.values()].find((s) => s.arn === secretId);
    return secret && { ...secret.tags };
  }

  /** TagResource / UntagResource, as an operator editing a secret's tags by hand: `undefined` removes the key. */
  setTags(secretId: string, tags: Record<string, string | undefined>): void {
    const secret = this.secret(secretId);
    for (const [key, value] of Object.entries(tags)) {
      if (value === undefined) delete secret.tags[key];
      else secret.tags[key] = value;
    }
  }

  /** The labels per version, as DescribeSecret shows them, sorted for comparison. */
  stages(name: string): Record<string, string[]> {
    return Object.fromEntries([...this.secret(name).versions].filter(([, v]) => v.stages.length > 0).map(([id, v]) => [id, [...v.stages].sort()]));
  }

  restore(): void {
    this.mock.restore();
  }

  /** ListSecrets with tag-key and name filters, in pages of MaxResults (default 100). */
  private listSecrets(input: ListSecretsCommandInput) {
    const tagKeys = input.Filters?.find((f) => f.Key === 'tag-key')?.Values ?? [];
    // `tag-key` is a prefix match, case-sensitive (Secrets Manager API reference, Filter).
    const names = input.Filters?.find((f) => f.Key === 'name')?.Values ?? [];
    // `name` is a prefix match too, case-sensitive; several filters must all match.
    const all = [...this.secrets.values()].filter(
      (s) => tagKeys.every((key) => Object.keys(s.tags).some((tag) => tag.startsWith(key))) && (names.length === 0 || names.some((prefix) => s.name.startsWith(prefix))),
    );
    const start = Number(input.NextToken ?? 0);
    const size = input.MaxResults ?? 100;
    const page = all.slice(start, start + size);
    return {
      $metadata,
      SecretList: page.map((s) => ({
        ARN: s.arn,
        Name: s.name,
        RotationEnabled: s.rotationEnabled,
        Tags: tagList(s.tags),
        SecretVersionsToStages: this.stages(s.name),
      })),
      NextToken: start + size < all.length ? String(start + size) : undefined,
    };
  }

  private describeSecret(input: DescribeSecretCommandInput) {
    const secret = this.secret(input.SecretId);
    const tags = tagList(secret.tags);
    return { $metadata, ARN: secret.arn, Name: secret.name, RotationEnabled: secret.rotationEnabled, VersionIdsToStages: this.stages(secret.name), ...(tags.length > 0 ? { Tags: tags } : {}) };
  }

  private getSecretValue(input: GetSecretValueCommandInput) {
    const secret = this.secret(input.SecretId);
    let entry: [string, FakeVersion] | undefined;
    if (input.VersionId !== undefined) {
      const version = secret.versions.get(input.VersionId);
      entry = version && [input.VersionId, version];
    } else {
      entry = this.holder(secret, input.VersionStage ?? 'AWSCURRENT');
    }
    const [versionId, version] = entry ?? [];
    if (versionId === undefined || version?.value === undefined) {
      const what = input.VersionId !== undefined ? `VersionId: ${input.VersionId}` : `staging label: ${input.VersionStage ?? 'AWSCURRENT'}`;
      throw new ResourceNotFoundException({ message: `Secrets Manager can't find the specified secret value for ${what}`, $metadata });
    }
    return { $metadata, ARN: secret.arn, Name: secret.name, VersionId: versionId, SecretString: version.value, VersionStages: [...version.stages] };
  }

  private putSecretValue(input: PutSecretValueCommandInput) {
    const secret = this.secret(input.SecretId);
    const versionId = input.ClientRequestToken ?? randomUUID();
    if (versionId.length < 32 || versionId.length > 64) {
      throw new InvalidParameterException({ message: 'ClientRequestToken must be 32 to 64 characters long.', $metadata });
    }
    const existing = secret.versions.get(versionId);
    if (existing?.value !== undefined) {
      if (existing.value !== input.SecretString) {
        throw new ResourceExistsException({ message: "You can't modify an existing version, you can only create a new version.", $metadata });
      }
      return { $metadata, ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: [...existing.stages] };
    }
    const version: FakeVersion = existing ?? { stages: [] };
    version.value = input.SecretString;
    secret.versions.set(versionId, version);
    const stages = input.VersionStages ?? ['AWSCURRENT'];
    for (const stage of stages) this.attach(secret, stage, versionId);
    return { $metadata, ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: [...version.stages] };
  }

  private rotateSecret(input: RotateSecretCommandInput) {
    this.injectedFailure('RotateSecret');
    const secret = this.secret(input.SecretId);
    if (!secret.rotationEnabled) {
      throw new InvalidRequestException({ message: 'No Lambda rotation function ARN is associated with this secret.', $metadata });
    }
    const pending = this.holder(secret, 'AWSPENDING');
    if (pending && !pending[1].stages.includes('AWSCURRENT')) {
      throw new InvalidRequestException({ message: "A previous rotation isn't complete. That rotation will be reattempted.", $metadata });
    }
    const versionId = input.ClientRequestToken ?? randomUUID();
    secret.versions.set(versionId, { stages: [] });
    this.attach(secret, 'AWSPENDING', versionId);
    const hook = this.rotationHook;
    if (hook) {
      this.rotations.push(
        (async () => {
          for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
            await hook({ Step, SecretId: secret.arn, ClientRequestToken: versionId });
          }
        })(),
      );
    }
    return { $metadata, ARN: secret.arn, Name: secret.name, VersionId: versionId };
  }

  private updateSecretVersionStage(input: UpdateSecretVersionStageCommandInput) {
    const secret = this.secret(input.SecretId);
    const stage = input.VersionStage ?? '';
    const holder = this.holder(secret, stage)?.[0];
    if (input.MoveToVersionId === undefined) {
      if (input.RemoveFromVersionId !== holder) throw new InvalidParameterException({ message: `${stage} is not attached to ${input.RemoveFromVersionId}.`, $metadata });
      const version = holder === undefined ? undefined : secret.versions.get(holder);
      if (version) version.stages = version.stages.filter((s) => s !== stage);
      return { $metadata, ARN: secret.arn, Name: secret.name };
    }
    if (!secret.versions.has(input.MoveToVersionId)) {
      throw new ResourceNotFoundException({ message: `Secrets Manager can't find the specified secret version: ${input.MoveToVersionId}`, $metadata });
    }
    if (holder !== undefined && holder !== input.MoveToVersionId && input.RemoveFromVersionId !== holder) {
      throw new InvalidParameterException({
        message: `When you move staging label ${stage}, if you specify RemoveFromVersionId, it must be set to the version that currently has the staging label ${stage}.`,
        $metadata,
      });
    }
    this.attach(secret, stage, input.MoveToVersionId);
    return { $metadata, ARN: secret.arn, Name: secret.name };
  }

  /** A label sits on one version: take it off the other; AWSCURRENT leaving a version puts AWSPREVIOUS there. */
  private attach(secret: FakeSecret, stage: string, versionId: string): void {
    const previousHolder = this.holder(secret, stage)?.[0];
    if (previousHolder === versionId) return;
    if (previousHolder !== undefined) {
      const left = secret.versions.get(previousHolder);
      if (left) left.stages = left.stages.filter((s) => s !== stage);
      if (stage === 'AWSCURRENT') this.attach(secret, 'AWSPREVIOUS', previousHolder);
    }
    secret.versions.get(versionId)?.stages.push(stage);
  }

  private holder(secret: FakeSecret, stage: string): [string, FakeVersion] | undefined {
    return [...secret.versions].find(([, v]) => v.stages.includes(stage));
  }

  private secret(secretId: string | undefined): FakeSecret {
    const secret = [...this.secrets.values()].find((s) => s.name === secretId || s.arn === secretId);
    if (!secret) throw new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata });
    return secret;
  }
}

/** Tags as the API returns them. */
function tagList(tags: Record<string, string>): Array<{ Key: string; Value: string }> {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}
