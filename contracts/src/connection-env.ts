import { z } from 'zod';

/**
 * DATABASE_URL and REDIS_URL from parts (issue 16). A password in a URL must be percent-encoded,
 * which compose's `${VAR}` interpolation cannot do: `postgres://u:${POSTGRES_PASSWORD}@…` breaks
 * on a password holding `@ : / % # ?`. So both planes (and `npm start`) also accept the password
 * on its own, and this one helper builds the URL with it encoded:
 *
 * - DATABASE_URL, else the libpq variables PGHOST, PGPORT (5432), PGUSER (postgres),
 *   PGDATABASE (PGUSER). Its password: the URL's own, else PGPASSWORD, else the first line of
 *   DATABASE_PASSWORD_FILE (a Docker or Kubernetes secret file). Two sources of it is an error.
 * - REDIS_URL, with its password from REDIS_PASSWORD or REDIS_PASSWORD_FILE when it has none.
 *
 * Errors are one line naming the variable, never a password. Reading a file is the caller's
 * (contracts/ does no I/O).
 */

const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
/** Passwords keep their spaces: only an empty value means unset. */
const optionalSecret = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));

/** Spread into each plane's zod schema so these variables are declared (and documented) like every other. */
export const connectionEnvShape = {
  /** Postgres host; with DATABASE_URL unset, the URL is built from PGHOST…PGDATABASE. */
  PGHOST: optional,
  PGPORT: optional.pipe(z.coerce.number<string | undefined>().int().min(1).max(65535).optional()),
  PGUSER: optional,
  PGDATABASE: optional.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9_.$-]+$/, 'expected letters, digits and _ . $ - (the driver does not decode a URL-encoded database name)')
      .optional(),
  ),
  /** Postgres password, any characters (encoded into the URL here). */
  PGPASSWORD: optionalSecret,
  /** A file whose first line is the Postgres password (Docker/Kubernetes secrets). */
  DATABASE_PASSWORD_FILE: optional,
  /** Redis password, any characters; REDIS_URL must then carry none. */
  REDIS_PASSWORD: optionalSecret,
  REDIS_PASSWORD_FILE: optional,
};

/** The part variables: a process handed the resolved URLs (npm start's children) must not get them too. */
export const CONNECTION_PART_VARIABLES = Object.keys(connectionEnvShape) as (keyof typeof connectionEnvShape)[];

export interface ConnectionEnv {
  DATABASE_URL?: string | undefined;
  REDIS_URL?: string | undefined;
  PGHOST?: string | undefined;
  PGPORT?: number | undefined;
  PGUSER?: string | undefined;
  PGDATABASE?: string | undefined;
  PGPASSWORD?: string | undefined;
  DATABASE_PASSWORD_FILE?: string | undefined;
  REDIS_PASSWORD?: string | undefined;
  REDIS_PASSWORD_FILE?: string | undefined;
}

export class ConnectionEnvError extends Error {
  override name = 'ConnectionEnvError';
}

/** Reads a secret file's content (the caller's fs); throws when it cannot. */
export type ReadSecret = (path: string) => string;

function password(
  env: ConnectionEnv,
  names: { value: 'PGPASSWORD' | 'REDIS_PASSWORD'; file: 'DATABASE_PASSWORD_FILE' | 'REDIS_PASSWORD_FILE' },
  read: ReadSecret,
): { value: string; from: string } | undefined {
  const value = env[names.value];
  const file = env[names.file];
  if (value !== undefined && file !== undefined)
    throw new ConnectionEnvError(`invalid ${names.file}: ${names.value} is set too (keep one)`);
  if (value !== undefined) return { value, from: names.value };
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = read(file);
  } catch (cause) {
    throw new ConnectionEnvError(`invalid ${names.file}: cannot read ${file}`, { cause });
  }
  // A secret file usually ends with a newline; the password is its first line, as written.
  const first = text.split(/\r?\n/)[0] ?? '';
  if (first === '') throw new ConnectionEnvError(`invalid ${names.file}: ${file} is empty`);
  return { value: first, from: names.file };
}

/** Puts an encoded password into a URL that has none. */
function withPassword(url: string, variable: string, pw: { value: string; from: string }): string {
  const parsed = new URL(url);
  if (parsed.password !== '') throw new ConnectionEnvError(`invalid ${variable}: it has a password and ${pw.from} is set too (keep one)`);
  const at = url.indexOf('//') + 2;
  // Userinfo is everything before the last '@' of the authority; an empty username is kept empty.
  const authorityEnd = url.slice(at).search(/[/?#]|$/) + at;
  const authority = url.slice(at, authorityEnd);
  const sep = authority.lastIndexOf('@');
  const user = sep >= 0 ? authority.slice(0, sep).replace(/:$/, '') : '';
  const host = sep >= 0 ? authority.slice(sep + 1) : authority;
  return `${url.slice(0, at)}${user}:${encodeURIComponent(pw.value)}@${host}${url.slice(authorityEnd)}`;
}

/**
 * The effective DATABASE_URL and REDIS_URL (undefined: unset, e.g. `npm start`'s embedded
 * services). Passwords end up percent-encoded, so any character is safe.
 */
export function resolveConnectionUrls(env: ConnectionEnv, read: ReadSecret): { DATABASE_URL?: string; REDIS_URL?: string } {
  const out: { DATABASE_URL?: string; REDIS_URL?: string } = {};
  const pgPassword = password(env, { value: 'PGPASSWORD', file: 'DATABASE_PASSWORD_FILE' }, read);
  if (env.DATABASE_URL !== undefined) {
    out.DATABASE_URL = pgPassword ? withPassword(env.DATABASE_URL, 'DATABASE_URL', pgPassword) : env.DATABASE_URL;
  } else if (env.PGHOST !== undefined) {
    const user = env.PGUSER ?? 'postgres';
    const host = env.PGHOST.includes(':') && !env.PGHOST.startsWith('[') ? `[${env.PGHOST}]` : env.PGHOST;
    const auth = pgPassword ? `${encodeURIComponent(user)}:${encodeURIComponent(pgPassword.value)}` : encodeURIComponent(user);
    out.DATABASE_URL = `postgres://${auth}@${host}:${env.PGPORT ?? 5432}/${env.PGDATABASE ?? user}`;
    try {
      new URL(out.DATABASE_URL);
    } catch {
      throw new ConnectionEnvError('invalid PGHOST: expected a host name or IP address');
    }
  }
  const redisPassword = password(env, { value: 'REDIS_PASSWORD', file: 'REDIS_PASSWORD_FILE' }, read);
  if (env.REDIS_URL !== undefined) {
    out.REDIS_URL = redisPassword ? withPassword(env.REDIS_URL, 'REDIS_URL', redisPassword) : env.REDIS_URL;
  } else if (redisPassword) {
    throw new ConnectionEnvError(`invalid REDIS_URL: not set, but ${redisPassword.from} is (set REDIS_URL, e.g. redis://redis:6379)`);
  }
  return out;
}
