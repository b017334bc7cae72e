/**
 * The EventBridge pattern of the rotation outcomes we alert on, and a small offline matcher for it.
 *
 * Secrets Manager reports the end of a rotation as a CloudTrail service event (`detail-type` "AWS Service
 * Event via CloudTrail", `detail.eventType` "AwsServiceEvent") from `aws.secretsmanager`, with
 * `detail.eventName` RotationFailed, RotationAbandoned or RotationSucceeded. Its `resources` is empty and
 * `requestParameters` is null: the secret's ARN sits in `detail.additionalEventData.SecretId`. The pattern
 * matches on the event name, never on detail-type (DESIGN.md, AWS facts).
 */

/** A value an EventBridge pattern compares with: exact values, or `{ prefix }` for strings. */
export type PatternValue = string | number | boolean | null | { prefix: string };

/** An event pattern: each key holds either the values it accepts or a nested pattern. */
export interface EventPattern {
  [key: string]: PatternValue[] | EventPattern;
}

export const ROTATION_OUTCOME_SOURCE = 'aws.secretsmanager';
/** The outcomes that need an operator: a failed step (retried by Secrets Manager) and an abandoned rotation. */
export const ROTATION_FAILURE_EVENT_NAMES = ['RotationFailed', 'RotationAbandoned'] as const;

export interface RotationOutcomePattern extends EventPattern {
  source: string[];
  detail: {
    eventName: string[];
    additionalEventData: { SecretId: Array<{ prefix: string }> };
  };
}

/**
 * RotationFailed and RotationAbandoned of the secrets whose ARN starts with `secretArnPrefix`
 * (`arn:<partition>:secretsmanager:<region>:<account>:secret:<secretPrefix>`: the fleet's managed secrets).
 */
export function rotationOutcomePattern(secretArnPrefix: string): RotationOutcomePattern {
  return {
    source: [ROTATION_OUTCOME_SOURCE],
    detail: {
      eventName: [...ROTATION_FAILURE_EVENT_NAMES],
      additionalEventData: { SecretId: [{ prefix: secretArnPrefix }] },
    },
  };
}

/**
 * Whether `event` matches `pattern`, for the subset of EventBridge pattern syntax this project writes:
 * - a key holding an array matches when the event's value equals one of the array's values (strict
 *   equality: `"5"` does not match `5`), or, for `{ prefix: "…" }`, is a string that starts with it;
 * - a key holding an object matches when the event's value is an object that matches it, key by key;
 * - every key of the pattern must match (AND); the event may have any other keys;
 * - a key missing from the event fails (EventBridge's `exists: false` is not supported);
 * - where the event holds an array, the key matches when any element matches.
 * Any other operator (`anything-but`, `numeric`, `exists`, `suffix`, `wildcard`, `equals-ignore-case`, `$or`),
 * an empty array or a value of another type throws, so that a pattern this function cannot judge never
 * passes or fails a test by accident.
 */
export function matchesEventPattern(pattern: EventPattern, event: unknown): boolean {
  if (!isObject(event)) return false;
  return Object.entries(pattern).every(([key, expected]) => {
    if (!Object.hasOwn(event, key)) return false;
    const actual = event[key];
    if (Array.isArray(expected)) {
      if (expected.length === 0) throw new TypeError(`event pattern: "${key}" lists no value`);
      const values = Array.isArray(actual) ? actual : [actual];
      return values.some((value) => expected.some((candidate) => matchesValue(candidate, value, key)));
    }
    if (!isObject(expected)) throw new TypeError(`event pattern: "${key}" must be an array of values or a nested pattern`);
    const candidates = Array.isArray(actual) ? actual : [actual];
    return candidates.some((value) => matchesEventPattern(expected, value));
  });
}

function matchesValue(candidate: PatternValue, value: unknown, key: string): boolean {
  if (candidate === null || typeof candidate === 'string' || typeof candidate === 'number' || typeof candidate === 'boolean') {
    return value === candidate;
  }
  if (isObject(candidate)) {
    const operators = Object.keys(candidate);
    if (operators.length === 1 && operators[0] === 'prefix' && typeof candidate.prefix === 'string') {
      return typeof value === 'string' && value.startsWith(candidate.prefix);
    }
    throw new TypeError(`event pattern: "${key}" uses ${JSON.stringify(candidate)}; only exact values and { prefix } are supported`);
  }
  throw new TypeError(`event pattern: "${key}" holds ${JSON.stringify(candidate)}, which is not a pattern value`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
