import { Redis } from 'ioredis';
import { createSql, type Sql } from '../store/db.js';
import type { CliConfig } from './config.js';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** Exit codes, stable for scripts. */
export const EXIT = {
  ok: 0,
  /** Nothing was changed: a service is unreachable or an unexpected error happened. */
  failure: 1,
  usage: 2,
  /** The target does not exist or the change is refused (revoked is final, unknown tier, …). */
  refused: 3,
  /** Changed in Postgres, but the replicas could not be notified (their caches converge within the key cache TTL). */
  partial: 4,
} as const;

/** Clients are created on first use, so `--help` and usage errors need no services. */
export interface CliContext {
  config: CliConfig;
  out(line: string): void;
  warn(line: string): void;
  sql(): Sql;
  redis(): Promise<Redis>;
  close(): Promise<void>;
}

export function createCliContext(config: CliConfig, io: CliIo): CliContext {
  let sql: Sql | undefined;
  let redis: Redis | undefined;
  return {
    config,
    out: (line) => void io.stdout.write(`${line}\n`),
    warn: (line) => void io.stderr.write(`fluxgate: ${line}\n`),
    sql: () => (sql ??= createSql(config.DATABASE_URL, { max: 1, connectTimeoutSeconds: 5, applicationName: 'fluxgate-cli' })),
    async redis() {
      if (!redis) {
        redis = new Redis(config.REDIS_URL, {
          lazyConnect: true,
          connectTimeout: 3000,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        redis.on('error', () => undefined);
        await redis.connect();
      }
      return redis;
    },
    async close() {
      redis?.disconnect();
      await sql?.end({ timeout: 5 });
    },
  };
}
