import postgres from 'postgres';
import type { Logger } from '../log/logger.js';

/** The one Postgres client type passed down from main.ts (porsager/postgres). */
export type Sql = postgres.Sql;
/** Either the pool or a transaction: what query helpers that can run inside `begin` take. */
export type Queryable = postgres.ISql;

export interface SqlOptions {
  /** Pool size. */
  max?: number;
  /** Seconds to wait for a TCP connection before a query fails (fail fast when Postgres is down). */
  connectTimeoutSeconds?: number;
  logger?: Logger;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
}

/**
 * Builds the `sql` client. Server NOTICEs (e.g. "relation already exists, skipping" from the
 * idempotent init.sql) go to the logger at debug level: the driver's default prints them to
 * stdout.
 */
export function createSql(url: string, opts: SqlOptions = {}): Sql {
  const { logger } = opts;
  return postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutSeconds ?? 5,
    idle_timeout: 60,
    max_lifetime: 30 * 60,
    onnotice: (notice) => logger?.debug({ notice: notice.message }, 'postgres notice'),
    connection: { application_name: opts.applicationName ?? 'fluxgate' },
  });
}

/** Readiness probe: a trivial query; rejects with the driver's error (its code says why) when Postgres cannot answer. */
export async function pingPostgres(sql: Sql): Promise<void> {
  await sql`SELECT 1`;
}

/** Connection-level failures (Postgres unreachable), as opposed to a query's own error. */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  // Node socket errors, the driver's own connection codes, and SQLSTATE class 08 / 57P0x
  // (connection exception, admin shutdown / crash shutdown / cannot connect now).
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN'].includes(code) ||
    code.startsWith('CONNECT_') ||
    code === 'CONNECTION_CLOSED' ||
    code === 'CONNECTION_ENDED' ||
    code === 'CONNECTION_DESTROYED' ||
    code.startsWith('08') ||
    code.startsWith('57P0')
  );
}
