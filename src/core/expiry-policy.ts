import { InvalidInputError } from './errors.ts';
import type { ExpiryPolicy } from './types.ts';

const DAY_MS = 86_400_000;

export interface TokenTimes {
  /** ISO 8601: when the token was issued (or adopted). */
  tokenObtainedAt: string;
  /** ISO 8601 from GitLab, or null where GitLab sets no expiry. */
  tokenExpiresAt: string | null;
}

export interface RotationDecision {
  due: boolean;
  expired: boolean;
  /** Whole and fractional days until expiry; null where the token does not expire. */
  daysLeft: number | null;
  /** One line for operators: why it is (not) due. */
  reason: string;
}

/**
 * Decides whether a runner token is due for rotation.
 *
 * With an expiry: due once the time left is at most `rotateAtRemainingShare` of the lifetime
 * (default 50 %), or at most `minDaysBeforeExpiry` days (default 7), whichever comes first. The day
 * floor is capped at half the lifetime, so that a short-lived token (GitLab allows 2 h) is not due
 * again the moment it is issued.
 *
 * Without an expiry (no `runner_token_expiration_interval` set): due once the token is
 * `maxAgeDaysWithoutExpiry` days old (default 90).
 */
export function decideRotation(times: TokenTimes, policy: ExpiryPolicy, now: Date): RotationDecision {
  const obtained = Date.parse(times.tokenObtainedAt);
  if (times.tokenExpiresAt === null) {
    const ageDays = (now.getTime() - obtained) / DAY_MS;
    const due = ageDays >= policy.maxAgeDaysWithoutExpiry;
    return {
      due,
      expired: false,
      daysLeft: null,
      reason: `no expiry set; token is ${formatDays(ageDays)} old (rotate at ${policy.maxAgeDaysWithoutExpiry} d)`,
    };
  }
  const expires = Date.parse(times.tokenExpiresAt);
  const leftMs = expires - now.getTime();
  const daysLeft = leftMs / DAY_MS;
  if (leftMs <= 0) {
    return { due: true, expired: true, daysLeft, reason: `expired ${formatDays(-daysLeft)} ago` };
  }
  const lifetimeMs = Math.max(expires - obtained, 0);
  const shareThresholdMs = policy.rotateAtRemainingShare * lifetimeMs;
  const floorMs = Math.min(policy.minDaysBeforeExpiry * DAY_MS, lifetimeMs / 2);
  if (leftMs <= floorMs && floorMs >= shareThresholdMs) {
    return { due: true, expired: false, daysLeft, reason: `${formatDays(daysLeft)} left (rotate at ${formatDays(floorMs / DAY_MS)} before expiry)` };
  }
  if (leftMs <= shareThresholdMs) {
    return { due: true, expired: false, daysLeft, reason: `${percent(leftMs, lifetimeMs)} of the lifetime left (rotate at ${percent(shareThresholdMs, lifetimeMs)})` };
  }
  const thresholdMs = Math.max(shareThresholdMs, floorMs);
  return { due: false, expired: false, daysLeft, reason: `${formatDays(daysLeft)} left; due in ${formatDays((leftMs - thresholdMs) / DAY_MS)}` };
}

/** Throws InvalidInputError naming the field when a policy is out of range. */
export function validateExpiryPolicy(policy: ExpiryPolicy, where: string): ExpiryPolicy {
  const share = policy.rotateAtRemainingShare;
  if (!(share > 0 && share < 1)) {
    throw new InvalidInputError(`${where}.rotateAtRemainingShare`, `must be between 0 and 1 (exclusive), got ${share}`);
  }
  if (!(policy.minDaysBeforeExpiry >= 0)) {
    throw new InvalidInputError(`${where}.minDaysBeforeExpiry`, `must be 0 or more days, got ${policy.minDaysBeforeExpiry}`);
  }
  if (!(policy.maxAgeDaysWithoutExpiry > 0)) {
    throw new InvalidInputError(`${where}.maxAgeDaysWithoutExpiry`, `must be more than 0 days, got ${policy.maxAgeDaysWithoutExpiry}`);
  }
  return policy;
}

export function formatDays(days: number): string {
  if (Math.abs(days) < 1) return `${Math.round(days * 24 * 10) / 10} h`;
  return `${Math.round(days * 10) / 10} d`;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${Math.round((part / whole) * 100)} %` : '0 %';
}
