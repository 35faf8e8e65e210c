import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';
import { weakSecretReason } from './secret-strength.js';

describe('weakSecretReason', () => {
  it.each([
    ['changemechangemechangemechangeme', /only 7 distinct characters/],
    ['your-jwt-secret-here-please-change-it', /placeholder words/],
    ['replace-with-a-long-random-string', /placeholder words/],
    ['supersecretpasswordsupersecretpass', /placeholder words/],
    ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', /only 1 distinct characters/],
    ['abababababababababababababababab', /only 2 distinct characters/],
    ['Abcd1234!Abcd1234!Abcd1234!Abcd1234!', /9-character pattern repeated/],
    ['0123456789abcdefghijklmnopqrstuvwxyz', /sequence/],
    ['qwertyuiopasdfghjklzxcvbnm1234567890', /sequence/],
    ['mysecretpassword1234567890123456', /sequence/],
    ['admin-token-0123456789abcdef', /sequence/],
    ['admin-token-4444444444444444', /guessable remainder/],
  ])('refuses %j', (value, reason) => {
    expect(weakSecretReason(value)).toMatch(reason);
  });

  it('accepts random values of every usual shape, and the secrets the test harness uses', () => {
    for (let i = 0; i < 2000; i++) {
      for (const v of [
        randomBytes(8).toString('hex'),
        randomBytes(16).toString('hex'),
        randomBytes(32).toString('base64url'),
        randomBytes(24).toString('base64'),
      ]) {
        expect(weakSecretReason(v), v).toBeNull();
      }
    }
    expect(weakSecretReason('test-admin-token-5f0c1e9a7b3d8264')).toBeNull();
    expect(weakSecretReason('e2e-secret-that-is-at-least-32-bytes-long')).toBeNull();
    expect(weakSecretReason('correct-horse-battery-staple-violet-tractor')).toBeNull();
  });
});

describe('weak secrets at boot', () => {
  const errorOf = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    return '';
  };

  it('stop the process with one line naming the variable and the problem, never the value', () => {
    const jwt = 'changeme-changeme-changeme-changeme';
    const message = errorOf({ JWT_SECRET: jwt });
    expect(message).toBe('invalid JWT_SECRET: too weak (only 8 distinct characters); use a random value, e.g. `openssl rand -base64 32`');
    expect(errorOf({ ADMIN_TOKEN: 'my-admin-token-please' })).toMatch(/^invalid ADMIN_TOKEN: too weak \(mostly placeholder words/);
    expect(errorOf({ ADMIN_TOKEN: 'my-admin-token-please' })).not.toContain('please');
  });

  it('keep the length message for short values, once', () => {
    expect(errorOf({ JWT_SECRET: 'short-secret' })).toBe('invalid JWT_SECRET: must be at least 32 bytes');
  });

  it('accept strong values', () => {
    const c = loadConfig({ JWT_SECRET: randomBytes(32).toString('base64url'), ADMIN_TOKEN: randomBytes(16).toString('hex') });
    expect(c.JWT_SECRET).toHaveLength(43);
  });
});
