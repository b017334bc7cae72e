import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { matchesEventPattern, rotationOutcomePattern, type EventPattern } from '../../src/config/rotation-outcome-pattern.ts';

const readEvent = (name: string) => JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const failed = readEvent('rotation-failed.json');
const abandoned = readEvent('rotation-abandoned.json');
const succeeded = readEvent('rotation-succeeded.json');

/** The managed-secret ARN prefix of the sample events' account and region, with the default secretPrefix. */
const PREFIX = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/';

/** A copy of `event` whose detail is changed by `patch`. */
function withDetail(event: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  return { ...event, detail: { ...(event.detail as Record<string, unknown>), ...patch } };
}

describe('rotationOutcomePattern', () => {
  const pattern = rotationOutcomePattern(PREFIX);

  it('selects RotationFailed and RotationAbandoned from Secrets Manager by event name and secret ARN prefix, and nothing else', () => {
    expect(pattern).toEqual({
      source: ['aws.secretsmanager'],
      detail: { eventName: ['RotationFailed', 'RotationAbandoned'], additionalEventData: { SecretId: [{ prefix: PREFIX }] } },
    });
    expect(Object.keys(pattern)).not.toContain('detail-type');
  });

  it('matches the sample RotationFailed and RotationAbandoned events of a managed secret', () => {
    expect(matchesEventPattern(pattern, failed)).toBe(true);
    expect(matchesEventPattern(pattern, abandoned)).toBe(true);
  });

  it('misses RotationSucceeded', () => {
    expect(matchesEventPattern(pattern, succeeded)).toBe(false);
  });

  it('misses a RotationFailed of a secret outside the prefix, of another account, or with no secret id', () => {
    const outside = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:database/password-Xy12Ab';
    expect(matchesEventPattern(pattern, withDetail(failed, { additionalEventData: { SecretId: outside } }))).toBe(false);
    const otherAccount = 'arn:aws:secretsmanager:eu-west-1:999999999999:secret:gitlab-runner-rotator/docker-builders-Xy12Ab';
    expect(matchesEventPattern(pattern, withDetail(failed, { additionalEventData: { SecretId: otherAccount } }))).toBe(false);
    expect(matchesEventPattern(pattern, withDetail(failed, { additionalEventData: {} }))).toBe(false);
    expect(matchesEventPattern(pattern, withDetail(failed, { additionalEventData: null }))).toBe(false);
  });

  it('matches whatever the detail-type says, since it is not part of the pattern', () => {
    expect(matchesEventPattern(pattern, { ...failed, 'detail-type': 'AWS API Call via CloudTrail' })).toBe(true);
  });

  it('misses the same event from another source', () => {
    expect(matchesEventPattern(pattern, { ...failed, source: 'custom.secretsmanager' })).toBe(false);
  });
});

describe('matchesEventPattern', () => {
  it.each<[string, EventPattern, unknown, boolean]>([
    ['an exact string', { a: ['x'] }, { a: 'x' }, true],
    ['another string', { a: ['x'] }, { a: 'y' }, false],
    ['one of several values', { a: ['x', 'y'] }, { a: 'y' }, true],
    ['a number, strictly', { a: [5] }, { a: '5' }, false],
    ['a boolean and null', { a: [true], b: [null] }, { a: true, b: null }, true],
    ['a prefix', { a: [{ prefix: 'ab' }] }, { a: 'abc' }, true],
    ['a prefix on a non-string', { a: [{ prefix: '1' }] }, { a: 12 }, false],
    ['a prefix that is longer than the value', { a: [{ prefix: 'abcd' }] }, { a: 'abc' }, false],
    ['any element of an event array', { a: ['x'] }, { a: ['w', 'x'] }, true],
    ['no element of an event array', { a: ['x'] }, { a: ['w', 'y'] }, false],
    ['a nested object', { a: { b: ['x'] } }, { a: { b: 'x', c: 1 } }, true],
    ['a nested object where the event has a string', { a: { b: ['x'] } }, { a: 'x' }, false],
    ['an object in an event array', { a: { b: ['x'] } }, { a: [{ b: 'y' }, { b: 'x' }] }, true],
    ['a key missing from the event', { a: ['x'], b: ['y'] }, { a: 'x' }, false],
    ['a key missing from the event, even for null', { a: [null] }, {}, false],
    ['an event that is not an object', { a: ['x'] }, 'x', false],
    ['the empty pattern', {}, { a: 'x' }, true],
  ])('judges %s', (_name, pattern, event, expected) => {
    expect(matchesEventPattern(pattern, event)).toBe(expected);
  });

  it('refuses the operators it does not implement, an empty value list and a non-pattern value instead of guessing', () => {
    expect(() => matchesEventPattern({ a: [{ 'anything-but': 'x' } as never] }, { a: 'y' })).toThrow(/only exact values and \{ prefix \}/);
    expect(() => matchesEventPattern({ a: [{ prefix: 'x', suffix: 'y' } as never] }, { a: 'xy' })).toThrow(TypeError);
    expect(() => matchesEventPattern({ a: [] }, { a: 'x' })).toThrow(/lists no value/);
    expect(() => matchesEventPattern({ a: 'x' } as never, { a: 'x' })).toThrow(/array of values or a nested pattern/);
  });
});
