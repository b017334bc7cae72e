import { mkdir, readFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { InvalidInputError } from '../../core/errors.ts';

/**
 * JSON state files of the local engine: 0700 folders, 0600 files, written by rename so a reader never
 * sees half a file (write-file-atomic writes a temp file beside the target, fsyncs it and renames it).
 */
export async function ensureStateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** A file's text, or undefined when it does not exist; any other read error is thrown. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * What an operator can do about a state file that is not valid JSON, unless its owner says better. No
 * previous copy is kept (write-file-atomic replaces the file by rename and keeps none; a torn write cannot
 * happen, so a broken file was changed from outside: a disk fault, a hand edit, a restore gone wrong).
 */
export const BROKEN_STATE_FILE_REMEDY = 'no copy of it is kept; move it aside (or remove it) and the rotator starts this record afresh, without what it held (rotation history, alert state, a migration request)';

/**
 * A JSON state file, or undefined when it does not exist. A file that is not valid JSON throws
 * InvalidInputError naming the file and `remedy`: what the operator can do about it.
 */
export async function readJsonFile<T>(path: string, remedy: string = BROKEN_STATE_FILE_REMEDY): Promise<T | undefined> {
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    // No cause: JSON.parse's message quotes the text near the error, and a secret file holds tokens.
    throw new InvalidInputError(path, `state file is not valid JSON: ${remedy}`);
  }
}

export async function writeJsonFile(path: string, data: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, fsync: true });
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Secret ids become file names: letters, digits, '.', '_' and '-' only. */
export function checkSecretId(secretId: string): string {
  if (!SAFE_NAME.test(secretId) || secretId.includes('..')) {
    throw new InvalidInputError(`secret id "${secretId}"`, 'use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  return secretId;
}
