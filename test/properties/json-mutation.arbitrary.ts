/**
 * Mutations of valid JSON inputs for the parsing properties: drop, rename or retype exactly one field
 * (an object key or an array element), anywhere in the tree. The mutated path is kept, formatted the
 * way config-schema.ts formats zod paths (`runners[0].hosts[1].config`), so a property can check that
 * the error names it.
 */
import fc from 'fast-check';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type MutationOp = 'drop' | 'rename' | 'retype';
export type PathPart = string | number;

export interface Mutated<T> {
  original: T;
  value: Json;
  op: MutationOp;
  /** Path of the mutated field. */
  path: PathPart[];
  /** For a rename: the path under its new name. */
  renamedPath: PathPart[] | undefined;
}

/** Every path to a field (object key or array element) in the tree, parents before children. */
export function pathsOf(value: Json, prefix: PathPart[] = []): PathPart[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...pathsOf(v, [...prefix, i])]);
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
  return [];
}

const kindOf = (v: Json): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** A value of another JSON type than `v`. */
function otherType(v: Json, candidate: Json): Json {
  if (kindOf(candidate) !== kindOf(v)) return candidate;
  const fallback: Record<string, Json> = { null: false, array: {}, object: [], string: 0, number: '0', boolean: 'true' };
  return fallback[kindOf(v)] ?? null;
}

function renamed(key: string, how: number): string {
  const variants = [`${key}X`, key.toLowerCase() === key ? key.toUpperCase() : key.toLowerCase(), key.replace(/([a-z])([A-Z])/, '$1_$2').toLowerCase(), `_${key}`];
  const name = variants[how % variants.length] as string;
  return name === key ? `${key}_` : name;
}

/** Applies one mutation at `path`; `replacement` is used (retyped if needed) by retype. */
export function mutateAt(value: Json, path: PathPart[], op: MutationOp, replacement: Json, how: number): Json {
  const copy = structuredClone(value);
  const parentPath = path.slice(0, -1);
  const last = path.at(-1) as PathPart;
  let parent: Json = copy;
  for (const part of parentPath) parent = (parent as Record<string, Json>)[part as string] as Json;
  if (Array.isArray(parent)) {
    const i = last as number;
    if (op === 'drop') parent.splice(i, 1);
    else parent[i] = otherType(parent[i] as Json, replacement);
  } else {
    const obj = parent as Record<string, Json>;
    const key = last as string;
    const old = obj[key] as Json;
    if (op === 'drop') delete obj[key];
    else if (op === 'retype') obj[key] = otherType(old, replacement);
    else {
      // Keeps the key order: rebuilds the object with the new name in the old place.
      const entries = Object.entries(obj).map(([k, v]): [string, Json] => (k === key ? [renamed(key, how), v] : [k, v]));
      for (const k of Object.keys(obj)) delete obj[k];
      for (const [k, v] of entries) obj[k] = v;
    }
  }
  return copy;
}

/** One valid input with one field dropped, renamed or retyped. */
export function mutatedArb<T extends Json>(valid: fc.Arbitrary<T>): fc.Arbitrary<Mutated<T>> {
  return fc
    .tuple(valid, fc.nat(), fc.constantFrom<MutationOp>('drop', 'rename', 'retype'), fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>, fc.nat(3))
    .filter(([v]) => pathsOf(v).length > 0)
    .map(([original, pick, op, replacement, how]) => {
      const paths = pathsOf(original);
      const path = paths[pick % paths.length] as PathPart[];
      // Array elements are not renamed: rename means retype there.
      const effective: MutationOp = op === 'rename' && typeof path.at(-1) === 'number' ? 'retype' : op;
      const renamedPath = effective === 'rename' ? [...path.slice(0, -1), renamed(String(path.at(-1)), how)] : undefined;
      return { original, value: mutateAt(original, path, effective, replacement, how), op: effective, path, renamedPath };
    });
}

/** The path as config-schema.ts prints zod paths: `runners[0].hosts[1].config`. */
export function formatPath(path: PathPart[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${part}`)).join('');
}
