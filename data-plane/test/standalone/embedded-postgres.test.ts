/**
 * `npm start` without DATABASE_URL runs PGlite in its own process behind the wire protocol.
 * Its data must survive a restart of that process, and the normal driver code must work on it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { issueKey } from '../../src/auth/issue.js';
import { hashKey } from '../../src/auth/key-format.js';
// The built launcher module, as `npm start` runs it (it spawns dist/standalone/embedded-postgres.js).
import { resolvePostgres } from '../../dist/standalone/services.js';
import { createSql } from '../../src/store/db.js';
import { findKeyByHash } from '../../src/store/keys.js';
import { applySchema } from '../../src/store/migrate.js';
import { INIT_SQL_PATH } from '../support/services.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function startEmbedded(stateDir: string) {
  const pg = await resolvePostgres(undefined, stateDir);
  expect(pg.source).toBe('embedded');
  const sql = createSql(pg.url, { max: 2, connectTimeoutSeconds: 10 });
  const stop = async () => {
    await sql.end({ timeout: 5 });
    const exited = new Promise((r) => pg.child!.once('exit', r));
    pg.child!.kill('SIGTERM');
    await exited;
  };
  return { sql, stop };
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
});
