import { InvalidInputError } from '../core/errors.ts';
import { validateExpiryPolicy } from '../core/expiry-policy.ts';
import type { ExpiryPolicy, ReloadMode, RotationStrategy } from '../core/types.ts';
import { MANAGED_SECRET_TAG_KEY, type AwsManagedRunner } from './aws-fleet-config.ts';

/**
 * The runner registry is the secrets' tags: each managed secret carries its runner's record, so the Lambdas
 * read a runner from its secret (DescribeSecret for the rotation hook; ListSecrets, which returns every
 * secret's tags, for the scanner) and no function bundle holds the fleet. The stack writes the tags from
 * the fleet file (CloudFormation updates them when the file changes), so `cdk deploy` stays the
 * declarative path.
 *
 * Secrets Manager tags (API reference, Tag; User Guide "Tagging secrets"): at most 50 per secret, keys up to
 * 128 and values up to 256 characters of letters, digits, spaces and `_ . : / = + - @`. A record uses at most
 * 9 tags plus one per 12 instance ids; the fleet file allows a runner at most 400 instance ids (34 tags),
 * which leaves room for the operator's own tags.
 */
export const RUNNER_TAG = {
  name: MANAGED_SECRET_TAG_KEY,
  url: 'gitlab-runner-rotator:url',
  runnerId: 'gitlab-runner-rotator:runner-id',
  reload: 'gitlab-runner-rotator:reload',
  strategy: 'gitlab-runner-rotator:strategy',
  /** `<rotateAtRemainingShare>/<minDaysBeforeExpiry>/<maxAgeDaysWithoutExpiry>`, e.g. `0.5/7/90`. */
  policy: 'gitlab-runner-rotator:policy',
  configPath: 'gitlab-runner-rotator:config-path',
  hostTagKey: 'gitlab-runner-rotator:host-tag-key',
  hostTagValue: 'gitlab-runner-rotator:host-tag-value',
  /** `…:instances-1`, `…:instances-2`, …: up to INSTANCE_IDS_PER_TAG ids each, separated by spaces. */
  instancesPrefix: 'gitlab-runner-rotator:instances-',
  /** The ABAC key: a host role tagged with the same key and value may read the secret (HostReadPolicy). */
  hostGroup: 'gitlab-runner-rotator:host-group',
} as const;

/** 12 × 19 characters plus 11 spaces = 239, under the 256 of a tag value. */
export const INSTANCE_IDS_PER_TAG = 12;
/** What the tags of one secret can carry (34 instance tags) while leaving the operator 7 of the 50. */
export const MAX_INSTANCE_IDS = 400;

/** The tags that record `runner` on its secret (the host group is the runner's `hostGroup`). */
export function runnerTags(runner: AwsManagedRunner): Record<string, string> {
  const tags: Record<string, string> = {
    [RUNNER_TAG.name]: runner.name,
    [RUNNER_TAG.url]: runner.gitlabUrl,
    [RUNNER_TAG.runnerId]: String(runner.runnerId),
    [RUNNER_TAG.reload]: runner.reload,
    [RUNNER_TAG.strategy]: runner.strategy,
    [RUNNER_TAG.policy]: `${runner.policy.rotateAtRemainingShare}/${runner.policy.minDaysBeforeExpiry}/${runner.policy.maxAgeDaysWithoutExpiry}`,
    [RUNNER_TAG.hostGroup]: runner.hostGroup,
  };
  const hosts = runner.hosts;
  if (hosts.kind === 'config-files') throw new Error(`runner ${runner.name}: config-file hosts belong to the local engine`);
  tags[RUNNER_TAG.configPath] = hosts.configPath;
  if (hosts.kind === 'ec2-tag') {
    tags[RUNNER_TAG.hostTagKey] = hosts.tagKey;
    tags[RUNNER_TAG.hostTagValue] = hosts.tagValue;
  } else {
    for (let i = 0; i < hosts.instanceIds.length; i += INSTANCE_IDS_PER_TAG) {
      tags[`${RUNNER_TAG.instancesPrefix}${i / INSTANCE_IDS_PER_TAG + 1}`] = hosts.instanceIds.slice(i, i + INSTANCE_IDS_PER_TAG).join(' ');
    }
  }
  // Refused here, at synth, rather than by Secrets Manager in the middle of a deploy (which rolls it back).
  for (const [key, value] of Object.entries(tags)) {
    if (!TAG_VALUE.test(value)) {
      throw new InvalidInputError(`runner ${runner.name}: tag ${key}`, `"${value}" cannot be a Secrets Manager tag value (at most 256 letters, digits, spaces and _ . : / = + - @)`);
    }
  }
  return tags;
}

/**
 * A tag value we write: at most 256 characters (Secrets Manager API reference, Tag), of the characters
 * TagResource's reference calls generally allowed ("letters, spaces, and numbers representable in UTF-8, plus
 * + - = . _ : / @"; other services restrict more). The stricter reading: a value Secrets Manager might take
 * but another service would not is refused at synth, not met at deploy.
 */
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

/**
 * The runner a managed secret records, from its tags (as DescribeSecret or ListSecrets return them). A
 * missing or malformed tag is an InvalidInputError naming the secret and the tag: the secret was not made
 * by this stack, or its tags were edited by hand.
 */
export function runnerFromTags(secretName: string, tags: Record<string, string>, rotateEveryDays = 0): AwsManagedRunner {
  const where = (key: string) => `secret ${secretName}: tag ${key}`;
  const tag = (key: string): string => {
    const value = tags[key];
    if (value === undefined || value === '') throw new InvalidInputError(where(key), 'is missing (deploy the stack, or tag the secret as `rotator adopt --aws` does)');
    return value;
  };
  const name = tag(RUNNER_TAG.name);
  const gitlabUrl = tag(RUNNER_TAG.url);
  if (!/^https?:\/\/[^\s/]+/.test(gitlabUrl)) throw new InvalidInputError(where(RUNNER_TAG.url), 'is not an http(s) URL');
  const runnerId = Number(tag(RUNNER_TAG.runnerId));
  if (!Number.isSafeInteger(runnerId) || runnerId <= 0) throw new InvalidInputError(where(RUNNER_TAG.runnerId), 'is not a runner id');
  const reload = oneOf<ReloadMode>(tag(RUNNER_TAG.reload), ['sighup', 'restart', 'none'], where(RUNNER_TAG.reload));
  const strategy = oneOf<RotationStrategy>(tag(RUNNER_TAG.strategy), ['reset', 'replace'], where(RUNNER_TAG.strategy));
  const policyParts = tag(RUNNER_TAG.policy).split('/').map(Number);
  if (policyParts.length !== 3 || policyParts.some((n) => !Number.isFinite(n))) {
    throw new InvalidInputError(where(RUNNER_TAG.policy), 'is not <rotateAtRemainingShare>/<minDaysBeforeExpiry>/<maxAgeDaysWithoutExpiry>');
  }
  const [rotateAtRemainingShare, minDaysBeforeExpiry, maxAgeDaysWithoutExpiry] = policyParts as [number, number, number];
  const policy: ExpiryPolicy = validateExpiryPolicy({ rotateAtRemainingShare, minDaysBeforeExpiry, maxAgeDaysWithoutExpiry }, where(RUNNER_TAG.policy));
  const configPath = tag(RUNNER_TAG.configPath);
  const instanceTags = Object.keys(tags)
    .filter((key) => key.startsWith(RUNNER_TAG.instancesPrefix))
    .sort((a, b) => Number(a.slice(RUNNER_TAG.instancesPrefix.length)) - Number(b.slice(RUNNER_TAG.instancesPrefix.length)));
  let hosts: AwsManagedRunner['hosts'];
  if (tags[RUNNER_TAG.hostTagKey] !== undefined) {
    // An EC2 tag value may be empty (the fleet file allows it), but the tag recording it must be there.
    const tagValue = tags[RUNNER_TAG.hostTagValue];
    if (tagValue === undefined) throw new InvalidInputError(where(RUNNER_TAG.hostTagValue), `is missing beside ${RUNNER_TAG.hostTagKey}`);
    hosts = { kind: 'ec2-tag', tagKey: tag(RUNNER_TAG.hostTagKey), tagValue, configPath };
  } else if (instanceTags.length > 0) {
    const instanceIds = instanceTags.flatMap((key) => (tags[key] ?? '').split(' ').filter(Boolean));
    const bad = instanceIds.find((id) => !/^(i|mi)-[0-9a-f]{8,17}$/.test(id));
    if (bad !== undefined) throw new InvalidInputError(where(RUNNER_TAG.instancesPrefix), `holds "${bad}", which is not an instance id`);
    hosts = { kind: 'ec2-instances', instanceIds, configPath };
  } else {
    throw new InvalidInputError(where(RUNNER_TAG.hostTagKey), `is missing, and so is ${RUNNER_TAG.instancesPrefix}1: the secret names no hosts`);
  }
  return { name, secretId: secretName, gitlabUrl, runnerId, hosts, reload, strategy, policy, rotateEveryDays, hostGroup: tag(RUNNER_TAG.hostGroup) };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], where: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new InvalidInputError(where, `is "${value}", not one of ${allowed.join(', ')}`);
  return value as T;
}
