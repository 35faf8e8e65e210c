import { describe, expect, it } from 'vitest';
import { loadCliConfig } from './config.js';

const PASSWORD = 'p@ss:w/o%rd#?x';
const noRuntime = {};

describe('loadCliConfig', () => {
  it('builds the URLs from the parts a compose or Kubernetes container has, like the planes', () => {
    const r = loadCliConfig(
      {
        PGHOST: 'postgres',
        PGUSER: 'fluxgate',
        PGDATABASE: 'fluxgate',
        PGPASSWORD: PASSWORD,
        REDIS_URL: 'redis://redis:6379',
        REDIS_PASSWORD: PASSWORD,
      },
      {},
      noRuntime,
    );
    if (!r.ok) throw new Error(r.error);
    expect(decodeURIComponent(new URL(r.config.DATABASE_URL).password)).toBe(PASSWORD);
    expect(new URL(r.config.DATABASE_URL).host).toBe('postgres:5432');
    expect(decodeURIComponent(new URL(r.config.REDIS_URL).password)).toBe(PASSWORD);
  });
  it('reads DATABASE_PASSWORD_FILE through the given reader', () => {
    const r = loadCliConfig({ PGHOST: 'db', DATABASE_PASSWORD_FILE: '/run/secrets/pg' }, {}, noRuntime, () => `${PASSWORD}\n`);
    if (!r.ok) throw new Error(r.error);
    expect(decodeURIComponent(new URL(r.config.DATABASE_URL).password)).toBe(PASSWORD);
  });
  it('keeps flags first, then the environment, then runtime.json, then defaults', () => {
    const runtime = { DATABASE_URL: 'postgres://rt@127.0.0.1:1/rt', REDIS_URL: 'redis://127.0.0.1:2' };
    const flagged = loadCliConfig({ PGHOST: 'db' }, { databaseUrl: 'postgres://flag@h/db' }, runtime);
    expect(flagged.ok && flagged.config.DATABASE_URL).toBe('postgres://flag@h/db');
    const fromRuntime = loadCliConfig({}, {}, runtime);
    expect(fromRuntime.ok && [fromRuntime.config.DATABASE_URL, fromRuntime.config.REDIS_URL]).toEqual([
      runtime.DATABASE_URL,
      runtime.REDIS_URL,
    ]);
    const defaults = loadCliConfig({}, {}, noRuntime);
    expect(defaults.ok && defaults.config.REDIS_URL).toBe('redis://127.0.0.1:6379');
  });
  it('refuses two passwords naming the variables, never the password', () => {
    const r = loadCliConfig({ REDIS_URL: 'redis://:x@r:6379', REDIS_PASSWORD: PASSWORD }, {}, noRuntime);
    expect(r).toEqual({ ok: false, error: 'invalid REDIS_URL: it has a password and REDIS_PASSWORD is set too (keep one)' });
  });
});
