import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type {
  DeleteCommandInput,
  GetCommandInput,
  PutCommandInput,
  QueryCommandInput,
  TransactWriteCommandInput,
  UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { deleteItem, putItem, transactWriteItems, updateItem, type TransactItem, type WriteOutcome } from './dynamodb-expressions.ts';

type Item = Record<string, unknown>;
const $metadata = {};

/**
 * One DynamoDB table (pk, sk) behind the Document client. Put, Update and Delete evaluate their
 * condition and update expressions as DynamoDB does (./dynamodb-expressions.ts: a failed condition throws
 * ConditionalCheckFailedException, a malformed or unsupported request a ValidationException) and answer
 * `Attributes` per ReturnValues; TransactWriteItems takes Put, Update, Delete and ConditionCheck, all or
 * nothing (TransactionCanceledException). Query takes the key conditions `#pk = :pk` and
 * `#pk = :pk AND begins_with(#sk, :p)` (names or plain attribute names), and answers every match in
 * sort-key order in one page. Every command answers a promise, as the SDK's `send` does, so a failure
 * is a rejection (`send(…).catch(…)` works) rather than a synchronous throw.
 */
export class FakeDynamoTable {
  readonly client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }));
  readonly mock: AwsClientStub<DynamoDBDocumentClient> = mockClient(this.client);
  readonly items = new Map<string, Item>();

  constructor() {
    this.mock.on(GetCommand).callsFake(async (input: GetCommandInput) => ({ $metadata, Item: structuredClone(this.items.get(keyOf(input.Key))) }));
    this.mock.on(PutCommand).callsFake(async (input: PutCommandInput) => this.write(input.Item, putItem(input, this.items.get(keyOf(input.Item)))));
    this.mock.on(UpdateCommand).callsFake(async (input: UpdateCommandInput) => this.write(input.Key, updateItem(input, this.items.get(keyOf(input.Key)))));
    this.mock.on(DeleteCommand).callsFake(async (input: DeleteCommandInput) => this.write(input.Key, deleteItem(input, this.items.get(keyOf(input.Key)))));
    this.mock.on(QueryCommand).callsFake(async (input: QueryCommandInput) => ({ $metadata, Items: this.query(input) }));
    this.mock.on(TransactWriteCommand).callsFake(async (input: TransactWriteCommandInput) => {
      const writes = transactWriteItems(input.TransactItems as TransactItem[] | undefined, (key) => this.items.get(keyOf(key)));
      for (const { key, item } of writes) this.store(key, item);
      return { $metadata };
    });
  }

  private write(key: Item | undefined, outcome: WriteOutcome) {
    this.store(key, outcome.item);
    return outcome.attributes === undefined ? { $metadata } : { $metadata, Attributes: outcome.attributes };
  }

  private store(key: Item | undefined, item: Item | undefined): void {
    if (item === undefined) this.items.delete(keyOf(key));
    else this.items.set(keyOf(key), item);
  }

  private query(input: QueryCommandInput): Item[] {
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    const name = (n: string) => names[n] ?? n;
    const match = /^\s*(#?\w+)\s*=\s*(:\w+)(?:\s+AND\s+begins_with\(\s*(#?\w+)\s*,\s*(:\w+)\s*\))?\s*$/.exec(input.KeyConditionExpression ?? '');
    if (!match?.[1] || !match[2]) throw new Error(`fake DynamoDB cannot evaluate key condition "${input.KeyConditionExpression}"`);
    const [, pkName, pkValue, skName, prefix] = match;
    if (name(pkName) !== 'pk' || (skName !== undefined && name(skName) !== 'sk')) throw new Error('fake DynamoDB: the key attributes are pk and sk');
    return [...this.items.values()]
      .filter((item) => item.pk === values[pkValue] && (prefix === undefined || String(item.sk).startsWith(String(values[prefix]))))
      .sort((a, b) => (String(a.sk) < String(b.sk) ? -1 : String(a.sk) > String(b.sk) ? 1 : 0))
      .map((item) => structuredClone(item));
  }
}

function keyOf(key: Record<string, unknown> | undefined): string {
  return `${String(key?.pk)}|${String(key?.sk)}`;
}
