import { InvalidInputError, SecretNotFoundError } from './errors.ts';
import type { SecretStore } from './ports.ts';
import { parseSecretValue } from './secret-value.ts';
import { atRunnerId, type ManagedRunner } from './types.ts';

/**
 * The runner as its secret knows it: after a `replace` rotation or a migration the secret holds another
 * runner id than the fleet file, and what acts on the hosts (adopt, re-push) must use the secret's. The
 * fleet file's runner where the secret has no readable current value yet (not adopted).
 */
export async function runnerAsStored(secrets: Pick<SecretStore, 'getValue'>, runner: ManagedRunner): Promise<ManagedRunner> {
  let raw: string | undefined;
  try {
    raw = await secrets.getValue(runner.secretId, { stage: 'AWSCURRENT' });
  } catch (error) {
    if (error instanceof SecretNotFoundError) return runner;
    throw error;
  }
  if (raw === undefined) return runner;
  try {
    return atRunnerId(runner, parseSecretValue(raw, `${runner.secretId} AWSCURRENT`).runnerId);
  } catch (error) {
    if (error instanceof InvalidInputError) return runner;
    throw error;
  }
}
