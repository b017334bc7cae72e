import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'smol-toml';
import { InvalidInputError } from '../core/errors.ts';
import { serializeSecretValue } from '../core/secret-value.ts';
import type { ManagedRunner } from '../core/types.ts';
import type { LocalEngine } from '../engines/local-engine.ts';

export interface AdoptedToken {
  token: string;
  tokenExpiresAt: string | null;
  /** From config.toml's token_obtained_at when gitlab-runner wrote one; else the time of adoption. */
  tokenObtainedAt: string | null;
  source: string;
}

/**
 * Finds a runner's current token: from a token file when given, else from the first host's config.toml
 * (the `[[runners]]` table with the runner's url and id). Errors name the file, never the token.
 */
export async function findCurrentToken(runner: ManagedRunner, tokenFile: string | undefined): Promise<AdoptedToken> {
  if (tokenFile !== undefined) {
    const token = (await readFile(tokenFile, 'utf8')).trim();
    if (token === '' || /\s/.test(token)) throw new InvalidInputError(tokenFile, 'token file must hold one runner token on one line');
    return { token, tokenExpiresAt: null, tokenObtainedAt: null, source: tokenFile };
  }
  const host = runner.hosts.kind === 'config-files' ? runner.hosts.files[0] : undefined;
  if (!host) throw new InvalidInputError(`runner ${runner.name}`, 'has no config file on this machine to read the token from; pass --token-file');
  let document: Record<string, unknown>;
  try {
    document = parse(await readFile(host.configPath, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidInputError(host.configPath, `cannot read runner config (${(error as Error).message.split('\n')[0]})`);
  }
  const tables = Array.isArray(document.runners) ? (document.runners as Record<string, unknown>[]) : [];
  const sameUrl = (url: unknown) => typeof url === 'string' && url.replace(/\/+$/, '') === runner.gitlabUrl;
  const matches = tables.filter((t) => sameUrl(t.url) && Number(t.id) === runner.runnerId);
  if (matches.length > 1) throw new InvalidInputError(host.configPath, `more than one [[runners]] table with url ${runner.gitlabUrl} and id ${runner.runnerId}; pass --token-file instead`);
  if (matches.length === 0) {
    // Most often the fleet file's runnerId is not the id gitlab-runner wrote: name the ids that are there.
    const ids = tables.filter((t) => sameUrl(t.url)).map((t) => Number(t.id)).filter((id) => Number.isSafeInteger(id) && id > 0);
    const there = ids.length === 0 ? `none has url ${runner.gitlabUrl}` : `runner${ids.length === 1 ? '' : 's'} ${ids.join(', ')} ${ids.length === 1 ? 'has' : 'have'} url ${runner.gitlabUrl}`;
    const fix = ids.length === 0 ? 'check gitlabUrl in the fleet file, or pass --token-file' : `set runnerId of "${runner.name}" in the fleet file to the right one (or pass --runner-id ${ids[0]}), or pass --token-file`;
    throw new InvalidInputError(host.configPath, `no [[runners]] table with url ${runner.gitlabUrl} and id ${runner.runnerId} (${there}): ${fix}`);
  }
  const table = matches[0] as Record<string, unknown>;
  if (typeof table.token !== 'string' || table.token === '') throw new InvalidInputError(host.configPath, `runner ${runner.runnerId} has no token`);
  return { token: table.token, tokenExpiresAt: timeOf(table.token_expires_at), tokenObtainedAt: timeOf(table.token_obtained_at), source: host.configPath };
}

/** gitlab-runner writes 0001-01-01T00:00:00Z where a time is unknown (a token without expiry). */
function timeOf(value: unknown): string | null {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1971) return null;
  return date.toISOString();
}

/** Stores the runner's existing token as AWSCURRENT: the state a rotation starts from. */
export async function adoptRunner(engine: LocalEngine, runner: ManagedRunner, found: AdoptedToken, now: Date): Promise<string> {
  const versionId = randomUUID();
  const value = serializeSecretValue({
    runnerId: runner.runnerId,
    gitlabUrl: runner.gitlabUrl,
    token: found.token,
    tokenExpiresAt: found.tokenExpiresAt,
    tokenObtainedAt: found.tokenObtainedAt ?? now.toISOString(),
  });
  await engine.store.withRotationLock(runner.secretId, () => engine.store.adoptCurrent(runner.secretId, versionId, value));
  return versionId;
}
