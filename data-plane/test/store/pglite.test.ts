import { DEFAULT_TIERS } from '@fluxgate/contracts';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { issueKey } from '../../src/auth/issue.js';
import { hashKey } from '../../src/auth/key-format.js';
import { createSql, type Sql } from '../../src/store/db.js';
import { findKeyByHash, setKeyStatus, touchLastUsed } from '../../src/store/keys.js';
import { applySchema } from '../../src/store/migrate.js';
import { loadTiers } from '../../src/store/tiers.js';
import { INIT_SQL_PATH } from '../support/services.js';

// The embedded database of `npm start` (PGlite over the wire protocol) must take the same
// schema and the same queries as a real server.
let db: PGlite;
let server: PGLiteSocketServer;
let sql: Sql;
beforeAll(async () => {
  db = await PGlite.create();
  server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0 });
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  sql = createSql(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1 });
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await server?.stop();
  await db?.close();
});

it('applies init.sql twice on PGlite and serves the key queries', async () => {
  await applySchema(sql, INIT_SQL_PATH);
  await applySchema(sql, INIT_SQL_PATH);
  expect((await loadTiers(sql)).map((t) => t.id).sort()).toEqual(Object.keys(DEFAULT_TIERS).sort());
  const issued = await issueKey(sql, { email: 'Embedded@Example.com', tier: 'pro' });
  expect(await findKeyByHash(sql, hashKey(issued.secret))).toMatchObject({ id: issued.key.id, tier: 'pro', status: 'active' });
  expect(await touchLastUsed(sql, [issued.key.id])).toBe(1);
  expect((await setKeyStatus(sql, issued.key.id, 'revoked')).key.status).toBe('revoked');
  const [dup] = await sql`SELECT count(*)::int AS n FROM users WHERE lower(email) = 'embedded@example.com'`;
  expect(dup?.n).toBe(1);
});
