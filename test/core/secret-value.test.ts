import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/errors.ts';
import { parseSecretValue, serializeSecretValue } from '../../src/core/secret-value.ts';

const token = 'glrt-SecretValueTestToken0001';
const value = { runnerId: 7, gitlabUrl: 'https://gitlab.example.com', token, tokenExpiresAt: '2027-01-01T00:00:00.000Z', tokenObtainedAt: '2026-11-01T00:00:00.000Z' };

describe('secret values', () => {
  it('round-trips through the snake_case JSON a host can read', () => {
    const raw = serializeSecretValue(value);
    expect(JSON.parse(raw)).toEqual({ runner_id: 7, url: 'https://gitlab.example.com', token, token_expires_at: '2027-01-01T00:00:00.000Z', token_obtained_at: '2026-11-01T00:00:00.000Z' });
    expect(parseSecretValue(raw, 'runner-a')).toEqual(value);
  });

  it.each([
    ['not JSON', `{"token":"${token}"`, 'not JSON'],
    ['a missing runner id', JSON.stringify({ url: 'https://g', token, token_obtained_at: '2026-01-01T00:00:00Z' }), 'runner_id'],
    ['a url that is not http(s)', JSON.stringify({ runner_id: 1, url: 'gitlab', token, token_obtained_at: '2026-01-01T00:00:00Z' }), 'url'],
    ['a token with whitespace', JSON.stringify({ runner_id: 1, url: 'https://g', token: `${token} x`, token_obtained_at: '2026-01-01T00:00:00Z' }), 'token'],
    ['a bad expiry', JSON.stringify({ runner_id: 1, url: 'https://g', token, token_expires_at: 'soon', token_obtained_at: '2026-01-01T00:00:00Z' }), 'token_expires_at'],
  ])('rejects %s with an error that names the field and never the token', (_name, raw, field) => {
    let caught: unknown;
    try {
      parseSecretValue(raw, 'runner-a AWSCURRENT');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    const message = (caught as Error).message;
    expect(message).toContain('runner-a AWSCURRENT');
    expect(message).toContain(field);
    expect(message).not.toContain(token);
  });
});
