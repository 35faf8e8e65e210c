import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';

describe('data-plane config', () => {
  it('has working defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c.PUBLIC_PORT).toBe(8443);
    expect(c.ADMIN_PORT).toBe(9090);
    expect(c.ADMIN_HOST).toBe('127.0.0.1');
    expect(c.DOWNSTREAM_AI_URLS).toBe('http://127.0.0.1:11434');
    expect(c.DATABASE_URL).toBeUndefined();
  });
  it('accepts the earlier design variable names', () => {
    const c = loadConfig({
      PUBLIC_PORT: '9443',
      REDIS_URL: 'redis://r:6379',
      DATABASE_URL: 'postgres://u@h/db',
      CLUSTER_DOMAIN: 'x.local',
    });
    expect(c.PUBLIC_PORT).toBe(9443);
    expect(c.REDIS_URL).toBe('redis://r:6379');
    expect(c.CLUSTER_DOMAIN).toBe('x.local');
  });
  it('names the variable and the problem, never the value', () => {
    const secret = 'short-secret-value';
    let message = '';
    try {
      loadConfig({ JWT_SECRET: secret, PUBLIC_PORT: 'abc' });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/invalid JWT_SECRET: must be at least 32 bytes/);
    expect(message).toMatch(/invalid PUBLIC_PORT/);
    expect(message).not.toContain(secret);
  });
  it('rejects a database URL of the wrong scheme', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/invalid DATABASE_URL: expected a URL starting with postgres:/);
  });
  it('treats empty strings as unset', () => {
    expect(loadConfig({ REDIS_URL: '', ADMIN_TOKEN: ' ' }).REDIS_URL).toBeUndefined();
  });
});
