import { readFile } from 'node:fs/promises';
import { DEFAULT_TIERS, PENALTY_LEVELS } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySchema, applySchemaText } from '../../src/store/migrate.js';
import { createSql } from '../../src/store/db.js';
import { loadTiers } from '../../src/store/tiers.js';
import { INIT_SQL_PATH, createTestDatabase, type TestDatabase } from '../support/services.js';

/** Everything that defines the schema, as text, to compare before and after a re-apply. */
async function schemaFingerprint(db: TestDatabase): Promise<string> {
  const cols = await db.sql`
    SELECT table_name, column_name, data_type, is_nullable, column_default
    FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`;
  const idx = await db.sql`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`;
  const cons = await db.sql`
    SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace ORDER BY conname`;
  const trg = await db.sql`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname`;
  const tiers = await db.sql`SELECT * FROM tiers ORDER BY id`;
  return JSON.stringify({ cols, idx, cons, trg, tiers });
}

describe('init.sql', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('creates the tables the design needs', async () => {
    const rows = await db.sql<{ table_name: string }[]>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`;
    expect(rows.map((r) => r.table_name)).toEqual(['api_keys', 'audit_log', 'guard_allowlist', 'incident_archive', 'tiers', 'users']);
  });

  it('seeds exactly contracts DEFAULT_TIERS, penalty levels flagged', async () => {
    const rows = await db.sql<
      {
        id: string;
        requests_per_window: number;
        tokens_per_window: string;
        window_seconds: number;
        concurrent_streams: number;
        burst: number;
        is_penalty: boolean;
      }[]
    >`SELECT * FROM tiers`;
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect([...byId.keys()].sort()).toEqual(Object.keys(DEFAULT_TIERS).sort());
    for (const t of Object.values(DEFAULT_TIERS)) {
      const r = byId.get(t.id)!;
      expect({
        id: r.id,
        requestsPerWindow: r.requests_per_window,
        tokensPerWindow: Number(r.tokens_per_window),
        windowSeconds: r.window_seconds,
        concurrentStreams: r.concurrent_streams,
        burst: r.burst,
      }).toEqual(t);
      expect(r.is_penalty).toBe((PENALTY_LEVELS as readonly string[]).includes(t.id));
    }
  });

  it('loadTiers returns the seeded limits in the contracts shape', async () => {
    const tiers = await loadTiers(db.sql);
    for (const t of tiers) {
      const { isPenalty, ...limits } = t;
      expect(limits).toEqual(DEFAULT_TIERS[t.id as keyof typeof DEFAULT_TIERS]);
      expect(isPenalty).toBe(t.id.startsWith('penalty-'));
    }
    expect(tiers).toHaveLength(Object.keys(DEFAULT_TIERS).length);
  });

  it('applied again is a no-op: same schema, same rows, operator edits kept', async () => {
    await db.sql`UPDATE tiers SET requests_per_window = 61 WHERE id = 'free'`;
    await db.sql`INSERT INTO users (email) VALUES ('Keep@Example.com')`;
    const before = await schemaFingerprint(db);
    await applySchema(db.sql, INIT_SQL_PATH);
    await applySchema(db.sql, INIT_SQL_PATH);
    expect(await schemaFingerprint(db)).toBe(before);
    const [free] = await db.sql`SELECT requests_per_window FROM tiers WHERE id = 'free'`;
    expect(free?.requests_per_window).toBe(61);
    const users = await db.sql`SELECT email FROM users`;
    expect(users.map((u) => u.email)).toEqual(['Keep@Example.com']);
  });

  it('serialises concurrent boots with the advisory lock (no catalog race)', async () => {
    const fresh = await createTestDatabase({ applySchema: false });
    const replicas = Array.from({ length: 4 }, () => createSql(fresh.url, { max: 1 }));
    try {
      const script = await readFile(INIT_SQL_PATH, 'utf8');
      await Promise.all(replicas.map((sql) => applySchemaText(sql, script)));
      const [n] = await fresh.sql`SELECT count(*)::int AS n FROM tiers`;
      expect(n?.n).toBe(Object.keys(DEFAULT_TIERS).length);
    } finally {
      await Promise.all(replicas.map((sql) => sql.end({ timeout: 1 })));
      await fresh.drop();
    }
  });

  it("migrates an incident archive made before operator incidents: detector may be null, for source 'operator' only", async () => {
    const old = await createTestDatabase({ applySchema: false });
    try {
      // incident_archive as the earlier init.sql created it (detector NOT NULL).
      const script = await readFile(INIT_SQL_PATH, 'utf8');
      const before = script
        .replace('  detector       text,\n', '  detector       text NOT NULL,\n')
        .replace(/^ALTER TABLE incident_archive .*$/gm, '');
      expect(before).not.toBe(script);
      await applySchemaText(old.sql, before);
      const nullable = async () =>
        (
          await old.sql`SELECT is_nullable FROM information_schema.columns WHERE table_name = 'incident_archive' AND column_name = 'detector'`
        )[0]?.is_nullable;
      expect(await nullable()).toBe('NO');
      await applySchema(old.sql, INIT_SQL_PATH);
      expect(await nullable()).toBe('YES');
      const row = (id: string, source: string, detector: string | null) => old.sql`
        INSERT INTO incident_archive (id, at, updated_at, source, detector, mode, action, status, record)
        VALUES (${id}, now(), now(), ${source}, ${detector}, 'enforce', 'allowlist_add', 'closed', '{}')`;
      await row('inc_mxde53o1_00000001', 'operator', null);
      await expect(row('inc_mxde53o1_00000002', 'guard', null)).rejects.toThrow(/incident_archive_detector_check/);
      await row('inc_mxde53o1_00000003', 'guard', 'rate_spike');
      // And again: still idempotent.
      await applySchema(old.sql, INIT_SQL_PATH);
      const [n] = await old.sql`SELECT count(*)::int AS n FROM incident_archive`;
      expect(n?.n).toBe(2);
    } finally {
      await old.drop();
    }
  });

  it('rolls back a failing script as a whole', async () => {
    await expect(applySchemaText(db.sql, 'CREATE TABLE half_done (x int); SELECT no_such_function();')).rejects.toThrow();
    const [row] = await db.sql`SELECT to_regclass('public.half_done') AS t`;
    expect(row?.t).toBeNull();
  });

  it('enforces the constraints the app relies on', async () => {
    await expect(db.sql`INSERT INTO users (email) VALUES ('keep@example.com')`).rejects.toThrow(/users_email_lower_key/);
    await expect(db.sql`INSERT INTO users (email, role) VALUES ('x@example.com', 'root')`).rejects.toThrow(/users_role_check/);
    const [u] = await db.sql`SELECT id FROM users LIMIT 1`;
    await expect(
      db.sql`INSERT INTO api_keys (user_id, display_prefix, key_hash, status) VALUES (${u!.id}, 'fgk_abc', ${'a'.repeat(64)}, 'revoked')`,
    ).rejects.toThrow(/api_keys_revoked_at_check/);
    await expect(db.sql`INSERT INTO api_keys (user_id, display_prefix, key_hash) VALUES (${u!.id}, 'fgk_abc', 'NOT-HEX')`).rejects.toThrow(
      /api_keys_key_hash_check/,
    );
  });

  it('keeps updated_at current on edits', async () => {
    const [before] = await db.sql`SELECT updated_at FROM users WHERE lower(email) = 'keep@example.com'`;
    await db.sql`UPDATE users SET role = 'operator' WHERE lower(email) = 'keep@example.com'`;
    const [after] = await db.sql`SELECT updated_at FROM users WHERE lower(email) = 'keep@example.com'`;
    expect((after!.updated_at as Date).getTime()).toBeGreaterThan((before!.updated_at as Date).getTime());
  });
});
