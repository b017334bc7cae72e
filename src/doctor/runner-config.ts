/**
 * gitlab-runner's config.toml as the doctor reads it: the [[runners]] tables and the few keys the
 * checks need. Pure (smol-toml parses a string; no I/O). The token value stays in `RunnerTable.token`
 * for the gatherer's GitLab calls; the checks only ever see its kind (see facts.ts).
 */
import { isLegacyRunnerToken } from '../core/migration-plan.ts';
import { parse, TomlError } from 'smol-toml';

export const SELF_ROTATION_FLAG = 'FF_DISABLE_AUTOMATIC_TOKEN_ROTATION';

export interface RunnerTable {
  /** 1-based position among the [[runners]] tables. */
  index: number;
  name: string | null;
  id: number | null;
  url: string | null;
  /** The token itself: only for GitLab calls, never for output. */
  token: string | null;
  /** ISO 8601, or null when absent or gitlab-runner's zero time (0001-01-01: unknown). */
  tokenObtainedAt: string | null;
  tokenExpiresAt: string | null;
  selfRotationDisabled: boolean;
  tlsCaFile: string | null;
}

export type ParsedConfig = { kind: 'parsed'; runners: RunnerTable[] } | { kind: 'unparseable'; reason: string };

/** Parses config.toml text. A TOML error names the line and column and never quotes the text (it may hold a token). */
export function parseRunnerConfig(text: string): ParsedConfig {
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      // smol-toml's message quotes the offending lines (a token among them): keep only its first line.
      const what = (error.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
      return { kind: 'unparseable', reason: `line ${error.line}, column ${error.column}: ${what}` };
    }
    return { kind: 'unparseable', reason: 'the TOML parser failed' };
  }
  const tables = Array.isArray(document.runners) ? (document.runners as unknown[]) : [];
  const runners = tables.map((table, i) => runnerTable(isRecord(table) ? table : {}, i + 1));
  return { kind: 'parsed', runners };
}

function runnerTable(t: Record<string, unknown>, index: number): RunnerTable {
  const flags = isRecord(t.feature_flags) ? t.feature_flags : {};
  return {
    index,
    name: typeof t.name === 'string' && t.name !== '' ? t.name : null,
    id: typeof t.id === 'number' && Number.isSafeInteger(t.id) && t.id > 0 ? t.id : null,
    url: typeof t.url === 'string' && t.url !== '' ? t.url : null,
    token: typeof t.token === 'string' && t.token.trim() !== '' ? t.token : null,
    tokenObtainedAt: timestamp(t.token_obtained_at),
    tokenExpiresAt: timestamp(t.token_expires_at),
    selfRotationDisabled: flags[SELF_ROTATION_FLAG] === true,
    tlsCaFile: typeof t['tls-ca-file'] === 'string' && t['tls-ca-file'] !== '' ? t['tls-ca-file'] : null,
  };
}

/** A TOML datetime or a quoted ISO string; gitlab-runner's zero time (year 1) means unknown. */
function timestamp(value: unknown): string | null {
  let ms: number;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'string') ms = Date.parse(value);
  else return null;
  if (Number.isNaN(ms) || new Date(ms).getUTCFullYear() < 1970) return null;
  return new Date(ms).toISOString();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** `name (id 42)`, `name`, `id 42`, or `[[runners]] #2`: how findings name a runner. */
export function runnerLabel(r: Pick<RunnerTable, 'index' | 'name' | 'id'>): string {
  if (r.name !== null && r.id !== null) return `${r.name} (id ${r.id})`;
  if (r.name !== null) return r.name;
  if (r.id !== null) return `id ${r.id}`;
  return `[[runners]] #${r.index}`;
}

export type TokenKind = 'missing' | 'glrt' | 'legacy';

/** The same rule as `rotator migrate` (core/migration-plan.ts): `glrt-` anywhere, after an optional instance prefix. */
export function tokenKind(token: string | null): TokenKind {
  if (token === null) return 'missing';
  return isLegacyRunnerToken(token) ? 'legacy' : 'glrt';
}
