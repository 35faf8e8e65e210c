import { DEFAULT_TIERS } from '@fluxgate/contracts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { applySchema } from '../../src/store/migrate.js';
import { loadTiers } from '../../src/store/tiers.js';
import { createTierRegistry, publishTiersChanged, type TierRegistry, type TierRegistryOptions } from '../../src/limits/tier-registry.js';
import { INIT_SQL_PATH, connectTestRedis, createTestDatabase, waitUntil, type TestDatabase, type TestRedis } from '../support/services.js';

let db: TestDatabase;
let tr: TestRedis;
const registries: TierRegistry[] = [];
beforeAll(async () => {
  [db, tr] = await Promise.all([createTestDatabase(), connectTestRedis()]);
});
afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.close()));
  await db.sql`UPDATE tiers SET requests_per_window = 600 WHERE id = 'pro'`;
});
afterAll(async () => {
  await tr?.close();
  await db?.drop();
});

async function registry(opts: Partial<TierRegistryOptions> = {}): Promise<TierRegistry> {
  const r = createTierRegistry({ sql: db.sql, ...opts });
  registries.push(r);
  await r.start();
  return r;
}

describe('tier registry', () => {
  it('loads every tier from Postgres, penalty levels included', async () => {
    const r = await registry();
    expect(r.loadedAt).toBeGreaterThan(0);
    expect(r.get('free')).toEqual(DEFAULT_TIERS.free);
    expect(r.get('penalty-3')).toEqual(DEFAULT_TIERS['penalty-3']);
    expect(r.isPenalty('penalty-1')).toBe(true);
    expect(r.isPenalty('pro')).toBe(false);
    expect(r.all()).toHaveLength(6);
  });

  it('reloads on a channels.tiers message within a second', async () => {
    const r = await registry({ subscriber: await tr.connect() });
    await db.sql`UPDATE tiers SET requests_per_window = 777 WHERE id = 'pro'`;
    expect(r.get('pro').requestsPerWindow).toBe(600);
    await publishTiersChanged(tr.redis, 'pro');
    await waitUntil(() => r.get('pro').requestsPerWindow === 777, { timeoutMs: 1000, message: 'tier change not seen' });
  });

  it('reloads periodically when no message comes', async () => {
    const r = await registry({ refreshIntervalMs: 200 });
    await db.sql`UPDATE tiers SET requests_per_window = 555 WHERE id = 'pro'`;
    await waitUntil(() => r.get('pro').requestsPerWindow === 555, { timeoutMs: 2000, message: 'periodic refresh did not happen' });
  });

  it('keeps the same object for an unchanged tier, so per-tier caches stay warm', async () => {
    const r = await registry();
    const before = r.get('enterprise');
    await r.refresh();
    expect(r.get('enterprise')).toBe(before);
  });

  it('an unknown id gets the free tier (and says so in its id)', async () => {
    const r = await registry();
    expect(r.get('no-such-tier')).toEqual(DEFAULT_TIERS.free);
    expect(r.get('no-such-tier').id).toBe('free');
  });

  it('an id it does not know is reloaded for before answering, the loads shared by every caller', async () => {
    let loads = 0;
    const r = await registry({ load: (sql) => (loads++, loadTiers(sql)) });
    const before = loads;
    await db.sql`INSERT INTO tiers (id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst) VALUES ('fresh', 7, 700, 60, 2, 3) ON CONFLICT (id) DO NOTHING`;
    expect(r.knows('fresh')).toBe(false);
    const answers = await Promise.all(Array.from({ length: 20 }, () => r.resolve('fresh')));
    for (const t of answers) expect(t).toMatchObject({ id: 'fresh', burst: 3 });
    // The first caller's load, and one queued after it for the callers that came while it ran
    // (a load already running may have begun before the row existed).
    expect(loads - before).toBe(2);
    // Known now: answered synchronously, with no load.
    const loaded = loads;
    expect(r.resolve('fresh')).toMatchObject({ id: 'fresh' });
    expect(loads).toBe(loaded);
    await db.sql`DELETE FROM tiers WHERE id = 'fresh'`;
  });

  it('an id no load finds is answered as free, and not reloaded for again right away', async () => {
    let loads = 0;
    const r = await registry({ load: (sql) => (loads++, loadTiers(sql)) });
    const before = loads;
    expect(await r.resolve('vanished')).toEqual(DEFAULT_TIERS.free);
    expect(r.resolve('vanished')).toEqual(DEFAULT_TIERS.free);
    expect(loads - before).toBe(1);
  });

  it('Postgres unavailable at boot: the defaults serve, and the next refresh loads', async () => {
    let fail = true;
    const r = await registry({ load: (sql) => (fail ? Promise.reject(new Error('connection refused')) : loadTiers(sql)) });
    expect(r.loadedAt).toBe(0);
    expect(r.get('pro')).toEqual(DEFAULT_TIERS.pro);
    fail = false;
    await db.sql`UPDATE tiers SET requests_per_window = 601 WHERE id = 'pro'`;
    expect(await r.refresh()).toBe(true);
    expect(r.get('pro').requestsPerWindow).toBe(601);
  });
});

describe("burst is the request bucket's capacity (issue 12)", () => {
  it('a database from before issue 12 (burst 0 = "one at a time") is migrated to burst 1, and 0 is refused from then on', async () => {
    const old = await createTestDatabase({ applySchema: false });
    try {
      // The tiers table as init.sql created it until issue 12.
      await old.sql`CREATE TABLE tiers (
        id text PRIMARY KEY, requests_per_window integer NOT NULL, tokens_per_window bigint NOT NULL,
        window_seconds integer NOT NULL, concurrent_streams integer NOT NULL,
        burst integer NOT NULL DEFAULT 0 CHECK (burst >= 0), is_penalty boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`;
      await old.sql`INSERT INTO tiers (id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst, is_penalty)
                    VALUES ('penalty-1', 10, 10000, 60, 2, 0, true), ('custom', 5, 500, 60, 1, 0, false), ('free', 60, 100000, 60, 4, 10, false)`;
      await applySchema(old.sql, INIT_SQL_PATH);
      const tiers = new Map((await loadTiers(old.sql)).map((t) => [t.id, t]));
      expect(tiers.get('penalty-1')?.burst).toBe(1);
      expect(tiers.get('custom')?.burst).toBe(1);
      expect(tiers.get('free')?.burst).toBe(10);
      await expect(old.sql`UPDATE tiers SET burst = 0 WHERE id = 'custom'`).rejects.toThrow(/tiers_burst_check/);
      // Idempotent: applied again, nothing changes.
      await applySchema(old.sql, INIT_SQL_PATH);
      expect((await loadTiers(old.sql)).find((t) => t.id === 'custom')?.burst).toBe(1);
    } finally {
      await old.drop();
    }
  });

  it('the seeded tiers admit at most burst at once: every seeded burst is at least 1', async () => {
    for (const t of await loadTiers(db.sql)) expect(t.burst).toBeGreaterThanOrEqual(1);
    await expect(db.sql`UPDATE tiers SET burst = 0 WHERE id = 'pro'`).rejects.toThrow(/tiers_burst_check/);
  });
});
