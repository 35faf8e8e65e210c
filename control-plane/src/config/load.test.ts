import { describe, expect, it } from 'vitest';
import { ConfigError, configWith, loadConfig, ollamaHost, pollIntervalMs } from './load.js';

describe('control-plane config', () => {
  it('has the documented defaults', () => {
    const c = configWith();
    expect(pollIntervalMs(c)).toBe(2000);
    expect(c.CONTROL_PLANE_PORT).toBe(8000);
    expect(c.CONTROL_PLANE_HOST).toBe('127.0.0.1');
    expect(c.INCIDENT_CAPACITY).toBe(10_000);
    expect(ollamaHost(c)).toBe('http://127.0.0.1:11434');
    expect(c.GUARD_TIER_SCALE.get('pro')).toBe(2);
    expect(c.GUARD_PENALTY_SECONDS['penalty-1']).toBe(900);
  });
  it('takes OLLAMA_URL as the earlier name of OLLAMA_HOST, OLLAMA_HOST winning', () => {
    expect(ollamaHost(configWith({ OLLAMA_URL: 'http://a:1' }))).toBe('http://a:1');
    expect(ollamaHost(configWith({ OLLAMA_URL: 'http://a:1', OLLAMA_HOST: 'http://b:2' }))).toBe('http://b:2');
  });
  it('parses detector modes and penalty durations', () => {
    const c = configWith({ GUARD_MODES: 'rate_spike=shadow, leaked_key=enforce', GUARD_PENALTY_SECONDS: 'penalty-1=5' });
    expect(c.GUARD_MODES.get('rate_spike')).toBe('shadow');
    expect(c.GUARD_PENALTY_SECONDS['penalty-1']).toBe(5);
    expect(c.GUARD_PENALTY_SECONDS['penalty-2']).toBe(7200);
  });
  it('names the variable and the problem, never the value', () => {
    const bad = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ POLL_INTERVAL: 'soon' })).toMatch(/^invalid POLL_INTERVAL: /);
    expect(bad({ GUARD_MODES: 'nope=shadow' })).toMatch(/invalid GUARD_MODES: .*names from context_flooding/);
    expect(bad({ GUARD_LOOKBACK_SECONDS: '25' })).toMatch(/GUARD_LOOKBACK_SECONDS/);
    const secret = 'short-secret';
    const msg = bad({ ADMIN_TOKEN: secret });
    expect(msg).toMatch(/ADMIN_TOKEN/);
    expect(msg).not.toContain(secret);
  });
});

describe('control-plane connection URLs from parts (the same contracts helper as the data plane)', () => {
  const PASSWORD = 'p@ss:w/o%rd#?x';
  it('builds DATABASE_URL from PGHOST… and puts REDIS_PASSWORD into REDIS_URL, encoded', () => {
    const c = loadConfig({
      PGHOST: 'postgres',
      PGUSER: 'fluxgate',
      PGPASSWORD: PASSWORD,
      REDIS_URL: 'redis://redis:6379',
      REDIS_PASSWORD: PASSWORD,
    });
    expect(decodeURIComponent(new URL(c.DATABASE_URL!).password)).toBe(PASSWORD);
    expect(new URL(c.DATABASE_URL!).pathname).toBe('/fluxgate');
    expect(decodeURIComponent(new URL(c.REDIS_URL!).password)).toBe(PASSWORD);
  });
  it('refuses two passwords with a ConfigError naming the variables, not the password', () => {
    let message = '';
    try {
      loadConfig({ REDIS_URL: 'redis://:one@redis:6379', REDIS_PASSWORD: PASSWORD });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect(message).toBe('invalid REDIS_URL: it has a password and REDIS_PASSWORD is set too (keep one)');
  });
});
