/**
 * DynamoDB condition and update expressions, evaluated the way DynamoDB evaluates them, for the test fakes
 * (test/support/fake-dynamodb.ts) and the benchmark's lean table (bench/lean-aws.ts). Items are what the
 * Document client (lib-dynamodb) takes and answers: strings, numbers, booleans, null, Uint8Array, arrays
 * (L), plain objects (M) and Sets (SS, NS, BS).
 *
 * Sources, Amazon DynamoDB Developer Guide:
 * - "Condition and filter expressions, operators, and functions" (Expressions.OperatorsAndFunctions): the
 *   grammar, the comparators, BETWEEN, IN (at most 100 values), the functions (their names are
 *   case-sensitive) and the precedence: comparators, IN, BETWEEN, functions, parentheses, NOT, AND, OR.
 * - "Using update expressions" (Expressions.UpdateExpressions): SET with `+`/`-`, if_not_exists and
 *   list_append, REMOVE, ADD (numbers and sets), DELETE (sets); each section at most once; `+` on an
 *   attribute the item lacks fails with "The provided expression refers to an attribute that does not
 *   exist in the item", which is why counters are written `SET #n = if_not_exists(#n, :zero) + :k`.
 * - "Expression attribute names" / "Expression attribute values" and "Reserved words in DynamoDB".
 * - "Comparison operator reference": a comparison with an attribute the item lacks, or with a value of
 *   another type, does not match; strings compare by their UTF-8 bytes (code point order).
 * And the API Reference (UpdateItem ReturnValues, TransactWriteItems, TransactionCanceledException).
 * Where the guide is silent, behaviour follows dynalite (github.com/architect/dynalite), whose tests ran
 * against DynamoDB: `a <> b` is the negation of `a = b` (true for another type, and for a missing
 * attribute), all SET operands read the item as it was before the update, and an update of an absent
 * item creates it from its key even when it only removes attributes.
 *
 * Not supported (throws `fake DynamoDB cannot evaluate …` rather than guessing): nested document paths
 * (`a.b`, `a[0]`), ReturnValuesOnConditionCheckFailure ALL_OLD, the legacy Expected/AttributeUpdates
 * parameters, NumberValue/bigint numbers, size() of a string beyond ASCII, ordering comparisons between
 * lists, maps, sets or booleans.
 */
import { ConditionalCheckFailedException, DynamoDBServiceException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';

export type Item = Record<string, unknown>;
export type AttributeNames = Record<string, string> | undefined;
export type AttributeValues = Record<string, unknown> | undefined;

const $metadata = {};
/** The ledger table's key (lib/constructs/ledger-table.ts): pk and sk, both strings. */
const KEY_ATTRIBUTES = ['pk', 'sk'] as const;

// ---------------------------------------------------------------------------------------------- errors

/** What DynamoDB answers with HTTP 400 `ValidationException` (the SDK raises it as a DynamoDBServiceException). */
export function validationException(message: string): DynamoDBServiceException {
  return new DynamoDBServiceException({ name: 'ValidationException', $fault: 'client', $metadata, message });
}

function cannotEvaluate(what: string): Error {
  return new Error(`fake DynamoDB cannot evaluate ${what}`);
}

export function isValidationException(error: unknown): error is DynamoDBServiceException {
  return error instanceof DynamoDBServiceException && error.name === 'ValidationException';
}

// ---------------------------------------------------------------------------------------------- values

type ValueType = 'S' | 'N' | 'B' | 'BOOL' | 'NULL' | 'L' | 'M' | 'SS' | 'NS' | 'BS';
const TYPE_NAMES: Record<ValueType, string> = { S: 'STRING', N: 'NUMBER', B: 'BINARY', BOOL: 'BOOLEAN', NULL: 'NULL', L: 'LIST', M: 'MAP', SS: 'SS', NS: 'NS', BS: 'BS' };

/** The DynamoDB type lib-dynamodb marshalls `value` to. */
function typeOf(value: unknown): ValueType {
  switch (typeof value) {
    case 'string':
      return 'S';
    case 'number':
      if (!Number.isFinite(value)) throw cannotEvaluate(`the number ${value} (lib-dynamodb refuses it)`);
      return 'N';
    case 'boolean':
      return 'BOOL';
    case 'object':
      if (value === null) return 'NULL';
      if (value instanceof Uint8Array) return 'B';
      if (Array.isArray(value)) return 'L';
      if (value instanceof Set) return setType(value);
      if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) return 'M';
      throw cannotEvaluate(`a value of class ${value.constructor?.name ?? 'unknown'} (NumberValue, Date, Map, … are not modelled)`);
    default:
      throw cannotEvaluate(`a value of type ${typeof value}`);
  }
}

function setType(set: Set<unknown>): ValueType {
  let type: ValueType | undefined;
  for (const element of set) {
    const t = typeof element === 'string' ? 'SS' : typeof element === 'number' ? 'NS' : element instanceof Uint8Array ? 'BS' : undefined;
    if (t === undefined || (type !== undefined && t !== type)) throw cannotEvaluate('a Set that is not all strings, all numbers or all binaries');
    type = t;
  }
  if (type === undefined) throw cannotEvaluate('an empty Set (lib-dynamodb refuses it)');
  return type;
}

function bytesKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function setKeys(set: Set<unknown>, type: ValueType): Set<unknown> {
  return type === 'BS' ? new Set([...set].map((b) => bytesKey(b as Uint8Array))) : set;
}

/** DynamoDB equality: same type and same value (lists in order, maps and sets whatever their order). */
function valuesEqual(a: unknown, b: unknown): boolean {
  const type = typeOf(a);
  if (type !== typeOf(b)) return false;
  switch (type) {
    case 'S':
    case 'N':
    case 'BOOL':
      return a === b;
    case 'NULL':
      return true;
    case 'B':
      return bytesKey(a as Uint8Array) === bytesKey(b as Uint8Array);
    case 'L': {
      const x = a as unknown[];
      const y = b as unknown[];
      return x.length === y.length && x.every((v, i) => valuesEqual(v, y[i]));
    }
    case 'M': {
      const x = a as Item;
      const y = b as Item;
      const keys = Object.keys(x);
      return keys.length === Object.keys(y).length && keys.every((k) => Object.hasOwn(y, k) && valuesEqual(x[k], y[k]));
    }
    default: {
      const x = setKeys(a as Set<unknown>, type);
      const y = setKeys(b as Set<unknown>, type);
      return x.size === y.size && [...x].every((v) => y.has(v));
    }
  }
}

/** UTF-16 code units ordered as code points (so as UTF-8 bytes): surrogates after U+E000–U+FFFF. */
function codePointOrder(unit: number): number {
  return unit < 0xd800 ? unit : unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointOrder(x) - codePointOrder(y);
  }
  return a.length - b.length;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Orders two values of one scalar type (N, S, B); undefined when DynamoDB would not match them (another type). */
function compareOrdered(a: unknown, b: unknown, operator: string): number | undefined {
  const type = typeOf(a);
  if (type !== typeOf(b)) return undefined;
  if (type === 'N') return (a as number) - (b as number);
  if (type === 'S') return compareStrings(a as string, b as string);
  if (type === 'B') return compareBytes(a as Uint8Array, b as Uint8Array);
  throw cannotEvaluate(`${operator} between two values of type ${TYPE_NAMES[type]}`);
}

// Numbers: DynamoDB adds decimals exactly (0.1 + 0.2 is 0.3); lib-dynamodb sends String(n) and answers Number(text).
function toDecimal(n: number): { digits: bigint; exponent: number } {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(n));
  if (!match) throw cannotEvaluate(`the number ${n}`);
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  const digits = BigInt(`${whole}${fraction}`);
  return { digits: sign === '-' ? -digits : digits, exponent: Number(exponent) - fraction.length };
}

function addNumbers(a: number, b: number): number {
  const sum = a + b;
  if (Number.isSafeInteger(a) && Number.isSafeInteger(b) && Number.isSafeInteger(sum)) return sum;
  const x = toDecimal(a);
  const y = toDecimal(b);
  const exponent = Math.min(x.exponent, y.exponent);
  const digits = x.digits * 10n ** BigInt(x.exponent - exponent) + y.digits * 10n ** BigInt(y.exponent - exponent);
  const exact = Number(`${digits}e${exponent}`);
  if (Number.isInteger(exact) && !Number.isSafeInteger(exact)) throw cannotEvaluate(`${a} + ${b}: lib-dynamodb cannot answer ${digits}e${exponent} as a number`);
  return exact;
}

// ---------------------------------------------------------------------------------------------- tokens

type TokenKind = 'name' | 'value' | 'word' | 'op' | 'punct' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
  at: number;
}

type ExpressionKind = 'ConditionExpression' | 'UpdateExpression';

function tokenize(source: string, what: ExpressionKind): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i += 1;
      continue;
    }
    const start = i;
    if (c === '#' || c === ':' || /\w/.test(c)) {
      i += 1;
      while (i < source.length && /\w/.test(source[i]!)) i += 1;
      if ((c === '#' || c === ':') && i === start + 1) throw syntaxError(what, source, c, start);
      tokens.push({ kind: c === '#' ? 'name' : c === ':' ? 'value' : 'word', text: source.slice(start, i), at: start });
      continue;
    }
    const two = source.slice(i, i + 2);
    if (two === '<=' || two === '>=' || two === '<>') {
      tokens.push({ kind: 'op', text: two, at: start });
      i += 2;
    } else if ('=<>+-'.includes(c)) {
      tokens.push({ kind: 'op', text: c, at: start });
      i += 1;
    } else if ('(),.[]'.includes(c)) {
      tokens.push({ kind: 'punct', text: c, at: start });
      i += 1;
    } else {
      throw syntaxError(what, source, c, start);
    }
  }
  tokens.push({ kind: 'end', text: '<EOF>', at: source.length });
  return tokens;
}

/** A malformed expression: DynamoDB refuses the request with a ValidationException. */
class SyntaxFailure extends Error {}

function syntaxError(what: ExpressionKind, source: string, token: string, at: number): SyntaxFailure {
  return new SyntaxFailure(`Invalid ${what}: Syntax error; token: "${token}", near: "${source.slice(Math.max(0, at - 10), at + 10)}"`);
}

const RESERVED_WORDS = new Set(
  (
    'ABORT ABSOLUTE ACTION ADD AFTER AGENT AGGREGATE ALL ALLOCATE ALTER ANALYZE AND ANY ARCHIVE ARE ARRAY AS ASC ASCII ASENSITIVE ASSERTION ' +
    'ASYMMETRIC AT ATOMIC ATTACH ATTRIBUTE AUTH AUTHORIZATION AUTHORIZE AUTO AVG BACK BACKUP BASE BATCH BEFORE BEGIN BETWEEN BIGINT BINARY ' +
    'BIT BLOB BLOCK BOOLEAN BOTH BREADTH BUCKET BULK BY BYTE CALL CALLED CALLING CAPACITY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER ' +
    'CHECK CLASS CLOB CLOSE CLUSTER CLUSTERED CLUSTERING CLUSTERS COALESCE COLLATE COLLATION COLLECTION COLUMN COLUMNS COMBINE COMMENT COMMIT ' +
    'COMPACT COMPILE COMPRESS CONDITION CONFLICT CONNECT CONNECTION CONSISTENCY CONSISTENT CONSTRAINT CONSTRAINTS CONSTRUCTOR CONSUMED ' +
    'CONTINUE CONVERT COPY CORRESPONDING COUNT COUNTER CREATE CROSS CUBE CURRENT CURSOR CYCLE DATA DATABASE DATE DATETIME DAY DEALLOCATE DEC ' +
    'DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DEFINE DEFINED DEFINITION DELETE DELIMITED DEPTH DEREF DESC DESCRIBE DESCRIPTOR DETACH ' +
    'DETERMINISTIC DIAGNOSTICS DIRECTORIES DISABLE DISCONNECT DISTINCT DISTRIBUTE DO DOMAIN DOUBLE DROP DUMP DURATION DYNAMIC EACH ELEMENT ' +
    'ELSE ELSEIF EMPTY ENABLE END EQUAL EQUALS ERROR ESCAPE ESCAPED EVAL EVALUATE EXCEEDED EXCEPT EXCEPTION EXCEPTIONS EXCLUSIVE EXEC EXECUTE ' +
    'EXISTS EXIT EXPLAIN EXPLODE EXPORT EXPRESSION EXTENDED EXTERNAL EXTRACT FAIL FALSE FAMILY FETCH FIELDS FILE FILTER FILTERING FINAL ' +
    'FINISH FIRST FIXED FLATTERN FLOAT FOR FORCE FOREIGN FORMAT FORWARD FOUND FREE FROM FULL FUNCTION FUNCTIONS GENERAL GENERATE GET GLOB ' +
    'GLOBAL GO GOTO GRANT GREATER GROUP GROUPING HANDLER HASH HAVE HAVING HEAP HIDDEN HOLD HOUR IDENTIFIED IDENTITY IF IGNORE IMMEDIATE ' +
    'IMPORT IN INCLUDING INCLUSIVE INCREMENT INCREMENTAL INDEX INDEXED INDEXES INDICATOR INFINITE INITIALLY INLINE INNER INNTER INOUT INPUT ' +
    'INSENSITIVE INSERT INSTEAD INT INTEGER INTERSECT INTERVAL INTO INVALIDATE IS ISOLATION ITEM ITEMS ITERATE JOIN KEY KEYS LAG LANGUAGE ' +
    'LARGE LAST LATERAL LEAD LEADING LEAVE LEFT LENGTH LESS LEVEL LIKE LIMIT LIMITED LINES LIST LOAD LOCAL LOCALTIME LOCALTIMESTAMP LOCATION ' +
    'LOCATOR LOCK LOCKS LOG LOGED LONG LOOP LOWER MAP MATCH MATERIALIZED MAX MAXLEN MEMBER MERGE METHOD METRICS MIN MINUS MINUTE MISSING MOD ' +
    'MODE MODIFIES MODIFY MODULE MONTH MULTI MULTISET NAME NAMES NATIONAL NATURAL NCHAR NCLOB NEW NEXT NO NONE NOT NULL NULLIF NUMBER NUMERIC ' +
    'OBJECT OF OFFLINE OFFSET OLD ON ONLINE ONLY OPAQUE OPEN OPERATOR OPTION OR ORDER ORDINALITY OTHER OTHERS OUT OUTER OUTPUT OVER OVERLAPS ' +
    'OVERRIDE OWNER PAD PARALLEL PARAMETER PARAMETERS PARTIAL PARTITION PARTITIONED PARTITIONS PATH PERCENT PERCENTILE PERMISSION PERMISSIONS ' +
    'PIPE PIPELINED PLAN POOL POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVATE PRIVILEGES PROCEDURE PROCESSED PROJECT PROJECTION ' +
    'PROPERTY PROVISIONING PUBLIC PUT QUERY QUIT QUORUM RAISE RANDOM RANGE RANK RAW READ READS REAL REBUILD RECORD RECURSIVE REDUCE REF ' +
    'REFERENCE REFERENCES REFERENCING REGEXP REGION REINDEX RELATIVE RELEASE REMAINDER RENAME REPEAT REPLACE REQUEST RESET RESIGNAL RESOURCE ' +
    'RESPONSE RESTORE RESTRICT RESULT RETURN RETURNING RETURNS REVERSE REVOKE RIGHT ROLE ROLES ROLLBACK ROLLUP ROUTINE ROW ROWS RULE RULES ' +
    'SAMPLE SATISFIES SAVE SAVEPOINT SCAN SCHEMA SCOPE SCROLL SEARCH SECOND SECTION SEGMENT SEGMENTS SELECT SELF SEMI SENSITIVE SEPARATE ' +
    'SEQUENCE SERIALIZABLE SESSION SET SETS SHARD SHARE SHARED SHORT SHOW SIGNAL SIMILAR SIZE SKEWED SMALLINT SNAPSHOT SOME SOURCE SPACE ' +
    'SPACES SPARSE SPECIFIC SPECIFICTYPE SPLIT SQL SQLCODE SQLERROR SQLEXCEPTION SQLSTATE SQLWARNING START STATE STATIC STATUS STORAGE STORE ' +
    'STORED STREAM STRING STRUCT STYLE SUB SUBMULTISET SUBPARTITION SUBSTRING SUBTYPE SUM SUPER SYMMETRIC SYNONYM SYSTEM TABLE TABLESAMPLE ' +
    'TEMP TEMPORARY TERMINATED TEXT THAN THEN THROUGHPUT TIME TIMESTAMP TIMEZONE TINYINT TO TOKEN TOTAL TOUCH TRAILING TRANSACTION TRANSFORM ' +
    'TRANSLATE TRANSLATION TREAT TRIGGER TRIM TRUE TRUNCATE TTL TUPLE TYPE UNDER UNDO UNION UNIQUE UNIT UNKNOWN UNLOGGED UNNEST UNPROCESSED ' +
    'UNSIGNED UNTIL UPDATE UPPER URL USAGE USE USER USERS USING UUID VACUUM VALUE VALUED VALUES VARCHAR VARIABLE VARIANCE VARINT VARYING ' +
    'VIEW VIEWS VIRTUAL VOID WAIT WHEN WHENEVER WHERE WHILE WINDOW WITH WITHIN WITHOUT WORK WRAPPED WRITE YEAR ZONE'
  ).split(' '),
);

// ---------------------------------------------------------------------------------------------- trees

/** An attribute: `#name` (resolved through ExpressionAttributeNames) or a plain name. */
interface PathOperand {
  kind: 'path';
  token: string;
}
interface ValueOperand {
  kind: 'value';
  token: string;
}
interface SizeOperand {
  kind: 'size';
  path: PathOperand;
}
type Operand = PathOperand | ValueOperand | SizeOperand;

type Comparator = '=' | '<>' | '<' | '<=' | '>' | '>=';
type ConditionFunction = 'attribute_exists' | 'attribute_not_exists' | 'attribute_type' | 'begins_with' | 'contains';
const CONDITION_FUNCTIONS: Record<ConditionFunction, number> = { attribute_exists: 1, attribute_not_exists: 1, attribute_type: 2, begins_with: 2, contains: 2 };

type Condition =
  | { kind: 'or' | 'and'; left: Condition; right: Condition }
  | { kind: 'not'; condition: Condition }
  | { kind: 'compare'; operator: Comparator; left: Operand; right: Operand }
  | { kind: 'between'; subject: Operand; low: Operand; high: Operand }
  | { kind: 'in'; subject: Operand; list: Operand[] }
  | { kind: 'function'; name: ConditionFunction; args: Operand[] };

/** A parsed expression and the placeholders it refers to (for the defined/unused checks). */
interface Parsed {
  what: ExpressionKind;
  names: Set<string>;
  values: Set<string>;
}
export interface ConditionTree extends Parsed {
  what: 'ConditionExpression';
  condition: Condition;
}

type SetOperand = PathOperand | ValueOperand | { kind: 'if_not_exists'; path: PathOperand; fallback: SetOperand } | { kind: 'list_append'; left: SetOperand; right: SetOperand };
type SetValue = SetOperand | { kind: '+' | '-'; left: SetOperand; right: SetOperand };
type Section = 'SET' | 'REMOVE' | 'ADD' | 'DELETE';

export interface UpdateTree extends Parsed {
  what: 'UpdateExpression';
  set: Array<{ path: PathOperand; value: SetValue }>;
  remove: PathOperand[];
  add: Array<{ path: PathOperand; value: ValueOperand }>;
  delete: Array<{ path: PathOperand; value: ValueOperand }>;
}

// ---------------------------------------------------------------------------------------------- parsing

class Parser {
  private readonly tokens: Token[];
  private at = 0;
  readonly names = new Set<string>();
  readonly values = new Set<string>();

  constructor(
    private readonly source: string,
    private readonly what: ExpressionKind,
  ) {
    if (source.trim() === '') throw validationException(`Invalid ${what}: The expression can not be empty;`);
    this.tokens = tokenize(source, what);
  }

  peek(offset = 0): Token {
    return this.tokens[Math.min(this.at + offset, this.tokens.length - 1)]!;
  }

  next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.at += 1;
    return token;
  }

  get position(): number {
    return this.at;
  }

  rewind(position: number): void {
    this.at = position;
  }

  isWord(keyword: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token.kind === 'word' && token.text.toUpperCase() === keyword;
  }

  isPunct(text: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token.kind === 'punct' && token.text === text;
  }

  expectPunct(text: string): void {
    if (!this.isPunct(text)) throw this.unexpected();
    this.next();
  }

  unexpected(token = this.peek()): SyntaxFailure {
    return syntaxError(this.what, this.source, token.text, token.at);
  }

  invalid(message: string): DynamoDBServiceException {
    return validationException(`Invalid ${this.what}: ${message}`);
  }

  /** A misplaced function: refused like a syntax error (so `(size(#a)) > :n` may still parse another way). */
  misused(name: string): SyntaxFailure {
    return new SyntaxFailure(`Invalid ${this.what}: The function is not allowed to be used this way in an expression; function: ${name}`);
  }

  /** `#name`, `:value` or a plain attribute name (not a reserved word); a nested path is refused. */
  operand(): PathOperand | ValueOperand {
    const token = this.next();
    let operand: PathOperand | ValueOperand;
    if (token.kind === 'name') {
      this.names.add(token.text);
      operand = { kind: 'path', token: token.text };
    } else if (token.kind === 'value') {
      this.values.add(token.text);
      return { kind: 'value', token: token.text };
    } else if (token.kind === 'word' && /^[A-Za-z_]/.test(token.text)) {
      if (RESERVED_WORDS.has(token.text.toUpperCase())) throw this.invalid(`Attribute name is a reserved keyword; reserved keyword: ${token.text}`);
      operand = { kind: 'path', token: token.text };
    } else {
      throw this.unexpected(token);
    }
    if (this.isPunct('.') || this.isPunct('[')) throw cannotEvaluate(`the document path "${this.source}": nested attributes (a.b, a[0]) are not supported by the fake`);
    return operand;
  }

  functionName(): string | undefined {
    return this.peek().kind === 'word' && this.isPunct('(', 1) ? this.peek().text : undefined;
  }

  arguments(parse: () => void): number {
    this.expectPunct('(');
    let count = 0;
    for (;;) {
      parse();
      count += 1;
      if (this.isPunct(',')) {
        this.next();
        continue;
      }
      this.expectPunct(')');
      return count;
    }
  }

  end(): void {
    if (this.peek().kind !== 'end') throw this.unexpected();
  }
}

function parseOrThrow<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof SyntaxFailure) throw validationException(error.message);
    throw error;
  }
}

/** Parses a condition expression (the placeholders are resolved when it is evaluated, so a tree can be cached). */
export function parseCondition(expression: string): ConditionTree {
  return parseOrThrow(() => {
    const p = new Parser(expression, 'ConditionExpression');
    const grouped = new WeakSet<Condition>();

    const or = (): Condition => {
      let left = and();
      while (p.isWord('OR')) {
        p.next();
        left = { kind: 'or', left, right: and() };
      }
      return left;
    };
    const and = (): Condition => {
      let left = not();
      while (p.isWord('AND')) {
        p.next();
        left = { kind: 'and', left, right: not() };
      }
      return left;
    };
    const not = (): Condition => {
      if (!p.isWord('NOT')) return primary();
      p.next();
      return { kind: 'not', condition: not() };
    };
    const primary = (): Condition => {
      if (p.isPunct('(')) {
        // `(condition)`, or a comparison whose first operand is parenthesised: `(#a) = :b`.
        const start = p.position;
        try {
          p.next();
          const inner = or();
          p.expectPunct(')');
          if (grouped.has(inner)) throw p.invalid('The expression has redundant parentheses;');
          grouped.add(inner);
          return inner;
        } catch (error) {
          if (!(error instanceof SyntaxFailure)) throw error;
          p.rewind(start);
        }
      }
      return comparison();
    };
    const operand = (): Operand => {
      if (p.isPunct('(')) {
        p.next();
        const inner = operand();
        p.expectPunct(')');
        return inner;
      }
      const name = p.functionName();
      if (name === undefined) return p.operand();
      if (name !== 'size') throw name in CONDITION_FUNCTIONS ? p.misused(name) : p.invalid(`Invalid function name; function: ${name}`);
      p.next();
      const args: Operand[] = [];
      const count = p.arguments(() => args.push(operand()));
      if (count !== 1) throw p.invalid(`Incorrect number of operands for operator or function; operator or function: size, number of operands: ${count}`);
      const path = args[0]!;
      if (path.kind !== 'path') throw p.invalid('Operator or function requires a document path; operator or function: size');
      return { kind: 'size', path };
    };
    const comparison = (): Condition => {
      const name = p.functionName();
      if (name !== undefined && name !== 'size') {
        if (!(name in CONDITION_FUNCTIONS)) throw p.invalid(`Invalid function name; function: ${name}`);
        const fn = name as ConditionFunction;
        p.next();
        const args: Operand[] = [];
        const count = p.arguments(() => args.push(operand()));
        if (count !== CONDITION_FUNCTIONS[fn]) throw p.invalid(`Incorrect number of operands for operator or function; operator or function: ${fn}, number of operands: ${count}`);
        if ((fn === 'attribute_exists' || fn === 'attribute_not_exists' || fn === 'attribute_type') && args[0]!.kind !== 'path') {
          throw p.invalid(`Operator or function requires a document path; operator or function: ${fn}`);
        }
        const after = p.peek();
        if (after.kind === 'op' || p.isWord('BETWEEN') || p.isWord('IN')) throw p.misused(fn);
        return { kind: 'function', name: fn, args };
      }
      const subject = operand();
      const token = p.peek();
      if (token.kind === 'op' && token.text !== '+' && token.text !== '-') {
        p.next();
        return { kind: 'compare', operator: token.text as Comparator, left: subject, right: operand() };
      }
      if (p.isWord('BETWEEN')) {
        p.next();
        const low = operand();
        if (!p.isWord('AND')) throw p.unexpected();
        p.next();
        return { kind: 'between', subject, low, high: operand() };
      }
      if (p.isWord('IN')) {
        p.next();
        const list: Operand[] = [];
        const count = p.arguments(() => list.push(operand()));
        if (count > 100) throw p.invalid(`The IN operator is provided with too many operands; number of operands: ${count}`);
        return { kind: 'in', subject, list };
      }
      if (subject.kind === 'size') throw p.misused('size');
      throw p.unexpected();
    };

    const condition = or();
    p.end();
    return { what: 'ConditionExpression', condition, names: p.names, values: p.values };
  });
}

const SECTIONS: readonly Section[] = ['SET', 'REMOVE', 'ADD', 'DELETE'];

/** Parses an update expression (SET, REMOVE, ADD, DELETE sections, each at most once, in any order). */
export function parseUpdate(expression: string): UpdateTree {
  return parseOrThrow(() => {
    const p = new Parser(expression, 'UpdateExpression');
    const tree: UpdateTree = { what: 'UpdateExpression', set: [], remove: [], add: [], delete: [], names: p.names, values: p.values };
    const seen = new Set<Section>();
    const atSection = () => SECTIONS.find((s) => p.isWord(s));

    const path = (): PathOperand => {
      const operand = p.operand();
      if (operand.kind !== 'path') throw p.unexpected();
      return operand;
    };
    const setOperand = (): SetOperand => {
      if (p.isPunct('(')) {
        p.next();
        const inner = setOperand();
        p.expectPunct(')');
        return inner;
      }
      const name = p.functionName();
      if (name === undefined) return p.operand();
      if (name !== 'if_not_exists' && name !== 'list_append') throw p.invalid(`Invalid function name; function: ${name}`);
      p.next();
      const args: SetOperand[] = [];
      const count = p.arguments(() => args.push(setOperand()));
      if (count !== 2) throw p.invalid(`Incorrect number of operands for operator or function; operator or function: ${name}, number of operands: ${count}`);
      const [first, second] = args as [SetOperand, SetOperand];
      if (name === 'list_append') return { kind: 'list_append', left: first, right: second };
      if (first.kind !== 'path') throw p.invalid('Operator or function requires a document path; operator or function: if_not_exists');
      return { kind: 'if_not_exists', path: first, fallback: second };
    };
    const setValue = (): SetValue => {
      if (p.isPunct('(')) {
        // `(a + b)` or a parenthesised operand `(a)` (that may go on: `(a) + b`).
        const start = p.position;
        p.next();
        const inner = setValue();
        if (p.isPunct(')') && (inner.kind === '+' || inner.kind === '-')) {
          p.next();
          return inner;
        }
        p.rewind(start);
      }
      const left = setOperand();
      const token = p.peek();
      if (token.kind === 'op' && (token.text === '+' || token.text === '-')) {
        p.next();
        return { kind: token.text, left, right: setOperand() };
      }
      return left;
    };

    do {
      const section = atSection();
      if (section === undefined) throw p.unexpected();
      p.next();
      if (seen.has(section)) throw p.invalid(`The "${section}" section can only be used once in an update expression;`);
      seen.add(section);
      for (;;) {
        const target = path();
        if (section === 'SET') {
          const eq = p.next();
          if (eq.kind !== 'op' || eq.text !== '=') throw p.unexpected(eq);
          tree.set.push({ path: target, value: setValue() });
        } else if (section === 'REMOVE') {
          tree.remove.push(target);
        } else {
          const value = p.operand();
          if (value.kind !== 'value') throw p.unexpected();
          tree[section === 'ADD' ? 'add' : 'delete'].push({ path: target, value });
        }
        if (!p.isPunct(',')) break;
        p.next();
      }
    } while (p.peek().kind !== 'end');
    return tree;
  });
}

/** Parses each distinct expression string once (the lean table's hot path). */
export class ExpressionCache {
  private readonly conditions = new Map<string, ConditionTree>();
  private readonly updates = new Map<string, UpdateTree>();

  condition(expression: string): ConditionTree {
    let tree = this.conditions.get(expression);
    if (!tree) this.conditions.set(expression, (tree = parseCondition(expression)));
    return tree;
  }

  update(expression: string): UpdateTree {
    let tree = this.updates.get(expression);
    if (!tree) this.updates.set(expression, (tree = parseUpdate(expression)));
    return tree;
  }
}

/** Parses afresh every time (conditionHolds/applyUpdate, and tables that do not cache). */
const uncached = { condition: parseCondition, update: parseUpdate };
type Parse = Pick<ExpressionCache, 'condition' | 'update'>;

// ---------------------------------------------------------------------------------------------- placeholders

/** Every placeholder the expression uses is defined (DynamoDB checks this whatever the item). */
function checkDefined(tree: Parsed, names: AttributeNames, values: AttributeValues): void {
  for (const name of tree.names) {
    if (names === undefined || !Object.hasOwn(names, name)) {
      throw validationException(`Invalid ${tree.what}: An expression attribute name used in the document path is not defined; attribute name: ${name}`);
    }
  }
  for (const value of tree.values) {
    if (values === undefined || !Object.hasOwn(values, value) || values[value] === undefined) {
      throw validationException(`Invalid ${tree.what}: An expression attribute value used in expression is not defined; attribute value: ${value}`);
    }
  }
}

/**
 * The request-level checks: ExpressionAttributeNames/Values only with expressions, never empty, each
 * placeholder defined, and none unused by the request's expressions together.
 */
export function checkExpressionAttributes(trees: Parsed[], names: AttributeNames, values: AttributeValues): void {
  for (const [label, map] of [['ExpressionAttributeNames', names], ['ExpressionAttributeValues', values]] as const) {
    if (map === undefined) continue;
    if (trees.length === 0) throw validationException(`${label} can only be specified when using expressions`);
    if (Object.keys(map).length === 0) throw validationException(`${label} must not be empty`);
  }
  for (const tree of trees) checkDefined(tree, names, values);
  for (const [label, map, used] of [
    ['ExpressionAttributeNames', names, (t: Parsed) => t.names],
    ['ExpressionAttributeValues', values, (t: Parsed) => t.values],
  ] as const) {
    const unused = Object.keys(map ?? {}).filter((k) => !trees.some((t) => used(t).has(k)));
    if (unused.length > 0) throw validationException(`Value provided in ${label} unused in expressions: keys: {${unused.join(', ')}}`);
  }
}

function attributeName(path: PathOperand, names: AttributeNames): string {
  return path.token.startsWith('#') ? names![path.token]! : path.token;
}

function attributeOf(item: Item | undefined, name: string): unknown {
  return item !== undefined && Object.hasOwn(item, name) ? item[name] : undefined;
}

// ---------------------------------------------------------------------------------------------- conditions

/** Evaluates a parsed condition against `item` (undefined: the item does not exist, so it has no attributes). */
export function evaluateCondition(tree: ConditionTree, names: AttributeNames, values: AttributeValues, item: Item | undefined): boolean {
  checkDefined(tree, names, values);
  const invalid = (message: string) => validationException(`Invalid ConditionExpression: ${message}`);

  const operandValue = (operand: Operand): unknown => {
    if (operand.kind === 'value') return values![operand.token];
    if (operand.kind === 'path') return attributeOf(item, attributeName(operand, names));
    const value = attributeOf(item, attributeName(operand.path, names));
    if (value === undefined) return undefined;
    switch (typeOf(value)) {
      case 'S':
        if (!isAscii(value as string)) throw cannotEvaluate('size() of a string beyond ASCII (characters or UTF-8 bytes?)');
        return (value as string).length;
      case 'B':
        return (value as Uint8Array).byteLength;
      case 'L':
        return (value as unknown[]).length;
      case 'M':
        return Object.keys(value as Item).length;
      case 'SS':
      case 'NS':
      case 'BS':
        return (value as Set<unknown>).size;
      default:
        return undefined; // size of a number, boolean or null matches nothing
    }
  };
  const constantType = (operand: Operand): ValueType | undefined => (operand.kind === 'value' ? typeOf(values![operand.token]) : undefined);
  const orderable = (operand: Operand, operator: string) => {
    const type = constantType(operand);
    if (type !== undefined && type !== 'N' && type !== 'S' && type !== 'B') throw cannotEvaluate(`${operator} with a ${TYPE_NAMES[type]} value`);
  };

  const holds = (c: Condition): boolean => {
    switch (c.kind) {
      case 'or':
        return holds(c.left) || holds(c.right);
      case 'and':
        return holds(c.left) && holds(c.right);
      case 'not':
        return !holds(c.condition);
      case 'compare': {
        if (c.left.kind === 'path' && c.right.kind === 'path' && attributeName(c.left, names) === attributeName(c.right, names)) {
          throw invalid(`The first operand must be distinct from the remaining operands for this operator or function; operator: ${c.operator}, first operand: [${attributeName(c.left, names)}]`);
        }
        const left = operandValue(c.left);
        const right = operandValue(c.right);
        if (c.operator === '=' || c.operator === '<>') {
          const equal = left !== undefined && right !== undefined && valuesEqual(left, right);
          return c.operator === '=' ? equal : !equal;
        }
        orderable(c.left, c.operator);
        orderable(c.right, c.operator);
        if (left === undefined || right === undefined) return false;
        const order = compareOrdered(left, right, c.operator);
        if (order === undefined) return false;
        return c.operator === '<' ? order < 0 : c.operator === '<=' ? order <= 0 : c.operator === '>' ? order > 0 : order >= 0;
      }
      case 'between': {
        for (const bound of [c.subject, c.low, c.high]) orderable(bound, 'BETWEEN');
        const [low, high] = [operandValue(c.low), operandValue(c.high)];
        if (c.low.kind === 'value' && c.high.kind === 'value') {
          if (typeOf(low) !== typeOf(high)) throw invalid('The BETWEEN operator requires same data type for lower and upper bounds');
          if (compareOrdered(low, high, 'BETWEEN')! > 0) throw invalid('The BETWEEN operator requires upper bound to be greater than or equal to lower bound');
        }
        const subject = operandValue(c.subject);
        if (subject === undefined || low === undefined || high === undefined) return false;
        const fromLow = compareOrdered(subject, low, 'BETWEEN');
        const toHigh = compareOrdered(subject, high, 'BETWEEN');
        return fromLow !== undefined && toHigh !== undefined && fromLow >= 0 && toHigh <= 0;
      }
      case 'in': {
        const subject = operandValue(c.subject);
        return subject !== undefined && c.list.some((candidate) => {
          const value = operandValue(candidate);
          return value !== undefined && valuesEqual(subject, value);
        });
      }
      case 'function':
        return holdsFunction(c.name, c.args);
    }
  };

  const holdsFunction = (name: ConditionFunction, args: Operand[]): boolean => {
    const first = operandValue(args[0]!);
    switch (name) {
      case 'attribute_exists':
        return first !== undefined;
      case 'attribute_not_exists':
        return first === undefined;
      case 'attribute_type': {
        const wanted = operandValue(args[1]!);
        const valid = ['S', 'SS', 'N', 'NS', 'B', 'BS', 'BOOL', 'NULL', 'L', 'M'];
        if (typeof wanted !== 'string' || !valid.includes(wanted)) {
          throw invalid(`Invalid attribute type name found; type: ${String(wanted)}, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}`);
        }
        return first !== undefined && typeOf(first) === wanted;
      }
      case 'begins_with': {
        for (const arg of args) {
          const type = constantType(arg);
          if (type !== undefined && type !== 'S' && type !== 'B') throw invalid(`Incorrect operand type for operator or function; operator or function: begins_with, operand type: ${type}`);
        }
        const prefix = operandValue(args[1]!);
        if (first === undefined || prefix === undefined) return false;
        if (typeof first === 'string' && typeof prefix === 'string') return first.startsWith(prefix);
        if (first instanceof Uint8Array && prefix instanceof Uint8Array) return prefix.byteLength <= first.byteLength && compareBytes(first.subarray(0, prefix.byteLength), prefix) === 0;
        return false;
      }
      case 'contains': {
        const wanted = operandValue(args[1]!);
        if (first === undefined || wanted === undefined) return false;
        const type = typeOf(first);
        const wantedType = typeOf(wanted);
        if (type === 'S') return wantedType === 'S' && (first as string).includes(wanted as string);
        if (type === 'B') return wantedType === 'B' && bytesKey(first as Uint8Array).includes(bytesKey(wanted as Uint8Array));
        if (type === 'SS' || type === 'NS' || type === 'BS') return `${wantedType}S` === type && setKeys(first as Set<unknown>, type).has(type === 'BS' ? bytesKey(wanted as Uint8Array) : wanted);
        if (type === 'L') {
          if (wantedType !== 'S' && wantedType !== 'N' && wantedType !== 'B') throw cannotEvaluate(`contains() of a ${TYPE_NAMES[wantedType]} in a list`);
          return (first as unknown[]).some((element) => valuesEqual(element, wanted));
        }
        return false;
      }
    }
  };

  return holds(tree.condition);
}

/**
 * Whether `expression` holds for `item` (undefined: no such item). Throws a ValidationException for a
 * malformed expression or an undefined placeholder, and `fake DynamoDB cannot evaluate …` for what the
 * fake does not model.
 */
export function conditionHolds(expression: string, names: AttributeNames, values: AttributeValues, item: Item | undefined): boolean {
  return evaluateCondition(parseCondition(expression), names, values, item);
}

// ---------------------------------------------------------------------------------------------- updates

const MISSING_ATTRIBUTE = 'The provided expression refers to an attribute that does not exist in the item';
const WRONG_TYPE = 'An operand in the update expression has an incorrect data type';

/** The attributes an update writes, checked as DynamoDB checks them before it reads the item. */
function updateTargets(tree: UpdateTree, names: AttributeNames, key: Item): string[] {
  const targets = [...tree.set.map((a) => a.path), ...tree.remove, ...tree.add.map((a) => a.path), ...tree.delete.map((a) => a.path)].map((p) => attributeName(p, names));
  const seen = new Set<string>();
  for (const target of targets) {
    if (seen.has(target)) throw validationException(`Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [${target}], path two: [${target}]`);
    seen.add(target);
    if (Object.hasOwn(key, target)) throw validationException(`One or more parameter values were invalid: Cannot update attribute ${target}. This attribute is part of the key`);
  }
  return targets;
}

/**
 * Applies a parsed update to `item` (undefined: no such item, so it starts from `key`) and answers the new
 * item (a new object; `item` is not changed) and the names of the attributes it wrote (for UPDATED_*).
 */
export function applyUpdateTree(tree: UpdateTree, names: AttributeNames, values: AttributeValues, item: Item | undefined, key: Item): { item: Item; updated: string[] } {
  checkDefined(tree, names, values);
  const updated = updateTargets(tree, names, key);
  const invalid = (message: string) => validationException(`Invalid UpdateExpression: ${message}`);

  // Every operand reads the item as it was before this update.
  const read = (operand: SetOperand): unknown => {
    switch (operand.kind) {
      case 'value':
        return values![operand.token];
      case 'path': {
        const value = attributeOf(item, attributeName(operand, names));
        if (value === undefined) throw invalid(MISSING_ATTRIBUTE);
        return value;
      }
      case 'if_not_exists': {
        const value = attributeOf(item, attributeName(operand.path, names));
        return value !== undefined ? value : read(operand.fallback);
      }
      case 'list_append': {
        const left = read(operand.left);
        const right = read(operand.right);
        if (!Array.isArray(left) || !Array.isArray(right)) throw invalid(WRONG_TYPE);
        return [...left, ...right];
      }
    }
  };
  const evaluate = (value: SetValue): unknown => {
    if (!isArithmetic(value)) return read(value);
    const left = read(value.left);
    const right = read(value.right);
    if (typeOf(left) !== 'N' || typeOf(right) !== 'N') throw invalid(WRONG_TYPE);
    return addNumbers(left as number, value.kind === '+' ? (right as number) : -(right as number));
  };

  const writes = tree.set.map(({ path, value }) => [attributeName(path, names), evaluate(value)] as const);
  const next: Item = item === undefined ? { ...key } : { ...item };
  for (const [name, value] of writes) {
    typeOf(value);
    next[name] = value;
  }
  for (const path of tree.remove) delete next[attributeName(path, names)];
  for (const { path, value: operand } of tree.add) {
    const name = attributeName(path, names);
    const value = values![operand.token];
    const type = typeOf(value);
    if (type !== 'N' && type !== 'SS' && type !== 'NS' && type !== 'BS') throw invalid(`Incorrect operand type for operator or function; operator: ADD, operand type: ${TYPE_NAMES[type]}`);
    const existing = attributeOf(item, name);
    if (existing === undefined) {
      next[name] = value;
    } else if (typeOf(existing) !== type) {
      throw invalid(WRONG_TYPE);
    } else if (type === 'N') {
      next[name] = addNumbers(existing as number, value as number);
    } else {
      next[name] = unionSets(existing as Set<unknown>, value as Set<unknown>, type);
    }
  }
  for (const { path, value: operand } of tree.delete) {
    const name = attributeName(path, names);
    const value = values![operand.token];
    const type = typeOf(value);
    if (type !== 'SS' && type !== 'NS' && type !== 'BS') throw invalid(`Incorrect operand type for operator or function; operator: DELETE, operand type: ${TYPE_NAMES[type]}`);
    const existing = attributeOf(item, name);
    if (existing === undefined) continue;
    if (typeOf(existing) !== type) throw invalid(WRONG_TYPE);
    const gone = setKeys(value as Set<unknown>, type);
    const left = [...(existing as Set<unknown>)].filter((e) => !gone.has(type === 'BS' ? bytesKey(e as Uint8Array) : e));
    if (left.length === 0) delete next[name];
    else next[name] = new Set(left);
  }
  return { item: structuredClone(next), updated };
}

function isArithmetic(value: SetValue): value is Extract<SetValue, { kind: '+' | '-' }> {
  return value.kind === '+' || value.kind === '-';
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function unionSets(a: Set<unknown>, b: Set<unknown>, type: ValueType): Set<unknown> {
  const keys = setKeys(a, type);
  const union = new Set(a);
  for (const element of b) if (!keys.has(type === 'BS' ? bytesKey(element as Uint8Array) : element)) union.add(element);
  return union;
}

/**
 * The item `expression` makes of `item` (undefined: no such item, so it is created from `key`), as a new
 * object. Throws a ValidationException as DynamoDB does (undefined placeholders, `+` on a missing
 * attribute, a key attribute updated, two actions on one attribute, a wrong operand type).
 */
export function applyUpdate(expression: string, names: AttributeNames, values: AttributeValues, item: Item | undefined, key: Item): Item {
  return applyUpdateTree(parseUpdate(expression), names, values, item, key).item;
}

// ---------------------------------------------------------------------------------------------- write commands

/** The fields of PutItem/UpdateItem/DeleteItem/ConditionCheck the fakes read (Document client shapes). */
export interface WriteInput {
  Key?: Item | undefined;
  Item?: Item | undefined;
  ConditionExpression?: string | undefined;
  UpdateExpression?: string | undefined;
  ExpressionAttributeNames?: Record<string, string> | undefined;
  ExpressionAttributeValues?: Record<string, unknown> | undefined;
  ReturnValues?: string | undefined;
  ReturnValuesOnConditionCheckFailure?: string | undefined;
}

export interface WriteOutcome {
  /** The item after the write; undefined when it was deleted (or never existed). */
  item: Item | undefined;
  /** `Attributes` for the reply, per ReturnValues. */
  attributes?: Item | undefined;
}

function refuseUnmodelled(input: WriteInput): void {
  const raw = input as Record<string, unknown>;
  for (const legacy of ['Expected', 'ConditionalOperator', 'AttributeUpdates']) {
    if (raw[legacy] !== undefined) throw cannotEvaluate(`the legacy parameter ${legacy} (use expressions)`);
  }
  if (input.ReturnValuesOnConditionCheckFailure !== undefined && input.ReturnValuesOnConditionCheckFailure !== 'NONE') {
    throw cannotEvaluate(`ReturnValuesOnConditionCheckFailure ${input.ReturnValuesOnConditionCheckFailure}`);
  }
}

/** A Key of exactly pk and sk, non-empty strings. */
export function checkKey(key: Item | undefined): Item {
  if (key === undefined || Object.keys(key).length !== KEY_ATTRIBUTES.length || !KEY_ATTRIBUTES.every((k) => typeof key[k] === 'string')) {
    throw validationException('The provided key element does not match the schema');
  }
  for (const k of KEY_ATTRIBUTES) {
    if (key[k] === '') throw validationException(`One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${k}`);
  }
  return key;
}

/** The key of a whole item (Put): pk and sk present, non-empty strings. */
export function keyOfItem(item: Item | undefined): Item {
  if (item === undefined) throw validationException('1 validation error detected: Value null at \'item\' failed to satisfy constraint: Member must not be null');
  for (const k of KEY_ATTRIBUTES) {
    if (item[k] === undefined) throw validationException(`One or more parameter values were invalid: Missing the key ${k} in the item`);
    if (typeof item[k] !== 'string') throw validationException(`One or more parameter values were invalid: Type mismatch for key ${k} expected: S actual: ${typeOf(item[k])}`);
    if (item[k] === '') throw validationException(`One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${k}`);
  }
  return { pk: item.pk, sk: item.sk };
}

function returnValues(input: WriteInput, allowed: readonly string[]): string {
  const wanted = input.ReturnValues ?? 'NONE';
  if (!allowed.includes(wanted)) throw validationException('Return values set to invalid value');
  return wanted;
}

function conditionalCheckFailed(): ConditionalCheckFailedException {
  return new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata });
}

/** The parsed expressions of one request, with the request-level placeholder checks done. */
function prepare(input: WriteInput, parse: Parse, update: boolean): { condition?: ConditionTree; update?: UpdateTree } {
  refuseUnmodelled(input);
  const condition = input.ConditionExpression !== undefined ? parse.condition(input.ConditionExpression) : undefined;
  if (update && input.UpdateExpression === undefined) throw cannotEvaluate('an UpdateItem without an UpdateExpression');
  const updateTree = update ? parse.update(input.UpdateExpression!) : undefined;
  const trees = [condition, updateTree].filter((t): t is ConditionTree | UpdateTree => t !== undefined);
  if (trees.length > 0 || input.ExpressionAttributeNames !== undefined || input.ExpressionAttributeValues !== undefined) {
    checkExpressionAttributes(trees, input.ExpressionAttributeNames, input.ExpressionAttributeValues);
  }
  return { condition, update: updateTree };
}

function checkCondition(tree: ConditionTree | undefined, input: WriteInput, existing: Item | undefined): void {
  if (tree && !evaluateCondition(tree, input.ExpressionAttributeNames, input.ExpressionAttributeValues, existing)) throw conditionalCheckFailed();
}

function pick(item: Item | undefined, attributes: string[]): Item | undefined {
  if (item === undefined) return undefined;
  const picked: Item = {};
  for (const name of attributes) if (Object.hasOwn(item, name)) picked[name] = item[name];
  return Object.keys(picked).length > 0 ? picked : undefined;
}

/** PutItem on the item `existing` (undefined: none) at the Item's key. */
export function putItem(input: WriteInput, existing: Item | undefined, parse: Parse = uncached): WriteOutcome {
  keyOfItem(input.Item);
  const wanted = returnValues(input, ['NONE', 'ALL_OLD']);
  const { condition } = prepare(input, parse, false);
  checkCondition(condition, input, existing);
  return { item: structuredClone(input.Item!), attributes: wanted === 'ALL_OLD' && existing ? structuredClone(existing) : undefined };
}

/** DeleteItem of `existing` (undefined: none) at Key. */
export function deleteItem(input: WriteInput, existing: Item | undefined, parse: Parse = uncached): WriteOutcome {
  checkKey(input.Key);
  const wanted = returnValues(input, ['NONE', 'ALL_OLD']);
  const { condition } = prepare(input, parse, false);
  checkCondition(condition, input, existing);
  return { item: undefined, attributes: wanted === 'ALL_OLD' && existing ? structuredClone(existing) : undefined };
}

/** UpdateItem of `existing` (undefined: none, so it is created from Key) with ReturnValues. */
export function updateItem(input: WriteInput, existing: Item | undefined, parse: Parse = uncached): WriteOutcome {
  const key = checkKey(input.Key);
  const wanted = returnValues(input, ['NONE', 'ALL_OLD', 'ALL_NEW', 'UPDATED_OLD', 'UPDATED_NEW']);
  const trees = prepare(input, parse, true);
  checkCondition(trees.condition, input, existing);
  const { item, updated } = applyUpdateTree(trees.update!, input.ExpressionAttributeNames, input.ExpressionAttributeValues, existing, key);
  const attributes =
    wanted === 'ALL_NEW' ? item
    : wanted === 'ALL_OLD' ? existing
    : wanted === 'UPDATED_NEW' ? pick(item, updated)
    : wanted === 'UPDATED_OLD' ? pick(existing, updated)
    : undefined;
  return { item, attributes: attributes && structuredClone(attributes) };
}

/** One TransactItems entry in the Document client's shape. */
export interface TransactItem {
  Put?: WriteInput | undefined;
  Update?: WriteInput | undefined;
  Delete?: WriteInput | undefined;
  ConditionCheck?: WriteInput | undefined;
}

/**
 * TransactWriteItems: every condition is checked against the items as they were before it, and either
 * every write is answered (key and new item, undefined for a delete) or none: a failed condition (or an
 * update that cannot apply to its item) throws TransactionCanceledException with one reason per entry.
 */
export function transactWriteItems(transactItems: TransactItem[] | undefined, read: (key: Item) => Item | undefined, parse: Parse = uncached): Array<{ key: Item; item: Item | undefined }> {
  const entries = transactItems ?? [];
  if (entries.length === 0 || entries.length > 100) {
    throw validationException(`1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100 and greater than or equal to 1`);
  }
  const operations = entries.map((entry) => {
    const kinds = (['Put', 'Update', 'Delete', 'ConditionCheck'] as const).filter((k) => entry[k] !== undefined);
    if (kinds.length !== 1) throw validationException('TransactItems can only contain one of Check, Put, Update or Delete');
    const kind = kinds[0]!;
    const input = entry[kind]!;
    const key = kind === 'Put' ? keyOfItem(input.Item) : checkKey(input.Key);
    if (kind === 'ConditionCheck' && input.ConditionExpression === undefined) throw validationException('ConditionExpression must be specified for ConditionCheck');
    if (input.ReturnValues !== undefined) throw validationException('ReturnValues is not supported in TransactWriteItems');
    // The request-level checks (syntax, placeholders, key attributes) refuse the whole request.
    const trees = prepare(input, parse, kind === 'Update');
    if (trees.update) updateTargets(trees.update, input.ExpressionAttributeNames, key);
    return { kind, input, key, trees, identity: `${String(key.pk)}\u0000${String(key.sk)}` };
  });
  if (new Set(operations.map((o) => o.identity)).size !== operations.length) {
    throw validationException('Transaction request cannot include multiple operations on one item');
  }

  const reasons: Array<{ Code: string; Message?: string }> = [];
  const writes: Array<{ key: Item; item: Item | undefined }> = [];
  for (const { kind, input, key, trees } of operations) {
    const existing = read(key);
    try {
      checkCondition(trees.condition, input, existing);
      if (kind === 'Put') writes.push({ key, item: structuredClone(input.Item!) });
      if (kind === 'Delete') writes.push({ key, item: undefined });
      if (kind === 'Update') writes.push({ key, item: applyUpdateTree(trees.update!, input.ExpressionAttributeNames, input.ExpressionAttributeValues, existing, key).item });
      reasons.push({ Code: 'None' });
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) reasons.push({ Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' });
      else if (isValidationException(error)) reasons.push({ Code: 'ValidationError', Message: error.message });
      else throw error;
    }
  }
  if (reasons.some((r) => r.Code !== 'None')) {
    const message = `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`;
    throw new TransactionCanceledException({ message, Message: message, CancellationReasons: reasons, $metadata });
  }
  return writes;
}
