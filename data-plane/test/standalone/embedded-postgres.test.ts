/**
 * `npm start` without DATABASE_URL runs PGlite in its own process behind the wire protocol.
 * Its data must survive a restart of that process, the normal driver code must work on it, and
 * nobody without the generated password gets in (pglite-socket itself trusts everyone).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { issueKey } from '../../src/auth/issue.js';
import { hashKey } from '../../src/auth/key-format.js';
// The built launcher module, as `npm start` runs it (it spawns dist/standalone/embedded-postgres.js).
import { planPostgres } from '../../dist/standalone/services.js';
import { createSql } from '../../src/store/db.js';
import { findKeyByHash } from '../../src/store/keys.js';
import { applySchema } from '../../src/store/migrate.js';
import { INIT_SQL_PATH } from '../support/services.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function startEmbedded(stateDir: string, maxConnections?: number) {
  const pg = await planPostgres(undefined, stateDir, { maxConnections });
  expect(pg.source).toBe('embedded');
  const { child, ready } = pg.unit!.launch();
  await ready;
  const sql = createSql(pg.url, { max: 2, connectTimeoutSeconds: 10 });
  const stop = async () => {
    await sql.end({ timeout: 5 });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return { sql, stop, url: new URL(pg.url), pid: child.pid! };
}

/** The first message a server sends after a protocol 3.0 startup message (raw socket, no driver). */
function firstServerMessage(port: number): Promise<{ type: string; authCode: number }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
    const startup = Buffer.alloc(8 + params.length);
    startup.writeInt32BE(startup.length, 0);
    startup.writeInt32BE(196_608, 4);
    params.copy(startup, 8);
    s.once('connect', () => s.write(startup));
    s.once('data', (b) => {
      resolve({ type: String.fromCharCode(b[0]!), authCode: b.length >= 9 ? b.readInt32BE(5) : -1 });
      s.destroy();
    });
    s.once('error', reject);
  });
}

describe('embedded Postgres (PGlite over the wire protocol)', () => {
  it('keeps its data across a restart of its process', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fg-embedded-'));
    dirs.push(stateDir);

    const first = await startEmbedded(stateDir);
    await applySchema(first.sql, INIT_SQL_PATH);
    const issued = await issueKey(first.sql, { email: 'persist@example.com', name: 'kept' });
    await first.stop();

    const second = await startEmbedded(stateDir);
    try {
      // init.sql is idempotent on a database that already has everything.
      await applySchema(second.sql, INIT_SQL_PATH);
      const found = await findKeyByHash(second.sql, hashKey(issued.secret));
      expect(found).toMatchObject({ id: issued.key.id, status: 'active', tier: 'free', ownerEmail: 'persist@example.com' });
    } finally {
      await second.stop();
    }
  });

  it('accepts as many connections at once as the supervisor sized it for (DATA_PLANE_WORKERS pools), and refuses the next', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fg-embedded-conns-'));
    dirs.push(stateDir);
    const pg = await startEmbedded(stateDir, 24);
    const many = createSql(pg.url.toString(), { max: 24, connectTimeoutSeconds: 20 });
    const extra = createSql(pg.url.toString(), { max: 1, connectTimeoutSeconds: 20 });
    try {
      // 24 connections held at once, each answering (the old fixed limit was 16).
      const held = await Promise.all(Array.from({ length: 24 }, () => many.reserve()));
      const answers = await Promise.all(held.map((c, i) => c`SELECT ${i}::int AS i`));
      expect(answers.map((r) => r[0]!.i)).toEqual(Array.from({ length: 24 }, (_, i) => i));
      // The 25th is refused while they are held.
      await expect(extra`SELECT 1`).rejects.toThrow();
      for (const c of held) c.release();
    } finally {
      await extra.end({ timeout: 1 });
      await many.end({ timeout: 5 });
      await pg.stop();
    }
  });

  it('requires the generated password (SCRAM-SHA-256), listens on loopback only, and keeps the password out of argv', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fg-embedded-auth-'));
    dirs.push(stateDir);
    const pg = await startEmbedded(stateDir);
    try {
      expect(pg.url.hostname).toBe('127.0.0.1');
      // Bare pglite-socket answers AuthenticationOk (code 0) to anyone; the gate asks for SASL (10).
      expect(await firstServerMessage(Number(pg.url.port))).toEqual({ type: 'R', authCode: 10 });
      expect(pg.url.password).toMatch(/^[0-9a-f]{48}$/);

      const wrong = new URL(pg.url);
      wrong.password = 'not-the-password-0000000000';
      const intruder = createSql(wrong.toString(), { max: 1, connectTimeoutSeconds: 5 });
      await expect(intruder`SELECT 1`).rejects.toMatchObject({ code: '28P01' });
      await intruder.end({ timeout: 1 });

      expect(await pg.sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
      const cmdline = await readFile(`/proc/${pg.pid}/cmdline`, 'utf8');
      expect(cmdline).not.toContain(pg.url.password);
      await expect(
        new Promise((resolve, reject) =>
          connect({ host: '::1', port: Number(pg.url.port) })
            .once('connect', resolve)
            .once('error', reject),
        ),
      ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await pg.stop();
    }
  });
});
