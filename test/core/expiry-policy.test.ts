import { describe, expect, it } from 'vitest';
import { decideRotation, validateExpiryPolicy } from '../../src/core/expiry-policy.ts';
import { DEFAULT_EXPIRY_POLICY } from '../../src/core/types.ts';

const DAY = 86_400_000;
const now = new Date('2026-11-23T12:00:00Z');
const at = (offsetDays: number) => new Date(now.getTime() + offsetDays * DAY).toISOString();

describe('decideRotation', () => {
  const cases = [
    { name: 'a 30-day token with 20 days left is not due', obtained: -10, expires: 20, due: false, expired: false },
    { name: 'a 30-day token with 14 days left is due (under half its lifetime)', obtained: -16, expires: 14, due: true, expired: false },
    { name: 'a 365-day token with 100 days left is due (under half)', obtained: -265, expires: 100, due: true, expired: false },
    { name: 'a 12-day token with 6.5 days left is not due: the 7-day floor is capped at half the lifetime', obtained: -5.5, expires: 6.5, due: false, expired: false },
    { name: 'a 12-day token with 5.9 days left is due', obtained: -6.1, expires: 5.9, due: true, expired: false },
    { name: 'a 2-hour token is not due a minute after it was issued', obtained: -1 / 1440, expires: 2 / 24 - 1 / 1440, due: false, expired: false },
    { name: 'a 2-hour token is due with 59 minutes left', obtained: -61 / 1440, expires: 59 / 1440, due: true, expired: false },
    { name: 'an expired token is due and marked expired', obtained: -31, expires: -1, due: true, expired: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const decision = decideRotation({ tokenObtainedAt: at(c.obtained), tokenExpiresAt: at(c.expires) }, DEFAULT_EXPIRY_POLICY, now);
      expect(decision.due).toBe(c.due);
      expect(decision.expired).toBe(c.expired);
      expect(decision.daysLeft).toBeCloseTo(c.expires, 5);
      expect(decision.reason.length).toBeGreaterThan(0);
    });
  }

  it('applies the day floor before the share when the share is small', () => {
    const policy = { ...DEFAULT_EXPIRY_POLICY, rotateAtRemainingShare: 0.1 };
    const decision = decideRotation({ tokenObtainedAt: at(-34), tokenExpiresAt: at(6) }, policy, now);
    expect(decision.due).toBe(true);
    expect(decision.reason).toContain('before expiry');
  });

  it('decides by age when GitLab sets no expiry', () => {
    const young = decideRotation({ tokenObtainedAt: at(-89), tokenExpiresAt: null }, DEFAULT_EXPIRY_POLICY, now);
    const old = decideRotation({ tokenObtainedAt: at(-90), tokenExpiresAt: null }, DEFAULT_EXPIRY_POLICY, now);
    expect(young).toMatchObject({ due: false, daysLeft: null });
    expect(old).toMatchObject({ due: true, daysLeft: null, expired: false });
    expect(old.reason).toContain('no expiry set');
  });
});

describe('validateExpiryPolicy', () => {
  it('accepts the defaults', () => {
    expect(validateExpiryPolicy(DEFAULT_EXPIRY_POLICY, 'policy')).toEqual(DEFAULT_EXPIRY_POLICY);
  });

  it.each([
    [{ rotateAtRemainingShare: 0 }, 'policy.rotateAtRemainingShare'],
    [{ rotateAtRemainingShare: 1.5 }, 'policy.rotateAtRemainingShare'],
    [{ minDaysBeforeExpiry: -1 }, 'policy.minDaysBeforeExpiry'],
    [{ maxAgeDaysWithoutExpiry: 0 }, 'policy.maxAgeDaysWithoutExpiry'],
  ])('rejects %o and names the field', (override, field) => {
    expect(() => validateExpiryPolicy({ ...DEFAULT_EXPIRY_POLICY, ...override }, 'policy')).toThrow(field);
  });
});
