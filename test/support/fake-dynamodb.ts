import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { DeleteCommandInput, GetCommandInput, PutCommandInput, QueryCommandInput, TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';

type Item = Record<string, unknown>;
const $metadata = {};

/**
 * One DynamoDB table (pk, sk) behind the Document client, for the commands the ledger sends. Condition
 * expressions are evaluated for the one form it uses: `#a = :a AND (attribute_not_exists(#b) OR #b = :b)`,
 * and plain `#a = :a`. Query takes the key conditions `#pk = :pk` and `#pk = :pk AND begins_with(#sk, :p)`
 * (names or plain attribute names), and answers every match in sort-key order in one page.
 */
export class FakeDynamoTable {
  readonly client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }));
  readonly mock: AwsClientStub<DynamoDBDocumentClient> = mockClient(this.client);
  readonly items = new Map<string, Item>();

  constructor() {
    this.mock.on(GetCommand).callsFake((input: GetCommandInput) => ({ $metadata, Item: structuredClone(this.items.get(keyOf(input.Key))) }));
    this.mock.on(PutCommand).callsFake((input: PutCommandInput) => this.put(input));
    this.mock.on(DeleteCommand).callsFake((input: DeleteCommandInput) => {
      this.items.delete(keyOf(input.Key));
      return { $metadata };
    });
    this.mock.on(QueryCommand).callsFake((input: QueryCommandInput) => ({ $metadata, Items: this.query(input) }));
    this.mock.on(TransactWriteCommand).callsFake((input: TransactWriteCommandInput) => {
      for (const op of input.TransactItems ?? []) {
        if (op.Put) this.put(op.Put as PutCommandInput);
        if (op.Delete) this.items.delete(keyOf(op.Delete.Key));
      }
      return { $metadata };
    });
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

  private put(input: PutCommandInput) {
    const item = input.Item as Item;
    if (input.ConditionExpression && !conditionHolds(input, this.items.get(keyOf(item)))) {
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata });
    }
    this.items.set(keyOf(item), structuredClone(item));
    return { $metadata };
  }
}

function keyOf(key: Record<string, unknown> | undefined): string {
  return `${String(key?.pk)}|${String(key?.sk)}`;
}

function conditionHolds(input: PutCommandInput, existing: Item | undefined): boolean {
  const names = input.ExpressionAttributeNames ?? {};
  const values = input.ExpressionAttributeValues ?? {};
  const value = (placeholder: string) => existing?.[names[placeholder] ?? placeholder];
  return (input.ConditionExpression ?? '').split(/\s+AND\s+/).every((clause) => {
    const alternatives = clause.replace(/^\(|\)$/g, '').split(/\s+OR\s+/);
    return alternatives.some((alt) => {
      const notExists = /^attribute_not_exists\((#\w+)\)$/.exec(alt.trim());
      if (notExists?.[1]) return value(notExists[1]) === undefined;
      const equals = /^(#\w+)\s*=\s*(:\w+)$/.exec(alt.trim());
      if (equals?.[1] && equals[2]) return existing !== undefined && value(equals[1]) === values[equals[2]];
      throw new Error(`fake DynamoDB cannot evaluate condition clause "${alt}"`);
    });
  });
}
