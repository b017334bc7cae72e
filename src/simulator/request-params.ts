/**
 * Request parameters as Grape sees them: the query string merged with a JSON or form-encoded body
 * (the body wins), read through small typed accessors that answer GitLab's 400 replies.
 */
import type { IncomingMessage } from 'node:http';
import { badParam, type Reply } from './replies.ts';

export type ParamValue = string | number | boolean | null | ParamValue[] | { [key: string]: ParamValue };
export type Params = Record<string, ParamValue | undefined>;

/** Thrown by the accessors; the dispatcher turns it into its reply. */
export class ParamError extends Error {
  readonly reply: Reply;
  constructor(reply: Reply) {
    super('bad request parameter');
    this.name = 'ParamError';
    this.reply = reply;
  }
}

const MAX_BODY_BYTES = 1024 * 1024;

/** Reads the whole body (bounded). Rejects with ParamError(413) when it is too large. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) reject(new ParamError({ status: 413, body: { message: '413 Request Entity Too Large' } }));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** Query + body → one parameter map. Throws ParamError(400) for a body that cannot be parsed. */
export function parseParams(query: URLSearchParams, rawBody: string, contentType: string | undefined): Params {
  const params: Params = fromForm(query);
  if (rawBody.trim() === '') return params;
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const looksJson = type === 'application/json' || type.endsWith('+json') || (type === '' && /^\s*[{[]/.test(rawBody));
  if (!looksJson) return Object.assign(params, fromForm(new URLSearchParams(rawBody)));
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawBody);
  } catch {
    throw new ParamError({ status: 400, body: { error: 'body is not valid JSON' } });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ParamError({ status: 400, body: { error: 'body must be a JSON object' } });
  }
  return Object.assign(params, parsed as Params);
}

/** Rack's rules, the useful part: `key[]=a&key[]=b` is an array, otherwise the last value wins. */
function fromForm(search: URLSearchParams): Params {
  const params: Params = {};
  for (const [rawKey, value] of search) {
    if (rawKey.endsWith('[]')) {
      const key = rawKey.slice(0, -2);
      const existing = params[key];
      if (Array.isArray(existing)) existing.push(value);
      else params[key] = [value];
    } else {
      params[rawKey] = value;
    }
  }
  return params;
}

/** A string parameter; numbers are accepted as their decimal text. Empty counts as given. */
export function optionalString(params: Params, name: string): string | undefined {
  const value = params[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ParamError(badParam(name, 'is invalid'));
}

export function requiredString(params: Params, name: string): string {
  const value = optionalString(params, name);
  if (value === undefined) throw new ParamError(badParam(name, 'is missing'));
  return value;
}

export function optionalBoolean(params: Params, name: string): boolean | undefined {
  const value = params[name];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  const text = String(value).toLowerCase();
  if (['true', '1', 't', 'yes', 'y'].includes(text)) return true;
  if (['false', '0', 'f', 'no', 'n'].includes(text)) return false;
  throw new ParamError(badParam(name, 'is invalid'));
}

export function optionalInteger(params: Params, name: string): number | undefined {
  const value = params[name];
  if (value === undefined || value === null || value === '') return undefined;
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number)) throw new ParamError(badParam(name, 'is invalid'));
  return number;
}

export function optionalEnum<T extends string>(params: Params, name: string, values: readonly T[]): T | undefined {
  const value = optionalString(params, name);
  if (value === undefined) return undefined;
  if (!(values as readonly string[]).includes(value)) throw new ParamError(badParam(name, 'does not have a valid value'));
  return value as T;
}

/** `tag_list` as GitLab takes it: an array, or a comma-separated string. */
export function optionalList(params: Params, name: string): string[] | undefined {
  const value = params[name];
  if (value === undefined || value === null) return undefined;
  const items = Array.isArray(value) ? value.map((item) => String(item)) : String(value).split(',');
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

/** An object parameter such as gitlab-runner's `info`; anything else reads as absent. */
export function optionalObject(params: Params, name: string): Record<string, ParamValue> | undefined {
  const value = params[name];
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}
