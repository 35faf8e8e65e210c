import postgres from 'postgres';
import type { Logger } from '../log/logger.js';

/** The one Postgres client type passed down from main.ts (porsager/postgres). */
export type Sql = postgres.Sql;

/**
 * The control plane reads key metadata and tiers (read-only) and writes only the incident
 * archive. A small pool: the guard issues a handful of queries per poll at most.
 */
export function createSql(url: string, opts: { logger?: Logger; max?: number } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 4,
    connect_timeout: 5,
    idle_timeout: 60,
    max_lifetime: 30 * 60,
    onnotice: (notice) => opts.logger?.debug({ notice: notice.message }, 'postgres notice'),
    connection: { application_name: 'fluxgate-control-plane' },
  });
}
