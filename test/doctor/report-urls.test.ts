import { describe, expect, it } from 'vitest';
import { withoutCredentials } from '../../src/doctor/gather.ts';

describe('a url in the doctor report', () => {
  it('is shown without the user and password a config url may carry', () => {
    expect(withoutCredentials('https://deploy:s3cretPassw0rd@gitlab.example.com/')).toBe('https://gitlab.example.com/');
    expect(withoutCredentials('https://glpat-ABCDEFGH12345678@gitlab.example.com:8443/git')).toBe('https://gitlab.example.com:8443/git');
  });

  it('is left as it is without credentials, an @ in its path included', () => {
    expect(withoutCredentials('https://gitlab.example.com/group/@me')).toBe('https://gitlab.example.com/group/@me');
  });
});
