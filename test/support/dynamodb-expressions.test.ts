import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { LeanDynamoTable } from '../../bench/lean-aws.ts';
import { applyUpdate, conditionHolds, ExpressionCache, type Item } from './dynamodb-expressions.ts';
import { FakeDynamoTable } from './fake-dynamodb.ts';

const key = { pk: 'budget#https://gitlab.example', sk: 'BUDGET' };

/** `expression` over `item` with the names #a…#e for a…e and the given values. */
function holds(expression: string, item: Item | undefined, values: Record<string, unknown> = {}): boolean {
  const names = Object.fromEntries(['a', 'b', 'c', 'd', 'e'].filter((n) => expression.includes(`#${n}`)).map((n) => [`#${n}`, n]));
  return conditionHolds(expression, Object.keys(names).length > 0 ? names : undefined, values, item);
}

function update(expression: string, item: Item | undefined, values?: Record<string, unknown>, names?: Record<string, string>): Item {
  const used = names ?? Object.fromEntries(['a', 'b', 'c', 'd', 'e'].filter((n) => expression.includes(`#${n}`)).map((n) => [`#${n}`, n]));
  return applyUpdate(expression, used, values, item, key);
}

function validationError(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    expect((error as Error).name).toBe('ValidationException');
    return error as Error;
  }
  throw new Error('expected a ValidationException');
}

describe('a condition expression', () => {
  const item = { pk: 'p', sk: 's', a: 5, b: 'beta', c: true, d: null };

  it('compares numbers with = <> < <= > >=', () => {
    expect(holds('#a = :v', item, { ':v': 5 })).toBe(true);
    expect(holds('#a <> :v', item, { ':v': 5 })).toBe(false);
    expect(holds('#a < :v', item, { ':v': 6 })).toBe(true);
    expect(holds('#a <= :v', item, { ':v': 5 })).toBe(true);
    expect(holds('#a > :v', item, { ':v': 5 })).toBe(false);
    expect(holds('#a >= :v', item, { ':v': 5 })).toBe(true);
    expect(holds(':v < #a', item, { ':v': 4.5 })).toBe(true);
  });

  it('compares strings by their UTF-8 bytes, so an emoji sorts after U+FFFD though JavaScript says otherwise', () => {
    expect(holds('#b < :v', item, { ':v': 'gamma' })).toBe(true);
    expect(holds('#b > :v', { b: '😀' }, { ':v': '\ufffd' })).toBe(true);
    expect('😀' > '\ufffd').toBe(false);
  });

  it('compares binary values byte by byte', () => {
    expect(holds('#a < :v', { a: new Uint8Array([1, 2]) }, { ':v': new Uint8Array([1, 3]) })).toBe(true);
    expect(holds('#a = :v', { a: new Uint8Array([1, 2]) }, { ':v': Buffer.from([1, 2]) })).toBe(true);
  });

  it('finds a missing attribute equal to nothing and ordered against nothing', () => {
    for (const op of ['=', '<', '<=', '>', '>=']) expect(holds(`#e ${op} :v`, item, { ':v': 1 })).toBe(false);
    expect(holds('#e BETWEEN :x AND :y', item, { ':x': 0, ':y': 9 })).toBe(false);
    expect(holds('#e IN (:x, :y)', item, { ':x': 0, ':y': 9 })).toBe(false);
  });

  it('finds a missing attribute, and one of another type, not equal (<> is the negation of =, as dynalite found against DynamoDB)', () => {
    expect(holds('#e <> :v', item, { ':v': 1 })).toBe(true);
    expect(holds('#a <> :v', item, { ':v': '5' })).toBe(true);
  });

  it('never matches values of different types: the string "5" is not the number 5', () => {
    expect(holds('#a = :v', item, { ':v': '5' })).toBe(false);
    expect(holds('#a < :v', item, { ':v': '6' })).toBe(false);
    expect(holds('#a >= :v', item, { ':v': '0' })).toBe(false);
    expect(holds('#a IN (:v)', item, { ':v': '5' })).toBe(false);
  });

  it('compares lists in order, and maps and sets whatever their order', () => {
    expect(holds('#a = :v', { a: [1, 'x'] }, { ':v': [1, 'x'] })).toBe(true);
    expect(holds('#a = :v', { a: [1, 'x'] }, { ':v': ['x', 1] })).toBe(false);
    expect(holds('#a = :v', { a: { x: 1, y: [2] } }, { ':v': { y: [2], x: 1 } })).toBe(true);
    expect(holds('#a = :v', { a: new Set(['x', 'y']) }, { ':v': new Set(['y', 'x']) })).toBe(true);
    expect(holds('#a = :v', { a: null }, { ':v': null })).toBe(true);
  });

  it('takes BETWEEN … AND … inclusively at both ends', () => {
    expect(holds('#a BETWEEN :x AND :y', item, { ':x': 5, ':y': 9 })).toBe(true);
    expect(holds('#a BETWEEN :x AND :y', item, { ':x': 1, ':y': 5 })).toBe(true);
    expect(holds('#a BETWEEN :x AND :y', item, { ':x': 6, ':y': 9 })).toBe(false);
  });

  it('refuses BETWEEN bounds of two types, or a lower bound above the upper one', () => {
    expect(validationError(() => holds('#a BETWEEN :x AND :y', item, { ':x': 1, ':y': 'z' })).message).toMatch(/same data type/);
    expect(validationError(() => holds('#a BETWEEN :x AND :y', item, { ':x': 9, ':y': 1 })).message).toMatch(/upper bound/);
  });

  it('takes IN (…) as equal to any of the values listed', () => {
    expect(holds('#b IN (:x, :y)', item, { ':x': 'alpha', ':y': 'beta' })).toBe(true);
    expect(holds('#b IN (:x)', item, { ':x': 'alpha' })).toBe(false);
  });

  it('answers attribute_exists and attribute_not_exists, and a null attribute exists', () => {
    expect(holds('attribute_exists(#a)', item)).toBe(true);
    expect(holds('attribute_exists(#d)', item)).toBe(true);
    expect(holds('attribute_not_exists(#e)', item)).toBe(true);
    expect(holds('attribute_not_exists(#a)', item)).toBe(false);
  });

  it('sees no attributes at all on an item that does not exist', () => {
    expect(holds('attribute_not_exists(#a)', undefined)).toBe(true);
    expect(holds('#a = :v', undefined, { ':v': 5 })).toBe(false);
    expect(holds('attribute_exists(#a)', undefined)).toBe(false);
  });

  it('answers begins_with for strings and binaries, and false for a number', () => {
    expect(holds('begins_with(#b, :p)', item, { ':p': 'be' })).toBe(true);
    expect(holds('begins_with(#b, :p)', item, { ':p': 'ta' })).toBe(false);
    expect(holds('begins_with(#a, :p)', { a: new Uint8Array([1, 2, 3]) }, { ':p': new Uint8Array([1, 2]) })).toBe(true);
    expect(holds('begins_with(#a, :p)', item, { ':p': '5' })).toBe(false);
    expect(validationError(() => holds('begins_with(#b, :p)', item, { ':p': 5 })).message).toMatch(/begins_with/);
  });

  it('answers contains for a substring, a set member and a list element', () => {
    expect(holds('contains(#b, :s)', item, { ':s': 'et' })).toBe(true);
    expect(holds('contains(#a, :s)', { a: new Set(['x', 'y']) }, { ':s': 'y' })).toBe(true);
    expect(holds('contains(#a, :s)', { a: new Set([1, 2]) }, { ':s': 3 })).toBe(false);
    expect(holds('contains(#a, :s)', { a: ['x', 2] }, { ':s': 2 })).toBe(true);
    expect(holds('contains(#a, :s)', { a: ['x', 2] }, { ':s': '2' })).toBe(false);
  });

  it('takes size() as an operand: string length, list, map and set sizes, nothing for a missing attribute', () => {
    expect(holds('size(#b) = :n', item, { ':n': 4 })).toBe(true);
    expect(holds('size(#a) > :n', { a: [1, 2, 3] }, { ':n': 2 })).toBe(true);
    expect(holds('size(#a) = :n', { a: { x: 1 } }, { ':n': 1 })).toBe(true);
    expect(holds('size(#a) = :n', { a: new Set([1, 2]) }, { ':n': 2 })).toBe(true);
    expect(holds('size(#e) >= :n', item, { ':n': 0 })).toBe(false);
  });

  it('answers attribute_type, and refuses a type name DynamoDB does not have', () => {
    expect(holds('attribute_type(#a, :t)', item, { ':t': 'N' })).toBe(true);
    expect(holds('attribute_type(#c, :t)', item, { ':t': 'BOOL' })).toBe(true);
    expect(holds('attribute_type(#a, :t)', item, { ':t': 'S' })).toBe(false);
    expect(validationError(() => holds('attribute_type(#a, :t)', item, { ':t': 'NUMBER' })).message).toMatch(/Invalid attribute type name/);
  });

  it('binds NOT tighter than AND, and AND tighter than OR', () => {
    const values = { ':t': true, ':f': false };
    const both = { a: true, b: false, c: false };
    // a OR (b AND c), not (a OR b) AND c
    expect(holds('#a = :t OR #b = :t AND #c = :t', both, values)).toBe(true);
    // (NOT a) AND b, not NOT (a AND b)
    expect(holds('NOT #a = :f AND #b = :t', both, values)).toBe(false);
    expect(holds('NOT (#a = :t AND #b = :t)', both, values)).toBe(true);
    expect(holds('(#a = :t OR #b = :t) AND #c = :t', both, values)).toBe(false);
  });

  it('reads AND, OR, NOT, BETWEEN and IN whatever their case, but function names only in lower case', () => {
    expect(holds('#a = :v and not #b = :w Or #c in (:x)', item, { ':v': 5, ':w': 'x', ':x': false })).toBe(true);
    expect(validationError(() => holds('ATTRIBUTE_EXISTS(#a)', item)).message).toMatch(/Invalid function name; function: ATTRIBUTE_EXISTS/);
  });

  it('takes plain attribute names, but not a reserved word', () => {
    expect(holds('b = :v', item, { ':v': 'beta' })).toBe(true);
    expect(validationError(() => holds('size = :v', { size: 1 }, { ':v': 1 })).message).toMatch(/reserved keyword; reserved keyword: size/);
  });

  it('names a placeholder that ExpressionAttributeNames or ExpressionAttributeValues lacks', () => {
    expect(validationError(() => conditionHolds('#x = :v', {}, { ':v': 1 }, item)).message).toMatch(/attribute name: #x/);
    expect(validationError(() => conditionHolds('#a = :nope', { '#a': 'a' }, { ':v': 1 }, item)).message).toMatch(/attribute value: :nope/);
    // even where evaluation would not reach it
    expect(validationError(() => conditionHolds('attribute_exists(#a) OR #b = :nope', { '#a': 'a', '#b': 'b' }, undefined, item)).message).toMatch(/:nope/);
  });

  it('refuses what DynamoDB refuses: syntax errors, redundant parentheses, misused functions, an empty expression', () => {
    expect(validationError(() => holds('#a = ', item)).message).toMatch(/Syntax error/);
    expect(validationError(() => holds('#a == :v', item, { ':v': 1 })).message).toMatch(/Syntax error/);
    expect(validationError(() => holds('((#a = :v))', item, { ':v': 1 })).message).toMatch(/redundant parentheses/);
    expect(validationError(() => holds('size(#a)', item)).message).toMatch(/not allowed to be used this way/);
    expect(validationError(() => holds('attribute_exists(:v)', item, { ':v': 1 })).message).toMatch(/requires a document path/);
    expect(validationError(() => holds('#a = #a', item)).message).toMatch(/must be distinct/);
    expect(validationError(() => holds('  ', item)).message).toMatch(/can not be empty/);
  });

  it('takes a parenthesised operand', () => {
    expect(holds('(#a) = :v', item, { ':v': 5 })).toBe(true);
  });

  it('says the fake cannot evaluate a nested document path rather than guessing', () => {
    expect(() => holds('#a.#b = :v', item, { ':v': 1 })).toThrow(/fake DynamoDB cannot evaluate .*nested/);
    expect(() => holds('#a[0] = :v', item, { ':v': 1 })).toThrow(/fake DynamoDB cannot evaluate/);
  });

  it('evaluates the rate budget claim: the window is current, the cap not reached, no hold', () => {
    const names = { '#used': 'used', '#window': 'window', '#holdUntil': 'holdUntil' };
    const expression = '#window = :w AND #used <= :cap AND #holdUntil <= :now';
    const budget = { ...key, window: 60_000, used: 10, holdUntil: 0 };
    expect(conditionHolds(expression, names, { ':w': 60_000, ':cap': 10, ':now': 1 }, budget)).toBe(true);
    expect(conditionHolds(expression, names, { ':w': 60_000, ':cap': 9, ':now': 1 }, budget)).toBe(false);
    expect(conditionHolds(expression, names, { ':w': 120_000, ':cap': 10, ':now': 1 }, budget)).toBe(false);
    expect(conditionHolds(expression, names, { ':w': 60_000, ':cap': 10, ':now': 1 }, { ...budget, holdUntil: 2 })).toBe(false);
    expect(conditionHolds(expression, names, { ':w': 60_000, ':cap': 10, ':now': 1 }, undefined)).toBe(false);
  });

  it('evaluates the rate budget window opening on an absent, an older and a held item', () => {
    const names = { '#window': 'window', '#holdUntil': 'holdUntil' };
    const expression = '(attribute_not_exists(#window) OR #window < :w) AND (attribute_not_exists(#holdUntil) OR #holdUntil <= :now)';
    const values = { ':w': 120_000, ':now': 130_000 };
    expect(conditionHolds(expression, names, values, undefined)).toBe(true);
    expect(conditionHolds(expression, names, values, { window: 60_000, holdUntil: 0 })).toBe(true);
    expect(conditionHolds(expression, names, values, { window: 120_000, holdUntil: 0 })).toBe(false);
    expect(conditionHolds(expression, names, values, { window: 60_000, holdUntil: 140_000 })).toBe(false);
  });
});

describe('an update expression', () => {
  it('adds to a number with SET #a = #a + :k, and subtracts with -', () => {
    expect(update('SET #a = #a + :k', { ...key, a: 3 }, { ':k': 2 })).toEqual({ ...key, a: 5 });
    expect(update('SET #a = #b - :k', { ...key, b: 3 }, { ':k': 5 })).toEqual({ ...key, a: -2, b: 3 });
  });

  it('adds decimals exactly, as DynamoDB does (0.1 + 0.2 is 0.3)', () => {
    expect(update('SET #a = #a + :k', { ...key, a: 0.1 }, { ':k': 0.2 }).a).toBe(0.3);
  });

  it('refuses + on an attribute the item lacks with the ValidationException DynamoDB answers', () => {
    const error = validationError(() => update('SET #a = #a + :k', { ...key }, { ':k': 1 }));
    expect(error.message).toBe('Invalid UpdateExpression: The provided expression refers to an attribute that does not exist in the item');
  });

  it('refuses + on a string', () => {
    expect(validationError(() => update('SET #a = #a + :k', { ...key, a: '1' }, { ':k': 1 })).message).toMatch(/incorrect data type/);
  });

  it('takes if_not_exists: the attribute where the item has it, the value where it does not', () => {
    expect(update('SET #a = if_not_exists(#a, :zero)', { ...key, a: 7 }, { ':zero': 0 }).a).toBe(7);
    expect(update('SET #a = if_not_exists(#a, :zero)', { ...key }, { ':zero': 0 }).a).toBe(0);
    expect(update('SET #a = if_not_exists(#a, :zero) + :k', { ...key }, { ':zero': 0, ':k': 4 }).a).toBe(4);
  });

  it('appends lists with list_append, and refuses it on a missing list', () => {
    expect(update('SET #a = list_append(#a, :more)', { ...key, a: [1] }, { ':more': [2, 3] }).a).toEqual([1, 2, 3]);
    expect(update('SET #a = list_append(if_not_exists(#a, :none), :more)', { ...key }, { ':none': [], ':more': [2] }).a).toEqual([2]);
    expect(validationError(() => update('SET #a = list_append(#a, :more)', { ...key }, { ':more': [2] })).message).toMatch(/does not exist/);
  });

  it('reads every operand from the item as it was before the update (SET #a = #b, #b = #a swaps)', () => {
    expect(update('SET #a = #b, #b = #a', { ...key, a: 1, b: 2 })).toEqual({ ...key, a: 2, b: 1 });
  });

  it('removes attributes with REMOVE, whether or not the item has them', () => {
    expect(update('REMOVE #a, #b', { ...key, a: 1, c: 3 })).toEqual({ ...key, c: 3 });
  });

  it('adds to a number with ADD, starting from 0 where the item lacks it', () => {
    expect(update('ADD #a :n', { ...key, a: 2 }, { ':n': 3 }).a).toBe(5);
    expect(update('ADD #a :n', { ...key }, { ':n': 3 }).a).toBe(3);
    expect(validationError(() => update('ADD #a :n', { ...key }, { ':n': 'x' })).message).toMatch(/operator: ADD, operand type: STRING/);
    expect(validationError(() => update('ADD #a :n', { ...key, a: 'x' }, { ':n': 1 })).message).toMatch(/incorrect data type/);
  });

  it('adds to and deletes from sets with ADD and DELETE, removing a set left empty', () => {
    expect(update('ADD #a :s', { ...key, a: new Set(['x']) }, { ':s': new Set(['x', 'y']) }).a).toEqual(new Set(['x', 'y']));
    expect(update('DELETE #a :s', { ...key, a: new Set(['x', 'y']) }, { ':s': new Set(['x']) }).a).toEqual(new Set(['y']));
    expect(update('DELETE #a :s', { ...key, a: new Set(['x']) }, { ':s': new Set(['x']) })).toEqual({ ...key });
  });

  it('applies several clauses in one expression, in any order and any case', () => {
    expect(update('remove #c SET #a = :v ADD #b :n', { ...key, b: 1, c: 'gone' }, { ':v': 'set', ':n': 1 })).toEqual({ ...key, a: 'set', b: 2 });
  });

  it('creates an absent item from its key', () => {
    expect(update('SET #a = :v', undefined, { ':v': 1 })).toEqual({ ...key, a: 1 });
    expect(update('REMOVE #a', undefined)).toEqual({ ...key });
  });

  it('leaves the item it was given unchanged', () => {
    const before = { ...key, a: 1, b: [1] };
    update('SET #a = #a + :k, #b = list_append(#b, :l)', before, { ':k': 1, ':l': [2] });
    expect(before).toEqual({ ...key, a: 1, b: [1] });
  });

  it('refuses what DynamoDB refuses: a key attribute, one attribute twice, a section twice, a missing placeholder', () => {
    expect(validationError(() => update('SET #pk = :v', undefined, { ':v': 'x' }, { '#pk': 'pk' })).message).toMatch(/Cannot update attribute pk/);
    expect(validationError(() => update('SET #a = :v REMOVE #a', undefined, { ':v': 1 })).message).toMatch(/overlap/);
    expect(validationError(() => update('SET #a = :v SET #b = :v', undefined, { ':v': 1 })).message).toMatch(/"SET" section can only be used once/);
    expect(validationError(() => update('SET #a = :v', undefined, {})).message).toMatch(/attribute value: :v/);
    expect(validationError(() => update('SET #a = #a + :k + :k', { ...key, a: 1 }, { ':k': 1 })).message).toMatch(/Syntax error/);
    expect(validationError(() => update('SET #a = nope(#a)', undefined)).message).toMatch(/Invalid function name; function: nope/);
  });

  it('applies the three rate budget updates', () => {
    const names = { '#used': 'used', '#window': 'window', '#holdUntil': 'holdUntil', '#expiresAt': 'expiresAt', '#learned': 'learned' };
    const opened = applyUpdate(
      'SET #window = :w, #used = :k, #holdUntil = if_not_exists(#holdUntil, :zero), #expiresAt = :ttl',
      names,
      { ':w': 60_000, ':k': 5, ':zero': 0, ':ttl': 999 },
      undefined,
      key,
    );
    expect(opened).toEqual({ ...key, window: 60_000, used: 5, holdUntil: 0, expiresAt: 999 });
    const claimed = applyUpdate('SET #used = #used + :k', names, { ':k': 5 }, opened, key);
    expect(claimed.used).toBe(10);
    const held = applyUpdate('SET #holdUntil = :until, #learned = :limit, #expiresAt = :ttl', names, { ':until': 70_000, ':limit': 300, ':ttl': 1_000 }, claimed, key);
    expect(held).toEqual({ ...key, window: 60_000, used: 10, holdUntil: 70_000, learned: 300, expiresAt: 1_000 });
  });
});

describe('the expression cache', () => {
  it('parses each distinct expression string once', () => {
    const cache = new ExpressionCache();
    expect(cache.condition('#a = :v')).toBe(cache.condition('#a = :v'));
    expect(cache.update('SET #a = :v')).toBe(cache.update('SET #a = :v'));
    expect(cache.condition('#a = :v')).not.toBe(cache.condition('#a = :w'));
  });
});

describe.each([
  ['FakeDynamoTable', () => new FakeDynamoTable()],
  ['LeanDynamoTable', () => new LeanDynamoTable()],
] as const)('%s', (_name, create) => {
  let table: FakeDynamoTable | LeanDynamoTable;
  afterEach(() => {
    if (table instanceof FakeDynamoTable) table.mock.restore();
  });
  const get = async () => (await table.client.send(new GetCommand({ TableName: 't', Key: key }))).Item;
  const claim = (now: number) =>
    table.client.send(
      new UpdateCommand({
        TableName: 't',
        Key: key,
        UpdateExpression: 'SET #window = :w, #used = :k, #holdUntil = if_not_exists(#holdUntil, :zero), #expiresAt = :ttl',
        ConditionExpression: '(attribute_not_exists(#window) OR #window < :w) AND (attribute_not_exists(#holdUntil) OR #holdUntil <= :now)',
        ExpressionAttributeNames: { '#window': 'window', '#used': 'used', '#holdUntil': 'holdUntil', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: { ':w': 60_000, ':k': 5, ':zero': 0, ':ttl': 999, ':now': now },
        ReturnValues: 'ALL_NEW',
      }),
    );

  it('creates an absent item on UpdateCommand and answers it with ReturnValues ALL_NEW', async () => {
    table = create();
    const reply = await claim(61_000);
    expect(reply.Attributes).toEqual({ ...key, window: 60_000, used: 5, holdUntil: 0, expiresAt: 999 });
    expect(await get()).toEqual(reply.Attributes);
  });

  it('throws ConditionalCheckFailedException on a failed condition and leaves the item unchanged', async () => {
    table = create();
    await claim(61_000);
    const before = await get();
    await expect(claim(61_000)).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(await get()).toEqual(before);
  });

  it('answers UPDATED_NEW, UPDATED_OLD and ALL_OLD, and nothing for NONE', async () => {
    table = create();
    await claim(61_000);
    const add = (ReturnValues: 'UPDATED_NEW' | 'UPDATED_OLD' | 'ALL_OLD' | 'NONE') =>
      table.client.send(new UpdateCommand({ TableName: 't', Key: key, UpdateExpression: 'SET #used = #used + :k', ExpressionAttributeNames: { '#used': 'used' }, ExpressionAttributeValues: { ':k': 1 }, ReturnValues }));
    expect((await add('UPDATED_NEW')).Attributes).toEqual({ used: 6 });
    expect((await add('UPDATED_OLD')).Attributes).toEqual({ used: 6 });
    expect((await add('ALL_OLD')).Attributes).toEqual({ ...key, window: 60_000, used: 7, holdUntil: 0, expiresAt: 999 });
    expect((await add('NONE')).Attributes).toBeUndefined();
    expect((await get())?.used).toBe(9);
  });

  it('refuses a request whose ExpressionAttributeValues has a value no expression uses, as DynamoDB does', async () => {
    table = create();
    const send = table.client.send(
      new UpdateCommand({ TableName: 't', Key: key, UpdateExpression: 'SET #used = :k', ExpressionAttributeNames: { '#used': 'used' }, ExpressionAttributeValues: { ':k': 1, ':spare': 2 } }),
    );
    await expect(send).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringMatching(/unused in expressions: keys: \{:spare\}/) });
    expect(await get()).toBeUndefined();
  });

  it('evaluates the scan claim PutCommand condition: absent, stale or the same scan', async () => {
    table = create();
    const put = (scanId: string, scannedAt: string, notBefore: string) =>
      table.client.send(
        new PutCommand({
          TableName: 't',
          Item: { ...key, scanId, scannedAt },
          ConditionExpression: 'attribute_not_exists(#pk) OR #scannedAt < :notBefore OR #scanId = :scanId',
          ExpressionAttributeNames: { '#pk': 'pk', '#scannedAt': 'scannedAt', '#scanId': 'scanId' },
          ExpressionAttributeValues: { ':notBefore': notBefore, ':scanId': scanId },
        }),
      );
    await put('one', '2025-01-01T10:00:00.000Z', '2025-01-01T09:00:00.000Z');
    await expect(put('two', '2025-01-01T10:05:00.000Z', '2025-01-01T09:05:00.000Z')).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    await put('one', '2025-01-01T10:06:00.000Z', '2025-01-01T09:06:00.000Z');
    await put('three', '2025-01-01T12:00:00.000Z', '2025-01-01T11:00:00.000Z');
    expect((await get())?.scanId).toBe('three');
  });

  it('deletes only when the DeleteCommand condition holds', async () => {
    table = create();
    await claim(61_000);
    const remove = (used: number) =>
      table.client.send(new DeleteCommand({ TableName: 't', Key: key, ConditionExpression: '#used = :u', ExpressionAttributeNames: { '#used': 'used' }, ExpressionAttributeValues: { ':u': used } }));
    await expect(remove(4)).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(await get()).toBeDefined();
    await remove(5);
    expect(await get()).toBeUndefined();
  });

  it('writes a transaction all or nothing: a failed ConditionCheck cancels its Put and Update', async () => {
    table = create();
    await claim(61_000);
    const other = { pk: 'other', sk: 'x' };
    const transact = (expected: number) =>
      table.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { ConditionCheck: { TableName: 't', Key: key, ConditionExpression: '#used = :u', ExpressionAttributeNames: { '#used': 'used' }, ExpressionAttributeValues: { ':u': expected } } },
            { Put: { TableName: 't', Item: { ...other, v: 1 } } },
            { Update: { TableName: 't', Key: { pk: 'third', sk: 'x' }, UpdateExpression: 'ADD #n :one', ExpressionAttributeNames: { '#n': 'n' }, ExpressionAttributeValues: { ':one': 1 } } },
          ],
        }),
      );
    const failure = await transact(4).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TransactionCanceledException);
    expect((failure as TransactionCanceledException).CancellationReasons?.map((r) => r.Code)).toEqual(['ConditionalCheckFailed', 'None', 'None']);
    expect((await table.client.send(new GetCommand({ TableName: 't', Key: other }))).Item).toBeUndefined();
    await transact(5);
    expect((await table.client.send(new GetCommand({ TableName: 't', Key: other }))).Item).toEqual({ ...other, v: 1 });
    expect((await table.client.send(new GetCommand({ TableName: 't', Key: { pk: 'third', sk: 'x' } }))).Item).toEqual({ pk: 'third', sk: 'x', n: 1 });
  });

  it('refuses a transaction with two operations on one item', async () => {
    table = create();
    const send = table.client.send(new TransactWriteCommand({ TransactItems: [{ Put: { TableName: 't', Item: { ...key } } }, { Delete: { TableName: 't', Key: key } }] }));
    await expect(send).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringMatching(/multiple operations on one item/) });
  });
});
