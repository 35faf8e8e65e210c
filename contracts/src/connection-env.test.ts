import { describe, expect, it } from 'vitest';
import { ConnectionEnvError, resolveConnectionUrls, type ConnectionEnv } from './connection-env.js';

/** Everything a URL would otherwise choke on: userinfo and path delimiters, and an escape. */
const NASTY = 'p@ss:w/o%rd#?x y&=+[]!';
const noFiles = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};
const resolve = (env: ConnectionEnv, read = noFiles) => resolveConnectionUrls(env, read);
const errorOf = (env: ConnectionEnv, read = noFiles): string => {
  try {
    resolve(env, read);
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectionEnvError);
    return (e as Error).message;
  }
  throw new Error('accepted');
};

describe('resolveConnectionUrls', () => {
  it('leaves both URLs alone (or unset) when no part is given', () => {
    expect(resolve({})).toEqual({});
    expect(resolve({ DATABASE_URL: 'postgres://u:p@h/db', REDIS_URL: 'redis://r:6379' })).toEqual({
      DATABASE_URL: 'postgres://u:p@h/db',
      REDIS_URL: 'redis://r:6379',
    });
  });

  it('builds DATABASE_URL from PGHOST… with the password percent-encoded, so URL parsing gives it back exactly', () => {
    const { DATABASE_URL } = resolve({ PGHOST: 'postgres', PGPORT: 5433, PGUSER: 'flux gate', PGDATABASE: 'fluxgate', PGPASSWORD: NASTY });
    const url = new URL(DATABASE_URL!);
    expect(url.protocol).toBe('postgres:');
    expect(url.hostname).toBe('postgres');
    expect(url.port).toBe('5433');
    expect(url.pathname).toBe('/fluxgate');
    expect(decodeURIComponent(url.username)).toBe('flux gate');
    expect(decodeURIComponent(url.password)).toBe(NASTY);
    expect(url.hash).toBe('');
    expect(url.search).toBe('');
  });

  it('uses the libpq defaults: port 5432, user postgres, database named like the user; IPv6 hosts bracketed', () => {
    expect(resolve({ PGHOST: 'db' }).DATABASE_URL).toBe('postgres://postgres@db:5432/postgres');
    expect(resolve({ PGHOST: 'db', PGUSER: 'app' }).DATABASE_URL).toBe('postgres://app@db:5432/app');
    expect(new URL(resolve({ PGHOST: 'fd00::5' }).DATABASE_URL!).hostname).toBe('[fd00::5]');
  });

  it('reads the password from DATABASE_PASSWORD_FILE (first line, trailing newline dropped)', () => {
    const read = (path: string) => (path === '/run/secrets/pg' ? `${NASTY}\n` : noFiles(path));
    const { DATABASE_URL } = resolve({ PGHOST: 'db', DATABASE_PASSWORD_FILE: '/run/secrets/pg' }, read);
    expect(decodeURIComponent(new URL(DATABASE_URL!).password)).toBe(NASTY);
  });

  it('puts a separate password into a DATABASE_URL or REDIS_URL that has none, keeping the rest', () => {
    const out = resolve({
      DATABASE_URL: 'postgres://fluxgate@postgres:5432/fluxgate?sslmode=require',
      PGPASSWORD: NASTY,
      REDIS_URL: 'redis://redis:6379/2',
      REDIS_PASSWORD: NASTY,
    });
    const db = new URL(out.DATABASE_URL!);
    expect([db.username, decodeURIComponent(db.password), db.host, db.pathname, db.search]).toEqual([
      'fluxgate',
      NASTY,
      'postgres:5432',
      '/fluxgate',
      '?sslmode=require',
    ]);
    const redis = new URL(out.REDIS_URL!);
    expect([redis.username, decodeURIComponent(redis.password), redis.host, redis.pathname]).toEqual(['', NASTY, 'redis:6379', '/2']);
    const file = resolve({ REDIS_URL: 'rediss://default@r:6380', REDIS_PASSWORD_FILE: '/s' }, () => `${NASTY}\r\n`);
    expect(decodeURIComponent(new URL(file.REDIS_URL!).password)).toBe(NASTY);
    expect(new URL(file.REDIS_URL!).username).toBe('default');
  });

  it('refuses two passwords or none where one is needed, naming the variables and never the password', () => {
    const messages = [
      errorOf({ DATABASE_URL: 'postgres://u:other@h/db', PGPASSWORD: NASTY }),
      errorOf({ PGHOST: 'h', PGPASSWORD: NASTY, DATABASE_PASSWORD_FILE: '/s' }),
      errorOf({ REDIS_URL: 'redis://:other@r:6379', REDIS_PASSWORD: NASTY }),
      errorOf({ REDIS_PASSWORD: NASTY }),
      errorOf({ PGHOST: 'h', DATABASE_PASSWORD_FILE: '/missing' }, () => {
        throw new Error(`ENOENT ${NASTY}`);
      }),
      errorOf({ PGHOST: 'h', DATABASE_PASSWORD_FILE: '/empty' }, () => '\n'),
      errorOf({ PGHOST: 'bad host/x' }),
    ];
    expect(messages).toEqual([
      'invalid DATABASE_URL: it has a password and PGPASSWORD is set too (keep one)',
      'invalid DATABASE_PASSWORD_FILE: PGPASSWORD is set too (keep one)',
      'invalid REDIS_URL: it has a password and REDIS_PASSWORD is set too (keep one)',
      'invalid REDIS_URL: not set, but REDIS_PASSWORD is (set REDIS_URL, e.g. redis://redis:6379)',
      'invalid DATABASE_PASSWORD_FILE: cannot read /missing',
      'invalid DATABASE_PASSWORD_FILE: /empty is empty',
      'invalid PGHOST: expected a host name or IP address',
    ]);
    for (const m of messages) expect(m).not.toContain(NASTY);
  });
});
