/**
 * DATABASE_URL/REDIS_URL built from a password with every URL delimiter in it (issue 16), proven
 * against servers that check it: Postgres behind the embedded stack's SCRAM-SHA-256 gate (the
 * machine's Postgres trusts every local user, so it alone would prove nothing) and a private
 * redis-server with requirepass.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { startAuthGate, type AuthGate } from '../../src/standalone/pg-auth-gate.js';
import { createSql } from '../../src/store/db.js';
import { freePort, TEST_PG_ADMIN_URL, waitUntil } from '../support/services.js';

const PASSWORD = 'p@ss:w/o%rd#?x y&=+!';
const admin = new URL(TEST_PG_ADMIN_URL);
let gate: AuthGate;
let redisPort: number;
let redisServer: ChildProcess;
let dir: string;

beforeAll(async () => {
  gate = await startAuthGate({
    password: PASSWORD,
    host: '127.0.0.1',
    port: 0,
    connectBackend: () => connect(Number(admin.port || 5432), admin.hostname),
  });
  redisPort = await freePort();
  redisServer = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', PASSWORD],
    { stdio: 'ignore' },
  );
  await waitUntil(
    () =>
      new Promise<boolean>((resolve) => {
        const s = connect(redisPort, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    { timeoutMs: 10_000, message: 'redis-server with requirepass is listening (is redis-server installed?)' },
  );
  dir = await mkdtemp(join(tmpdir(), 'fg-conn-'));
});
afterAll(async () => {
  await gate?.close();
  redisServer?.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

const selectOne = async (url: string) => {
  const sql = createSql(url, { max: 1, connectTimeoutSeconds: 3 });
  try {
    return (await sql<{ one: number }[]>`SELECT 1 AS one`)[0]?.one;
  } finally {
    await sql.end({ timeout: 1 });
  }
};
const pgParts = {
  PGHOST: '127.0.0.1',
  PGUSER: decodeURIComponent(admin.username || 'postgres'),
  PGDATABASE: admin.pathname.slice(1) || 'postgres',
};

describe('the data plane’s config builds working URLs from a password with @ : / % # ? in it', () => {
  it('PGHOST… + PGPASSWORD: Postgres accepts the SCRAM exchange with exactly that password', async () => {
    const { DATABASE_URL } = loadConfig({ ...pgParts, PGPORT: String(gate.port), PGPASSWORD: PASSWORD });
    expect(await selectOne(DATABASE_URL!)).toBe(1);
    // The check is real: one character off and the gate refuses.
    const wrong = loadConfig({ ...pgParts, PGPORT: String(gate.port), PGPASSWORD: `${PASSWORD}x` }).DATABASE_URL!;
    await expect(selectOne(wrong)).rejects.toThrow();
  });

  it('DATABASE_URL without a password + DATABASE_PASSWORD_FILE (a secret file with its trailing newline)', async () => {
    const file = join(dir, 'pg-password');
    await writeFile(file, `${PASSWORD}\n`, { mode: 0o600 });
    const bare = `postgres://${encodeURIComponent(pgParts.PGUSER)}@127.0.0.1:${gate.port}/${pgParts.PGDATABASE}`;
    const { DATABASE_URL } = loadConfig({ DATABASE_URL: bare, DATABASE_PASSWORD_FILE: file });
    expect(await selectOne(DATABASE_URL!)).toBe(1);
  });

  it('REDIS_URL + REDIS_PASSWORD: Redis accepts AUTH with exactly that password', async () => {
    const { REDIS_URL } = loadConfig({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_PASSWORD: PASSWORD });
    const ok = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await ok.connect();
      expect(await ok.ping()).toBe('PONG');
    } finally {
      ok.disconnect();
    }
    // The check is real: one character off and Redis refuses the AUTH.
    const off = loadConfig({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_PASSWORD: `${PASSWORD}x` }).REDIS_URL!;
    const wrong = new Redis(off, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const errors: string[] = [];
    wrong.on('error', (e: Error) => errors.push(e.message));
    try {
      await expect(wrong.connect()).rejects.toThrow();
      expect(errors.join('\n')).toMatch(/WRONGPASS|invalid password/);
    } finally {
      wrong.disconnect();
    }
  });
});
