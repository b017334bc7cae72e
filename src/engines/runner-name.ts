import { secretNameFromId } from '../config/aws-fleet-config.ts';
import { RUNNER_TAG } from '../config/runner-tags.ts';

/**
 * A runner's name for logs and alerts where only its secret is at hand: the secret's runner tag when its
 * tags were read, else the secret's name (from a name or an ARN) without the fleet's `secretPrefix`, since
 * the stack names each secret `<secretPrefix><runner name>`. A secret outside the prefix keeps its name.
 */
export function runnerNameOfSecret(secretId: string, secretPrefix: string, tags: Record<string, string> = {}): string {
  const tagged = tags[RUNNER_TAG.name];
  if (tagged) return tagged;
  const name = secretNameFromId(secretId);
  return secretPrefix !== '' && name.startsWith(secretPrefix) && name.length > secretPrefix.length ? name.slice(secretPrefix.length) : name;
}
