/**
 * Real services for integration tests: the machine's Redis and Postgres (tests never mock
 * them), plus private redis-server processes and TCP proxies for outage tests, and a polling
 * helper for conditions that arrive asynchronously (pub/sub, reconnects).
 *
 * Overrides: FLUXGATE_TEST_REDIS_URL, FLUXGATE_TEST_DATABASE_URL (an admin URL whose user may
 * CREATE DATABASE).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis, type RedisOptions } from 'ioredis';
import { createSql, type Sql } from '../../src/store/db.js';
import { applySchema } from '../../src/store/migrate.js';

export const TEST_REDIS_URL = process.env.FLUXGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_PG_ADMIN_URL = process.env.FLUXGATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const INIT_SQL_PATH = fileURLToPath(new URL('../../../init.sql', import.meta.url));

const uniqueSuffix = (): string => `${process.pid.toString(36)}${randomBytes(5).toString('hex')}`;

// ---------------------------------------------------------------------------------------------
// Redis

export interface TestRedis {
  /** Connected client; every key it touches is under `prefix` (ioredis keyPrefix). */
  redis: Redis;
  /** e.g. `fgtest:abc123:` — unique per call, so parallel test runs never see each other's keys. */
  prefix: string;
  url: string;
  /**
   * Another connection with the same key prefix (subscribers, hot-path clients with
   * `enableOfflineQueue: false`). Closed by `close()`. Pub/sub channel names are NOT prefixed.
   */
  connect(options?: RedisOptions): Promise<Redis>;
  /** Deletes every key under the prefix and closes every connection made here. */
  close(): Promise<void>;
}

/** Connects to the test Redis, or throws an error that says what to start. */
export async function connectTestRedis(url: string = TEST_REDIS_URL): Promise<TestRedis> {
  const prefix = `fgtest:${uniqueSuffix()}:`;
  const clients: Redis[] = [];
  const connect = async (options: RedisOptions = {}): Promise<Redis> => {
    const client = new Redis(url, { keyPrefix: prefix, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, ...options });
    clients.push(client);
    try {
      await client.connect();
      if (options.enableOfflineQueue !== false) await client.ping();
    } catch (err) {
      client.disconnect();
      throw new Error(
        `Redis is not answering at ${url} (${(err as Error).message}). Integration tests need a real Redis: ` +
          'start `redis-server` on 127.0.0.1:6379 or set FLUXGATE_TEST_REDIS_URL.',
        { cause: err },
      );
    }
    return client;
  };
  const redis = await connect();
  return {
    redis,
    prefix,
    url,
    connect,
    async close() {
      const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await admin.connect();
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await admin.unlink(...keys);
        } while (cursor !== '0');
      } finally {
        admin.disconnect();
        for (const c of clients) c.disconnect();
      }
    },
  };
}

/** A private redis-server (no persistence) that a test may kill and restart on the same port. */
export interface SpawnedRedis {
  port: number;
  url: string;
  /** SIGKILL: the server vanishes as in a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  start(): Promise<void>;
}

export async function spawnRedisServer(): Promise<SpawnedRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    child = proc;
    const exited = new Promise<never>((_, reject) => {
      proc.once('error', (err) => reject(new Error(`cannot run redis-server (${err.message}); install it (apt-get install redis-server)`)));
      proc.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} on port ${port}`)));
    });
    exited.catch(() => undefined);
    await Promise.race([
      waitUntil(() => pingRedis(port), { timeoutMs: 5000, message: `redis-server on port ${port} did not start` }),
      exited,
    ]);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      const proc = child;
      child = undefined;
      if (!proc || proc.exitCode !== null) return;
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await gone;
    },
    start,
  };
}

async function pingRedis(port: number): Promise<boolean> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Postgres

export interface TestDatabase {
  /** Client of the fresh database, schema applied. */
  sql: Sql;
  url: string;
  name: string;
  /** Closes `sql` and drops the database. */
  drop(): Promise<void>;
}

/** Creates `fg_test_<random>` on the test Postgres and applies init.sql to it. */
export async function createTestDatabase(opts: { applySchema?: boolean } = {}): Promise<TestDatabase> {
  const name = `fg_test_${uniqueSuffix()}`;
  const admin = createSql(TEST_PG_ADMIN_URL, { max: 1, connectTimeoutSeconds: 3 });
  try {
    await admin`CREATE DATABASE ${admin(name)}`;
  } catch (err) {
    await admin.end({ timeout: 1 });
    throw new Error(
      `Postgres is not usable at ${redactUrl(TEST_PG_ADMIN_URL)} (${(err as Error).message}). Integration tests need a real ` +
        'Postgres with a user that may CREATE DATABASE: start it on 127.0.0.1:5432 or set FLUXGATE_TEST_DATABASE_URL.',
      { cause: err },
    );
  }
  const u = new URL(TEST_PG_ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const sql = createSql(url, { max: 4, connectTimeoutSeconds: 3 });
  const drop = async (): Promise<void> => {
    await sql.end({ timeout: 1 });
    try {
      await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
    } finally {
      await admin.end({ timeout: 1 });
    }
  };
  if (opts.applySchema ?? true) {
    try {
      await applySchema(sql, INIT_SQL_PATH);
    } catch (err) {
      await drop();
      throw err;
    }
  }
  return { sql, url, name, drop };
}

const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

// ---------------------------------------------------------------------------------------------
// Network and timing helpers

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * The first of `n` consecutive loopback ports that are free now, below the kernel's ephemeral
 * range (32768–60999 on Linux), so no outgoing connection takes one of them meanwhile: for
 * settings that derive ports from a base (worker i's admin listener is ADMIN_PORT + i).
 */
export async function freeConsecutivePorts(n: number): Promise<number> {
  const bindable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false)).listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await bindable(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports found between 20000 and 32000`);
}

/**
 * A loopback TCP relay to `target`, so a test can make a real service unreachable (stop) and
 * reachable again (start) without touching the shared server.
 */
export interface TcpProxy {
  port: number;
  /** Closes the listener and cuts every relayed connection. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const start = async (): Promise<void> => {
    const srv = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      sockets.add(client).add(upstream);
      const cut = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', cut).on('close', cut);
      upstream.on('error', cut).on('close', cut);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', resolve));
    server = srv;
  };
  await start();
  return {
    port,
    async stop() {
      const srv = server;
      server = undefined;
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
    start,
  };
}

/**
 * Polls `check` until it returns true (or a truthy value, which is returned), failing with
 * `message` after `timeoutMs`. For conditions that arrive asynchronously — never a bare sleep.
 */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + (opts.timeoutMs ?? 2000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`${opts.message ?? 'condition not met'} within ${opts.timeoutMs ?? 2000} ms${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 10));
  }
}
