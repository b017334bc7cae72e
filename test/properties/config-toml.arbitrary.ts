/**
 * A fast-check arbitrary for realistic gitlab-runner config.toml documents: the TEXT, plus a model of
 * what it holds and where the target runner's editable lines are, so that properties can say exactly
 * which lines the host updater may touch.
 *
 * Every generated document is valid TOML (checked by a property in update-runner-token.property.test.ts).
 * Small choices (spacing around `=`, trailing comments, blank lines) come from a list of naturals,
 * `noise`, read in order by the renderer: shrinking them towards 0 gives the plainest document.
 */
import fc from 'fast-check';

export const FLAG = 'FF_DISABLE_AUTOMATIC_TOKEN_ROTATION';

export type Eol = '\n' | '\r\n';
export type Quote = '"' | "'";
export type FlagState = 'true' | 'false' | 'absent';
export type SubTable = 'docker' | 'cache' | 'kubernetes' | 'machine';

export type FeatureFlagsModel =
  | { kind: 'none' }
  | { kind: 'table' | 'inline' | 'dotted'; flag: FlagState; others: Array<[string, boolean]> };

export interface RunnerModel {
  name: string;
  /** As written in the file (maybe with a trailing slash). */
  url: string;
  /** Absent on some non-target runners (configs registered before ids were written). */
  id: number | undefined;
  token: string;
  quote: Quote;
  obtainedAt: string | undefined;
  expiresAt: string | undefined;
  executor: string;
  extras: string[];
  subTables: SubTable[];
  featureFlags: FeatureFlagsModel;
  /** Index among the sub-tables where a [runners.feature_flags] table goes. */
  flagsTableAt: number;
  commentedToken: boolean;
}

/** 0-based line numbers of the target runner's lines the updater may edit. */
export interface TargetLines {
  token: number;
  obtainedAt: number | undefined;
  expiresAt: number | undefined;
  /** The `FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = …` line (table or dotted form). */
  flag: number | undefined;
  /** The `feature_flags = { … }` line. */
  inlineFlags: number | undefined;
}

export interface GeneratedConfig {
  text: string;
  /** The lines without their terminators. */
  lines: string[];
  eol: Eol;
  finalNewline: boolean;
  globals: string[];
  sessionServer: boolean;
  runners: RunnerModel[];
  /** Index of the target runner in document order; its (normalised url, id) is unique. */
  target: number;
  targetId: number;
  /** What to pass as --url (the target's url, with or without a trailing slash). */
  urlArg: string;
  targetLines: TargetLines;
}

export const normUrl = (url: string): string => url.replace(/\/+$/, '');

/** Lines of the target that must change and how many lines the updater adds, for a given run. */
export function expectedEdits(doc: GeneratedConfig, withExpiresAt: boolean): { changed: number[]; added: number } {
  const runner = doc.runners[doc.target];
  if (runner === undefined) throw new Error('no target runner');
  const t = doc.targetLines;
  const changed = [t.token];
  if (t.obtainedAt !== undefined) changed.push(t.obtainedAt);
  if (t.expiresAt !== undefined && withExpiresAt) changed.push(t.expiresAt);
  const ff = runner.featureFlags;
  let added = 0;
  if (ff.kind === 'none') added = 2;
  else if (ff.kind === 'inline') {
    if (ff.flag !== 'true' && t.inlineFlags !== undefined) changed.push(t.inlineFlags);
  } else if (ff.flag === 'false' && t.flag !== undefined) changed.push(t.flag);
  else if (ff.flag === 'absent') added = 1;
  return { changed: changed.sort((a, b) => a - b), added };
}

// ---------------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------------
const TOKEN_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'.split('');
const tokenBody = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: min, maxLength: max });

/** glrt- tokens (with and without the newer t1_/t3_ routing prefix) and legacy 20-character tokens. */
export const oldTokenArb: fc.Arbitrary<string> = fc.oneof(
  tokenBody(20, 26).map((b) => `glrt-${b}`),
  fc.tuple(fc.constantFrom('t1_', 't2_', 't3_'), tokenBody(20, 24)).map(([p, b]) => `glrt-${p}${b}`),
  tokenBody(20, 20),
);

/** Bare TOML offset date-times in the shapes gitlab-runner and people write. */
const dateArb: fc.Arbitrary<string> = fc.oneof(
  fc.constant('0001-01-01T00:00:00Z'),
  fc
    .tuple(fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-12-31T23:59:59Z'), noInvalidDate: true }), fc.constantFrom('Z', 'ms', '+02:00', '-05:30'))
    .map(([d, style]) => {
      const iso = d.toISOString();
      if (style === 'ms') return iso;
      const whole = iso.replace(/\.\d{3}Z$/, '');
      return style === 'Z' ? `${whole}Z` : `${whole}${style}`;
    }),
);

const URL_BASES = ['https://gitlab.example.com', 'https://gitlab.com', 'http://gitlab.lan:8080', 'https://git.example.org/gitlab'] as const;
const IDS = [7, 8, 42, 4242, 31002] as const;
const EXTRAS = ['limit', 'request_concurrency', 'environment', 'environment-multiline', 'builds_dir', 'pre_build_script'] as const;
const OTHER_FLAGS = ['FF_USE_FASTZIP', 'FF_SCRIPT_SECTIONS', 'FF_NETWORK_PER_BUILD', 'FF_USE_POWERSHELL_PATH_RESOLVER'] as const;
const GLOBALS = [
  'concurrent = 4',
  'check_interval = 0',
  'log_level = "info"',
  "log_format = 'runner'",
  'shutdown_timeout = 0',
  'connection_max_age = "15m0s"',
  'listen_address = ":9252"',
] as const;

const featureFlagsArb: fc.Arbitrary<FeatureFlagsModel> = fc.oneof(
  fc.constant<FeatureFlagsModel>({ kind: 'none' }),
  fc
    .record({
      kind: fc.constantFrom('table' as const, 'inline' as const, 'dotted' as const),
      flag: fc.constantFrom<FlagState>('true', 'false', 'absent'),
      others: fc.uniqueArray(fc.tuple(fc.constantFrom(...OTHER_FLAGS), fc.boolean()), { maxLength: 3, selector: ([k]) => k }),
    })
    // Dotted flags with no key at all are no flags: the updater then adds a table, as for 'none'.
    .map((ff): FeatureFlagsModel => (ff.kind === 'dotted' && ff.flag === 'absent' && ff.others.length === 0 ? { kind: 'none' } : ff)),
);

const runnerArb: fc.Arbitrary<RunnerModel> = fc
  .record({
    name: fc.constantFrom('docker-builder', 'shell', 'k8s', 'deployer', 'autoscaler', 'windows', 'runner "quoted"'),
    urlBase: fc.constantFrom(...URL_BASES),
    trailingSlash: fc.boolean(),
    id: fc.option(fc.constantFrom(...IDS), { nil: undefined, freq: 6 }),
    token: oldTokenArb,
    quote: fc.constantFrom<Quote>('"', "'"),
    obtainedAt: fc.option(dateArb, { nil: undefined }),
    expiresAt: fc.option(dateArb, { nil: undefined }),
    executor: fc.constantFrom('docker', 'shell', 'kubernetes', 'docker+machine', 'docker-autoscaler'),
    extras: fc.subarray([...EXTRAS]),
    subTables: fc.shuffledSubarray<SubTable>(['docker', 'cache', 'kubernetes', 'machine']),
    featureFlags: featureFlagsArb,
    flagsTableAt: fc.nat(4),
    commentedToken: fc.boolean(),
  })
  .map(({ urlBase, trailingSlash, ...rest }): RunnerModel => ({ ...rest, url: trailingSlash ? `${urlBase}/` : urlBase }));

interface Spec {
  globals: string[];
  sessionServer: boolean;
  headerComment: boolean;
  runners: RunnerModel[];
  target: number;
  urlArgSlash: boolean;
  eol: Eol;
  finalNewline: boolean;
  indent: string;
  subIndentExtra: string;
  noise: number[];
}

const specArb: fc.Arbitrary<Spec> = fc.record({
  globals: fc.shuffledSubarray([...GLOBALS]),
  sessionServer: fc.boolean(),
  headerComment: fc.boolean(),
  runners: fc.array(runnerArb, { minLength: 1, maxLength: 5 }),
  target: fc.nat(),
  urlArgSlash: fc.boolean(),
  eol: fc.constantFrom<Eol>('\n', '\r\n'),
  finalNewline: fc.boolean(),
  indent: fc.constantFrom('  ', '', '    ', '\t'),
  subIndentExtra: fc.constantFrom('  ', ''),
  noise: fc.array(fc.nat(11), { minLength: 24, maxLength: 24 }),
});

/** Makes the target's (normalised url, id) unique and gives it an id. */
function withUniqueTarget(spec: Spec): Spec {
  const target = spec.target % spec.runners.length;
  const runners = spec.runners.map((r) => ({ ...r }));
  const t = runners[target] as RunnerModel;
  const id = t.id ?? 4242;
  t.id = id;
  runners.forEach((r, j) => {
    if (j !== target && r.id === id && normUrl(r.url) === normUrl(t.url)) r.id = id + 1000 * (j + 1);
  });
  return { ...spec, runners, target };
}

/** Reads the noise list in order; 0 always means the plainest choice. */
class Noise {
  private i = 0;
  constructor(private readonly values: number[]) {}
  pick<T>(options: readonly T[]): T {
    const v = this.values.length === 0 ? 0 : (this.values[this.i++ % this.values.length] ?? 0);
    return options[v % options.length] as T;
  }
}

const EQ = [' = ', '=', '  =  ', '\t=\t', ' =\t', '= ', ' =  '] as const;
const TRAILING = ['', '', '', ' # managed by ansible', '  # see the wiki', '\t#set by hand'] as const;
const BLANKS = [1, 0, 2, 1] as const;
const basic = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

// ---------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------
function render(spec: Spec): GeneratedConfig {
  const lines: string[] = [];
  const n = new Noise(spec.noise);
  const push = (line: string): number => lines.push(line) - 1;
  const blank = (): void => {
    for (let k = n.pick(BLANKS); k > 0; k--) push('');
  };
  const kv = (indent: string, key: string, value: string, trailing = true): number =>
    push(`${indent}${key}${n.pick(EQ)}${value}${trailing ? n.pick(TRAILING) : ''}`);

  if (spec.headerComment) {
    push('# Managed by the token rotator: token fields are rewritten automatically.');
    push('#[[runners]] commented-out tables never count');
  }
  for (const g of spec.globals) {
    const [key, value] = g.split(' = ') as [string, string];
    kv('', key, value);
  }
  if (spec.sessionServer) {
    blank();
    push(`[session_server]${n.pick(TRAILING)}`);
    kv(spec.indent, 'session_timeout', '1800');
    if (n.pick([false, true])) kv(spec.indent, 'listen_address', '"0.0.0.0:8093"');
  }

  const ind = spec.indent;
  const sub = `${spec.indent}${spec.subIndentExtra}`;
  const sub2 = `${sub}  `;
  let targetLines: TargetLines | undefined;

  spec.runners.forEach((r, index) => {
    const q = (s: string): string => `${r.quote}${s}${r.quote}`;
    const lineOf: Partial<Record<'token' | 'obtainedAt' | 'expiresAt' | 'flag' | 'inlineFlags', number>> = {};
    blank();
    if (n.pick([false, false, true])) push('# ---------------------------------------------------------------');
    push(`[[runners]]${n.pick(TRAILING)}`);
    kv(ind, 'name', basic(r.name));
    if (r.extras.includes('limit')) kv(ind, 'limit', '10');
    kv(ind, 'url', q(r.url));
    if (r.id !== undefined) kv(ind, 'id', String(r.id));
    if (r.commentedToken) push(`${ind}# token = "glrt-COMMENTED-${index}-xxxxxxxxxxxx"`);
    lineOf.token = kv(ind, 'token', q(r.token));
    if (r.obtainedAt !== undefined) lineOf.obtainedAt = kv(ind, 'token_obtained_at', r.obtainedAt);
    if (r.expiresAt !== undefined) lineOf.expiresAt = kv(ind, 'token_expires_at', r.expiresAt);
    kv(ind, 'executor', basic(r.executor));
    if (r.extras.includes('request_concurrency')) kv(ind, 'request_concurrency', '2');
    if (r.extras.includes('builds_dir')) kv(ind, 'builds_dir', '"C:\\\\GitLab-Runner\\\\builds"');
    if (r.extras.includes('pre_build_script')) kv(ind, 'pre_build_script', "'echo \"[[runners]] token = x\"'");
    if (r.extras.includes('environment')) kv(ind, 'environment', `["GIT_DEPTH=10", 'DOCKER_TLS_CERTDIR=/certs']`);
    if (r.extras.includes('environment-multiline')) {
      push(`${ind}variables${n.pick(EQ)}[`);
      push(`${ind}  "DOCKER_DRIVER=overlay2", # storage driver`);
      push(`${ind}  # "FF_X=1",`);
      push(`${ind}  'DOCKER_TLS_CERTDIR=',`);
      push(`${ind}]`);
    }
    const ff = r.featureFlags;
    const flagEntries = (): Array<[string, string]> => {
      if (ff.kind === 'none') return [];
      const entries: Array<[string, string]> = ff.others.map(([k, v]) => [k, String(v)]);
      if (ff.flag !== 'absent') entries.splice(n.pick([entries.length, 0, 1]) % (entries.length + 1), 0, [FLAG, ff.flag]);
      return entries;
    };
    if (ff.kind === 'inline') {
      const entries = flagEntries();
      const tight = n.pick([false, true]);
      const body = entries.map(([k, v]) => (tight ? `${k}=${v}` : `${k} = ${v}`)).join(tight ? ',' : ', ');
      lineOf.inlineFlags = kv(ind, 'feature_flags', entries.length === 0 ? '{}' : tight ? `{${body}}` : `{ ${body} }`);
    } else if (ff.kind === 'dotted') {
      for (const [k, v] of flagEntries()) {
        const at = kv(ind, `feature_flags.${k}`, v);
        if (k === FLAG) lineOf.flag = at;
      }
    }

    const flagsTable = (): void => {
      if (ff.kind !== 'table') return;
      push(`${sub}[runners.feature_flags]${n.pick(TRAILING)}`);
      for (const [k, v] of flagEntries()) {
        const at = kv(`${sub}  `, k, v);
        if (k === FLAG) lineOf.flag = at;
      }
    };
    const flagsAt = r.flagsTableAt % (r.subTables.length + 1);
    r.subTables.forEach((t, k) => {
      if (k === flagsAt) flagsTable();
      if (t === 'docker') {
        push(`${sub}[runners.docker]${n.pick(TRAILING)}`);
        kv(sub2, 'image', '"alpine:3.20"');
        kv(sub2, 'privileged', n.pick(['false', 'true']));
        if (n.pick([false, true])) {
          push(`${sub2}volumes = [`);
          push(`${sub2}  "/cache", # build cache`);
          push(`${sub2}  # "/var/run/docker.sock:/var/run/docker.sock",`);
          push(`${sub2}  "/certs/client",`);
          push(`${sub2}]`);
        } else kv(sub2, 'volumes', '["/cache", "/certs/client"]');
        kv(sub2, 'dns', "['10.0.0.2']");
        kv(sub2, 'shm_size', '0');
      } else if (t === 'cache') {
        push(`${sub}[runners.cache]`);
        kv(sub2, 'Type', '"s3"');
        kv(sub2, 'Shared', 'true');
        kv(sub2, 'MaxUploadedArchiveSize', '0');
        if (n.pick([true, false])) {
          push(`${sub2}[runners.cache.s3]`);
          kv(`${sub2}  `, 'ServerAddress', '"s3.amazonaws.com"');
          kv(`${sub2}  `, 'BucketName', '"runner-cache"');
          kv(`${sub2}  `, 'AuthenticationType', "'iam'");
        }
      } else if (t === 'kubernetes') {
        push(`${sub}[runners.kubernetes]`);
        kv(sub2, 'namespace', '"gitlab-runner"');
        kv(sub2, 'poll_timeout', '600');
        const volumes = n.pick([1, 2]);
        for (let v = 0; v < volumes; v++) {
          push(`${sub2}[[runners.kubernetes.volumes.host_path]]`);
          kv(`${sub2}  `, 'name', `"vol-${v}"`);
          kv(`${sub2}  `, 'mount_path', `"/mnt/${v}"`);
          kv(`${sub2}  `, 'read_only', 'true');
        }
      } else {
        push(`${sub}[runners.machine]`);
        kv(sub2, 'IdleCount', '2');
        push(`${sub2}MachineOptions = [`);
        push(`${sub2}  "amazonec2-region=us-east-1",`);
        push(`${sub2}  "amazonec2-instance-type=m5.large"`);
        push(`${sub2}]`);
      }
    });
    if (flagsAt === r.subTables.length) flagsTable();
    if (n.pick([false, false, true])) push(`${ind}# end of runner ${index}`);

    if (index === spec.target) {
      targetLines = {
        token: lineOf.token,
        obtainedAt: lineOf.obtainedAt,
        expiresAt: lineOf.expiresAt,
        flag: lineOf.flag,
        inlineFlags: lineOf.inlineFlags,
      };
    }
  });
  if (n.pick([false, false, true])) {
    push('');
    push('# Metrics endpoint settings below were added by the platform team.');
  }

  if (targetLines === undefined) throw new Error('the target runner was not rendered');
  const target = spec.runners[spec.target] as RunnerModel;
  const text = lines.join(spec.eol) + (spec.finalNewline ? spec.eol : '');
  return {
    text,
    lines,
    eol: spec.eol,
    finalNewline: spec.finalNewline,
    globals: spec.globals,
    sessionServer: spec.sessionServer,
    runners: spec.runners,
    target: spec.target,
    targetId: target.id as number,
    urlArg: spec.urlArgSlash ? `${normUrl(target.url)}/` : normUrl(target.url),
    targetLines,
  };
}

/** A realistic config.toml (valid TOML) with one target runner whose (url, id) is unique. */
export const configTomlArb: fc.Arbitrary<GeneratedConfig> = specArb.map((spec) => render(withUniqueTarget(spec)));

// ---------------------------------------------------------------------------------------------------
// Corruptions: a valid document plus one mutation.
// ---------------------------------------------------------------------------------------------------
export type MutationKind =
  | 'drop-closing-quote'
  | 'drop-bracket'
  | 'garbage-line'
  | 'duplicate-target-key'
  | 'drop-equals'
  | 'bad-scalar'
  | 'duplicate-target-subtable';

/** Lines no TOML parser accepts. */
export const GARBAGE_LINES = [
  'garbage',
  '= "value"',
  'key =',
  '[',
  '[[runners]',
  '[runners.docker',
  'key = "unterminated',
  "key = 'unterminated",
  '}',
  ']',
  'key = value with spaces',
  'a = 1 2',
  'x = tru',
  '[[runners]] trailing',
  'key = """never closed',
  'token = "a" "b"',
  'x = [1, 2',
  'x = {a = 1',
] as const;

/** Values that look like scalars but are not valid TOML. */
export const BAD_SCALARS = ['tru', 'yes', '01', '1__0', '1_', '+-1', '0x', '1e', '2024-13-01T00:00:00Z', '2024-02-30', '25:00:00', '"\\q"', '"\\u12"', '[1,,2]', '{a=1 b=2}', '{a=1,}', '"a" # ok', 'nan0'] as const;

export interface Corruption {
  kind: MutationKind;
  /** 0-based line that was changed or inserted. */
  line: number;
  text: string;
  detail: string;
}

function splitEol(doc: GeneratedConfig, lines: string[]): string {
  return lines.join(doc.eol) + (doc.finalNewline ? doc.eol : '');
}

const isCommentOrBlank = (line: string): boolean => /^\s*(#|$)/.test(line);

/** Lines (0-based) of the target runner: from its [[runners]] header to the next [[runners]] header. */
export function targetRange(doc: GeneratedConfig): [number, number] {
  const headers = doc.lines.flatMap((l, i) => (/^\[\[runners\]\]/.test(l) ? [i] : []));
  const start = headers[doc.target] as number;
  const end = headers[doc.target + 1] ?? doc.lines.length;
  return [start, end];
}

/** Applies one mutation; undefined when the document offers no place for it. */
export function corrupt(doc: GeneratedConfig, kind: MutationKind, pick: number, choice: number): Corruption | undefined {
  const lines = [...doc.lines];
  const choose = <T>(items: T[]): T | undefined => (items.length === 0 ? undefined : items[pick % items.length]);
  const done = (line: number, detail: string): Corruption => ({ kind, line, text: splitEol(doc, lines), detail });
  switch (kind) {
    case 'drop-closing-quote': {
      const i = choose(lines.flatMap((l, k) => (!isCommentOrBlank(l) && /["']/.test(l.replace(/#[^"']*$/, '')) ? [k] : [])));
      if (i === undefined) return undefined;
      const l = lines[i] as string;
      const code = l.replace(/#[^"']*$/, '');
      const at = Math.max(code.lastIndexOf('"'), code.lastIndexOf("'"));
      lines[i] = l.slice(0, at) + l.slice(at + 1);
      return done(i, `removed the quote at column ${at + 1}`);
    }
    case 'drop-bracket': {
      const spots = lines.flatMap((l, k) => (isCommentOrBlank(l) ? [] : [...l.replace(/#[^"']*$/, '')].flatMap((c, col) => (c === '[' || c === ']' ? [[k, col] as const] : []))));
      const spot = choose(spots);
      if (spot === undefined) return undefined;
      const [i, col] = spot;
      const l = lines[i] as string;
      lines[i] = l.slice(0, col) + l.slice(col + 1);
      return done(i, `removed "${l[col]}" at column ${col + 1}`);
    }
    case 'garbage-line': {
      const i = pick % (lines.length + 1);
      const g = GARBAGE_LINES[choice % GARBAGE_LINES.length] as string;
      lines.splice(i, 0, g);
      return done(i, `inserted ${JSON.stringify(g)}`);
    }
    case 'duplicate-target-key': {
      const [start, end] = targetRange(doc);
      // Keys of the target's main table (before its first sub-table header).
      const main: number[] = [];
      for (let k = start + 1; k < end && !/^\s*\[/.test(lines[k] as string); k++) if (/^\s*[A-Za-z_"'.-]+[^=]*=/.test(lines[k] as string) && !/\[\s*$/.test(lines[k] as string)) main.push(k);
      const i = choose(main);
      if (i === undefined) return undefined;
      lines.splice(i + 1 + (choice % 2), 0, lines[i] as string);
      return done(i + 1 + (choice % 2), `duplicated line ${i + 1}`);
    }
    case 'drop-equals': {
      const i = choose(lines.flatMap((l, k) => (!isCommentOrBlank(l) && !/^\s*\[/.test(l) && /^[^"'#]*=/.test(l) ? [k] : [])));
      if (i === undefined) return undefined;
      const l = lines[i] as string;
      lines[i] = l.replace('=', ' ');
      return done(i, 'removed the "="');
    }
    case 'bad-scalar': {
      const [start, end] = targetRange(doc);
      const i = start + 1 + (pick % Math.max(1, end - start - 1));
      const s = BAD_SCALARS[choice % BAD_SCALARS.length] as string;
      lines.splice(Math.min(i, lines.length), 0, `${doc.lines[start + 1]?.match(/^\s*/)?.[0] ?? ''}bad_value = ${s}`);
      return done(Math.min(i, lines.length), `inserted bad_value = ${s}`);
    }
    case 'duplicate-target-subtable': {
      const [start, end] = targetRange(doc);
      const headers: number[] = [];
      for (let k = start + 1; k < end; k++) if (/^\s*\[runners\.[^\]]*\]\s*(#.*)?$/.test(lines[k] as string)) headers.push(k);
      const i = choose(headers);
      if (i === undefined) return undefined;
      lines.splice(end, 0, (lines[i] as string).replace(/#.*$/, ''), `${doc.lines[start + 1]?.match(/^\s*/)?.[0] ?? ''}  extra_key = 1`);
      return done(end, `repeated the header of line ${i + 1} at the end of the target runner`);
    }
  }
}

export const corruptionArb: fc.Arbitrary<{ doc: GeneratedConfig; corruption: Corruption }> = fc
  .tuple(
    configTomlArb,
    fc.constantFrom<MutationKind>('drop-closing-quote', 'drop-bracket', 'garbage-line', 'duplicate-target-key', 'drop-equals', 'bad-scalar', 'duplicate-target-subtable'),
    fc.nat(),
    fc.nat(),
  )
  .map(([doc, kind, pick, choice]) => ({ doc, corruption: corrupt(doc, kind, pick, choice) }))
  .filter((x): x is { doc: GeneratedConfig; corruption: Corruption } => x.corruption !== undefined);
