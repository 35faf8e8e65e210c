/**
 * Real services for the control plane's integration tests: the machine's Redis (a unique key
 * prefix per test file) and Postgres (a fresh database with init.sql per test file), private
 * redis-server processes for tests that need a Redis of their own (leader failover: the spawned
 * control planes use un-prefixed keys), and a polling helper instead of sleeps.
 * Overrides: FLUXGATE_TEST_REDIS_URL, FLUXGATE_TEST_DATABASE_URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis, type RedisOptions } from 'ioredis';
import { createSql, type Sql } from '../../src/store/db.js';

export const TEST_REDIS_URL = process.env.FLUXGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_PG_ADMIN_URL = process.env.FLUXGATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const INIT_SQL_PATH = fileURLToPath(new URL('../../../init.sql', import.meta.url));

const suffix = (): string => `${process.pid.toString(36)}${randomBytes(5).toString('hex')}`;

export interface TestRedis {
  redis: Redis;
  prefix: string;
  url: string;
  connect(options?: RedisOptions): Promise<Redis>;
  close(): Promise<void>;
}

export async function connectTestRedis(url: string = TEST_REDIS_URL): Promise<TestRedis> {
  const prefix = `fgtest:${suffix()}:`;
  const clients: Redis[] = [];
  const connect = async (options: RedisOptions = {}): Promise<Redis> => {
    const client = new Redis(url, { keyPrefix: prefix, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, ...options });
    clients.push(client);
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  const redis = await connect();
  return {
    redis,
    prefix,
    url,
    connect,
    async close() {
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
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

export interface SpawnedRedis {
  port: number;
  url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
}

/** A private redis-server without persistence, killable and restartable on the same port. */
export async function spawnRedisServer(): Promise<SpawnedRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    child = proc;
    const died = new Promise<never>((_, reject) => {
      proc.once('error', (err) => reject(new Error(`cannot run redis-server (${err.message})`)));
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
    });
    died.catch(() => undefined);
    await Promise.race([waitUntil(() => ping(port), { timeoutMs: 5000, message: `redis-server on ${port} did not start` }), died]);
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

async function ping(port: number): Promise<boolean> {
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

export interface TestDatabase {
  sql: Sql;
  url: string;
  drop(): Promise<void>;
}

/** A fresh database with init.sql applied (the same file the data plane applies at boot). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `fg_cp_test_${suffix()}`;
  const admin = createSql(TEST_PG_ADMIN_URL, { max: 1 });
  await admin`CREATE DATABASE ${admin(name)}`;
  const u = new URL(TEST_PG_ADMIN_URL);
  u.pathname = `/${name}`;
  const sql = createSql(u.toString(), { max: 4 });
  // init.sql is a trusted file of the repository, never input; several statements need unsafe().
  await sql.unsafe(await readFile(INIT_SQL_PATH, 'utf8'));
  return {
    sql,
    url: u.toString(),
    async drop() {
      await sql.end({ timeout: 1 });
      try {
        await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
      } finally {
        await admin.end({ timeout: 1 });
      }
    },
  };
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A loopback TCP relay, so a test can cut a real service off (stop) and restore it (start). */
export interface TcpProxy {
  port: number;
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

/** Polls `check` until truthy (returned), failing with `message` after `timeoutMs`. Never a bare sleep. */
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
