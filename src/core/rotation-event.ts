import { InvalidInputError } from './errors.ts';
import { ROTATION_STEPS } from './types.ts';
import type { RotationStep } from './types.ts';

/** What a Secrets Manager rotation outcome (a CloudTrail service event through EventBridge) says. */
export interface RotationOutcome {
  eventName: string;
  secretId: string;
  at: Date;
}

/** The outcome in an EventBridge event from aws.secretsmanager, or undefined when the event is not one. */
export function parseRotationOutcomeEvent(event: unknown, now: Date): RotationOutcome | undefined {
  const { detail, time } = (event ?? {}) as { detail?: { eventName?: unknown; eventTime?: unknown; additionalEventData?: { SecretId?: unknown } }; time?: unknown };
  const secretId = detail?.additionalEventData?.SecretId;
  if (typeof detail?.eventName !== 'string' || typeof secretId !== 'string') return undefined;
  const stamp = [detail.eventTime, time].find((t): t is string => typeof t === 'string' && !Number.isNaN(Date.parse(t)));
  const at = stamp === undefined ? now : new Date(stamp);
  return { eventName: detail.eventName, secretId, at };
}

export interface RotationEventInput {
  step: RotationStep;
  secretId: string;
  versionId: string;
}

/**
 * Checks the event Secrets Manager sends a rotation hook: {Step, SecretId, ClientRequestToken}. Anything
 * else is refused with the field named, before any call is made.
 */
export function parseRotationEvent(event: unknown): RotationEventInput {
  if (typeof event !== 'object' || event === null) throw new InvalidInputError('rotation event', 'is not an object');
  const e = event as Record<string, unknown>;
  const step = e.Step;
  if (typeof step !== 'string' || !(ROTATION_STEPS as readonly string[]).includes(step)) {
    throw new InvalidInputError('rotation event: Step', `must be one of ${ROTATION_STEPS.join(', ')}, got ${typeof step === 'string' ? JSON.stringify(step) : typeof step}`);
  }
  const secretId = e.SecretId;
  if (typeof secretId !== 'string' || secretId === '') throw new InvalidInputError('rotation event: SecretId', 'must be a secret ARN or name');
  const token = e.ClientRequestToken;
  if (typeof token !== 'string' || !/^[A-Za-z0-9-]{32,64}$/.test(token)) {
    throw new InvalidInputError('rotation event: ClientRequestToken', 'must be the 32-64 character version id Secrets Manager sends');
  }
  return { step: step as RotationStep, secretId, versionId: token };
}
