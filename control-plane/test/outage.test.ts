import { buildPenaltyRecord, episodeRecordSchema, formatIncidentId, getPenalty, redisKeys, setPenalty } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIncidentStore } from '../src/incidents/store.js';
import { buildGuard, FLOOD, insertKey, seedKey } from './support/guard.js';
import {
  connectTestRedis,
  createTestDatabase,
  startTcpProxy,
  waitUntil,
  type TcpProxy,
  type TestDatabase,
  type TestRedis,
} from './support/services.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('Redis failing during a cycle: no incident lost or duplicated', () => {
  let proxy: TcpProxy;
  let tr: TestRedis;
  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    tr = await connectTestRedis(`redis://127.0.0.1:${proxy.port}`);
  });
  afterAll(async () => {
    await tr?.close();
    await proxy?.stop();
  });

  it('a cycle fails while Redis is unreachable (the process goes on); the next one acts once', async () => {
    const g = await buildGuard(tr, db.sql);
    try {
      const key = await insertKey(db.sql);
      await seedKey(tr, key.id, g.clock.now, FLOOD);
      await proxy.stop();
      await expect(g.guard.runCycle()).rejects.toThrow();
      await proxy.start();
      await waitUntil(
        async () => {
          await g.guard.runCycle();
          return true;
        },
        { timeoutMs: 10_000, intervalMs: 200, message: 'guard never recovered after Redis came back' },
      );
      await g.guard.runCycle();
      const store = createIncidentStore(tr.redis, 100);
      const incidents = (await store.list(100)).incidents.filter((i) => i.keyId === key.id);
      expect(incidents).toHaveLength(1);
      expect((await getPenalty(tr.redis, key.id, g.clock.now))?.incidentId).toBe(incidents[0]!.id);
      expect(await tr.redis.xlen(redisKeys.incidents())).toBe(1);
    } finally {
      await g.close();
    }
  });
});

describe('a cycle cut off between its steps is completed by the next one', () => {
  let tr: TestRedis;
  beforeAll(async () => {
    tr = await connectTestRedis();
  });
  afterAll(async () => {
    await tr?.close();
  });

  it('marker claimed, nothing else written: the incident is created under the claimed id and the key penalised', async () => {
    const g = await buildGuard(tr, db.sql);
    try {
      const key = await insertKey(db.sql);
      const id = formatIncidentId(g.clock.now - 1000, 'aaaaaaaa');
      await tr.redis.set(
        redisKeys.episode(key.id, 'context_flooding'),
        JSON.stringify({
          incidentId: id,
          openedAt: g.clock.now - 1000,
          lastSeenAt: g.clock.now - 1000,
          mode: 'enforce',
          level: null,
          expiresAt: null,
          priorOffences: 0,
        }),
        'PX',
        600_000,
      );
      await seedKey(tr, key.id, g.clock.now, FLOOD);
      await g.guard.runCycle();
      const store = createIncidentStore(tr.redis, 100);
      expect((await store.list(100)).incidents.filter((i) => i.keyId === key.id).map((i) => i.id)).toEqual([id]);
      expect((await getPenalty(tr.redis, key.id, g.clock.now))?.incidentId).toBe(id);
    } finally {
      await g.close();
    }
  });

  it('penalty set but the incident never stored: the penalty is adopted, not set twice, and the incident appears once', async () => {
    const g = await buildGuard(tr, db.sql);
    try {
      const key = await insertKey(db.sql);
      const id = formatIncidentId(g.clock.now - 1000, 'bbbbbbbb');
      await tr.redis.set(
        redisKeys.episode(key.id, 'context_flooding'),
        JSON.stringify({
          incidentId: id,
          openedAt: g.clock.now - 1000,
          lastSeenAt: g.clock.now - 1000,
          mode: 'enforce',
          level: null,
          expiresAt: null,
          priorOffences: 0,
        }),
        'PX',
        600_000,
      );
      const rec = buildPenaltyRecord({ keyId: key.id, level: 'penalty-1', setBy: 'guard', incidentId: id, now: g.clock.now - 1000 });
      await setPenalty(tr.redis, rec, g.clock.now - 1000);
      await seedKey(tr, key.id, g.clock.now, FLOOD);
      await g.guard.runCycle();
      await g.guard.runCycle();
      const store = createIncidentStore(tr.redis, 100);
      const incidents = (await store.list(100)).incidents.filter((i) => i.keyId === key.id);
      expect(incidents).toHaveLength(1);
      expect(incidents[0]).toMatchObject({ id, action: 'penalty', level: 'penalty-1', expiresAt: rec.expiresAt, polls: 2 });
      expect(await getPenalty(tr.redis, key.id, g.clock.now)).toEqual(rec);
      const ep = episodeRecordSchema.parse(JSON.parse((await tr.redis.get(redisKeys.episode(key.id, 'context_flooding')))!));
      expect(ep.expiresAt).toBe(rec.expiresAt);
    } finally {
      await g.close();
    }
  });
});
