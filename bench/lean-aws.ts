/**
 * Lean stand-ins for Secrets Manager, DynamoDB, SSM and SNS at the SDK boundary (`client.send`), for the
 * fleet-scan benchmark. They model the same API behaviour as test/support's fakes for the commands a scan
 * sends, with O(1) lookups (secret by name or ARN, version by stage, items by partition key), and they do
 * not record calls (aws-sdk-client-mock's sinon stubs keep every call's arguments: 50,000 calls of a
 * 10,000-runner scan would be measured as the scanner's memory). Each counts the calls per command, which
 * is what the AWS bill counts.
 */
import { randomUUID } from 'node:crypto';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  InvalidRequestException,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SSMClient } from '@aws-sdk/client-ssm';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { deleteItem, ExpressionCache, putItem, transactWriteItems, updateItem, type TransactItem, type WriteInput, type WriteOutcome } from '../test/support/dynamodb-expressions.ts';

const $metadata = {};
const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
type Command = { input: Record<string, unknown>; constructor: { name: string } };

/** Replaces `client.send` with `handle`, counting calls per command name. */
function stub(client: { send: unknown }, counts: Map<string, number>, handle: (command: Command) => unknown): void {
  (client as { send: (command: Command) => Promise<unknown> }).send = async (command) => {
    const name = command.constructor.name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return handle(command);
  };
}

interface LeanSecret {
  arn: string;
  name: string;
  tags: Record<string, string>;
  versions: Map<string, { stages: string[]; value?: string }>;
  byStage: Map<string, string>;
}

export class LeanSecretsManager {
  readonly client = new SecretsManagerClient({ region: 'eu-west-1', credentials });
  readonly calls = new Map<string, number>();
  private readonly byId = new Map<string, LeanSecret>();
  private readonly all: LeanSecret[] = [];

  constructor() {
    stub(this.client, this.calls, (command) => {
      if (command instanceof ListSecretsCommand) return this.list(command.input);
      if (command instanceof DescribeSecretCommand) return this.describe(command.input.SecretId);
      if (command instanceof GetSecretValueCommand) return this.get(command.input);
      if (command instanceof RotateSecretCommand) return this.rotate(command.input.SecretId);
      if (command instanceof PutSecretValueCommand) return this.put(command.input);
      throw new Error(`lean Secrets Manager: ${command.constructor.name} is not modelled`);
    });
  }

  /** A secret whose AWSCURRENT holds `value` (or no value at all), as adopting a runner leaves it. */
  add(name: string, value: string | undefined, tags: Record<string, string> = {}): string {
    const arn = `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
    const secret: LeanSecret = { arn, name, tags, versions: new Map(), byStage: new Map() };
    if (value !== undefined) {
      const versionId = randomUUID();
      secret.versions.set(versionId, { stages: ['AWSCURRENT'], value });
      secret.byStage.set('AWSCURRENT', versionId);
    }
    this.byId.set(name, secret);
    this.byId.set(arn, secret);
    this.all.push(secret);
    return arn;
  }

  private secret(id: unknown): LeanSecret {
    const secret = this.byId.get(String(id));
    if (!secret) throw new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata });
    return secret;
  }

  private stages(secret: LeanSecret): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [id, v] of secret.versions) if (v.stages.length > 0) out[id] = [...v.stages];
    return out;
  }

  private list(input: Record<string, unknown>) {
    const filters = (input.Filters as Array<{ Key: string; Values: string[] }> | undefined) ?? [];
    const tagKeys = filters.find((f) => f.Key === 'tag-key')?.Values ?? [];
    const start = Number(input.NextToken ?? 0);
    const size = Number(input.MaxResults ?? 100);
    const page: LeanSecret[] = [];
    let index = start;
    for (; index < this.all.length && page.length < size; index += 1) {
      const s = this.all[index]!;
      // `tag-key` is a prefix match (Secrets Manager API reference, Filter).
      if (tagKeys.every((key) => Object.keys(s.tags).some((tag) => tag.startsWith(key)))) page.push(s);
    }
    return {
      $metadata,
      SecretList: page.map((s) => ({ ARN: s.arn, Name: s.name, RotationEnabled: true, Tags: Object.entries(s.tags).map(([Key, Value]) => ({ Key, Value })), SecretVersionsToStages: this.stages(s) })),
      NextToken: index < this.all.length ? String(index) : undefined,
    };
  }

  private describe(id: unknown) {
    const s = this.secret(id);
    // As DescribeSecret answers: the tags come with it (the scan worker reads each runner's record this way).
    return { $metadata, ARN: s.arn, Name: s.name, RotationEnabled: true, Tags: Object.entries(s.tags).map(([Key, Value]) => ({ Key, Value })), VersionIdsToStages: this.stages(s) };
  }

  private get(input: Record<string, unknown>) {
    const s = this.secret(input.SecretId);
    const versionId = input.VersionId !== undefined ? String(input.VersionId) : s.byStage.get(String(input.VersionStage ?? 'AWSCURRENT'));
    const version = versionId === undefined ? undefined : s.versions.get(versionId);
    if (versionId === undefined || version?.value === undefined) {
      throw new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret value", $metadata });
    }
    return { $metadata, ARN: s.arn, Name: s.name, VersionId: versionId, SecretString: version.value, VersionStages: [...version.stages] };
  }

  private rotate(id: unknown) {
    const s = this.secret(id);
    const pending = s.byStage.get('AWSPENDING');
    if (pending !== undefined && pending !== s.byStage.get('AWSCURRENT')) {
      throw new InvalidRequestException({ message: "A previous rotation isn't complete. That rotation will be reattempted.", $metadata });
    }
    const versionId = randomUUID();
    s.versions.set(versionId, { stages: ['AWSPENDING'] });
    if (pending !== undefined) {
      const old = s.versions.get(pending);
      if (old) old.stages = old.stages.filter((x) => x !== 'AWSPENDING');
    }
    s.byStage.set('AWSPENDING', versionId);
    return { $metadata, ARN: s.arn, Name: s.name, VersionId: versionId };
  }

  private put(input: Record<string, unknown>) {
    const s = this.secret(input.SecretId);
    const versionId = String(input.ClientRequestToken ?? randomUUID());
    const stages = (input.VersionStages as string[] | undefined) ?? ['AWSCURRENT'];
    for (const stage of stages) {
      const holder = s.byStage.get(stage);
      if (holder !== undefined && holder !== versionId) {
        const old = s.versions.get(holder)!;
        old.stages = old.stages.filter((x) => x !== stage);
      }
      s.byStage.set(stage, versionId);
    }
    s.versions.set(versionId, { stages, value: String(input.SecretString) });
    return { $metadata, ARN: s.arn, Name: s.name, VersionId: versionId };
  }
}

type Item = Record<string, unknown>;

/**
 * One table (pk, sk): items by partition key, then sort key. Put, Update, Delete and TransactWriteItems
 * evaluate their condition and update expressions as test/support's FakeDynamoTable does (the same
 * test/support/dynamodb-expressions.ts), each distinct expression string parsed once.
 */
export class LeanDynamoTable {
  readonly client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', credentials }));
  readonly calls = new Map<string, number>();
  private readonly partitions = new Map<string, Map<string, Item>>();
  private readonly expressions = new ExpressionCache();

  constructor() {
    stub(this.client, this.calls, (command) => {
      const input = command.input as WriteInput & Item;
      if (command instanceof GetCommand) return { $metadata, Item: this.item(input.Key as Item) };
      if (command instanceof PutCommand) return this.write(input.Item, putItem(input, this.stored(input.Item), this.expressions));
      if (command instanceof UpdateCommand) return this.write(input.Key, updateItem(input, this.stored(input.Key), this.expressions));
      if (command instanceof DeleteCommand) return this.write(input.Key, deleteItem(input, this.stored(input.Key), this.expressions));
      if (command instanceof QueryCommand) return { $metadata, Items: this.query(input) };
      if (command instanceof TransactWriteCommand) {
        const writes = transactWriteItems(input.TransactItems as TransactItem[] | undefined, (key) => this.stored(key), this.expressions);
        for (const { key, item } of writes) this.store(key, item);
        return { $metadata };
      }
      throw new Error(`lean DynamoDB: ${command.constructor.name} is not modelled`);
    });
  }

  private item(key: Item): Item | undefined {
    const found = this.stored(key);
    return found && structuredClone(found);
  }

  /** The stored item itself (not a copy: the expression functions never change it). */
  private stored(key: Item | undefined): Item | undefined {
    return this.partitions.get(String(key?.pk))?.get(String(key?.sk));
  }

  private write(key: Item | undefined, outcome: WriteOutcome) {
    this.store(key, outcome.item);
    return outcome.attributes === undefined ? { $metadata } : { $metadata, Attributes: outcome.attributes };
  }

  /** Keeps `item` (already a copy of the request's) at `key`, or deletes the item when it is undefined. */
  private store(key: Item | undefined, item: Item | undefined): void {
    const pk = String(key?.pk);
    let partition = this.partitions.get(pk);
    if (item === undefined) {
      partition?.delete(String(key?.sk));
      return;
    }
    if (!partition) this.partitions.set(pk, (partition = new Map()));
    partition.set(String(key?.sk), item);
  }

  /** `#pk = :pk` with an optional `begins_with(#sk, :prefix)`, the forms the ledgers send. */
  private query(input: Record<string, unknown>): Item[] {
    const values = (input.ExpressionAttributeValues as Item) ?? {};
    const prefix = /begins_with\(\s*#?\w+\s*,\s*(:\w+)\s*\)/.exec(String(input.KeyConditionExpression))?.[1];
    const pkPlaceholder = /(:\w+)/.exec(String(input.KeyConditionExpression))?.[1] ?? ':pk';
    const partition = this.partitions.get(String(values[pkPlaceholder]));
    if (!partition) return [];
    return [...partition.entries()]
      .filter(([sk]) => prefix === undefined || sk.startsWith(String(values[prefix])))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, item]) => structuredClone(item));
  }
}

/** SSM and SNS: a scan of healthy runners sends neither; SNS counts alerts, SSM refuses (it would mean a re-push). */
export function leanSsmAndSns(): { ssm: SSMClient; sns: SNSClient; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const ssm = new SSMClient({ region: 'eu-west-1', credentials });
  const sns = new SNSClient({ region: 'eu-west-1', credentials });
  stub(ssm, calls, (command) => {
    throw new Error(`lean SSM: ${command.constructor.name} is not modelled (no host should need a re-push in the benchmark)`);
  });
  stub(sns, calls, (command) => {
    if (command instanceof PublishCommand) return { $metadata, MessageId: randomUUID() };
    throw new Error(`lean SNS: ${command.constructor.name} is not modelled`);
  });
  return { ssm, sns, calls };
}
