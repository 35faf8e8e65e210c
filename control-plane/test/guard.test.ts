import { getIpBlock, getPenalty, liftPenalty, recordOperatorAction, redisKeys, shadowDecisionSchema } from '@fluxgate/contracts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createIncidentStore, type IncidentStore } from '../src/incidents/store.js';
import { buildGuard, FLOOD, insertKey, seedIp, seedKey, type TestGuard } from './support/guard.js';
import { connectTestRedis, createTestDatabase, type TestDatabase, type TestRedis } from './support/services.js';

let tr: TestRedis;
let db: TestDatabase;
let store: IncidentStore;
const guards: TestGuard[] = [];
beforeAll(async () => {
  tr = await connectTestRedis();
  db = await createTestDatabase();
  store = createIncidentStore(tr.redis, 1000);
});
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
  // Each test starts from an empty Redis namespace.
  const keys = await tr.redis.keys('*');
  if (keys.length > 0) await tr.redis.del(...keys.map((k) => k.slice(tr.prefix.length)));
});
afterAll(async () => {
  await tr?.close();
  await db?.drop();
});
const guardWith = async (env: Record<string, string> = {}): Promise<TestGuard> => {
  const g = await buildGuard(tr, db.sql, env);
  guards.push(g);
  return g;
};
const incidentsOf = async (keyId: string) => (await store.list(1000)).incidents.filter((i) => i.keyId === keyId);

describe('guard cycle: detect, penalise, one incident per episode', () => {
  it('puts a flooding key in the penalty box with one incident, updated on later polls, archived and summarised', async () => {
    const g = await guardWith();
    const abuser = await insertKey(db.sql, 'free');
    const benign = await insertKey(db.sql, 'free');
    await seedKey(tr, abuser.id, g.clock.now, FLOOD);
    await seedKey(tr, benign.id, g.clock.now, { req: 40, ptok: 30_000, ctok: 40_000, ptok_max: 2_000, s2xx: 40 });

    await g.guard.runCycle();
    const penalty = await getPenalty(tr.redis, abuser.id, g.clock.now);
    expect(penalty).toMatchObject({ level: 'penalty-1', setBy: 'guard' });
    expect(await getPenalty(tr.redis, benign.id, g.clock.now)).toBeNull();
    const [incident, ...more] = await incidentsOf(abuser.id);
    expect(more).toEqual([]);
    expect(incident).toMatchObject({
      id: penalty!.incidentId,
      detector: 'context_flooding',
      mode: 'enforce',
      action: 'penalty',
      level: 'penalty-1',
      expiresAt: penalty!.expiresAt,
      keyPrefix: abuser.prefix,
      ownerEmail: abuser.email,
      tier: 'free',
      status: 'open',
      polls: 1,
    });
    expect(incident!.evidence.promptTokens).toBe(300_000);
    expect(incident!.thresholds.promptTokens).toBe(165_000);

    for (let i = 0; i < 3; i++) {
      g.clock.now += 1000;
      await g.guard.runCycle();
    }
    const after = await incidentsOf(abuser.id);
    expect(after).toHaveLength(1);
    expect(after[0]!.polls).toBe(4);
    expect(await tr.redis.xlen(redisKeys.incidents())).toBe(1);
    expect((await getPenalty(tr.redis, abuser.id, g.clock.now))!.setAt).toBe(penalty!.setAt);

    // Archived once, and summarised (Ollama is unreachable here: the template, marked so).
    await g.guard.summariesIdle();
    await g.guard.runCycle();
    const rows = await db.sql<
      { id: string; detector: string; summary_source: string | null; record: { polls: number } }[]
    >`SELECT id, detector, summary_source, record FROM incident_archive WHERE key_id = ${abuser.id}`;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: incident!.id, detector: 'context_flooding', summary_source: 'template' });
    const stored = await store.get(incident!.id);
    expect(stored!.summarySource).toBe('template');
    expect(stored!.summary).toContain(abuser.prefix);
    expect(stored!.summary).not.toContain(abuser.email);
    const metrics = await g.metrics.registry.metrics();
    expect(metrics).toMatch(/fluxgate_guard_detections_total\{detector="context_flooding",mode="enforce"\} [1-9]/);
    expect(metrics).toMatch(/fluxgate_guard_summaries_total\{source="template"\} 1/);
    expect(metrics).toMatch(/fluxgate_guard_active_penalties 1/);
    expect(metrics).toMatch(/fluxgate_guard_cycle_duration_seconds_count\{phase="total"\} 5/);
    expect(metrics).toMatch(/fluxgate_guard_actions_total\{action="penalty"\} 1/);
    expect(metrics).toMatch(/fluxgate_guard_active_keys 2/);
  });

  it('a key already in the box for one episode opens no second incident: other detectors are listed in it', async () => {
    const g = await guardWith();
    const key = await insertKey(db.sql);
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    const penalty = await getPenalty(tr.redis, key.id, g.clock.now);
    // Next poll: it also hammers through 429s and repeats one prompt.
    g.clock.now += 1000;
    await seedKey(tr, key.id, g.clock.now, { req: 200, r429: 190 }, { prompts: { aaaaaaaaaaaa: 150 } });
    await g.guard.runCycle();
    const incidents = await incidentsOf(key.id);
    expect(incidents).toHaveLength(1);
    expect(incidents[0]).toMatchObject({ id: penalty!.incidentId, detector: 'context_flooding', level: 'penalty-1' });
    expect([...incidents[0]!.alsoTripped].sort()).toEqual(['hammering_429', 'repeated_prompt', 'token_overconsumption']);
    expect(await getPenalty(tr.redis, key.id, g.clock.now)).toEqual(penalty);
    expect(await tr.redis.zcard(redisKeys.offences(key.id))).toBe(1);
  });

  it('repeat offenders climb, up to the configured ceiling', async () => {
    const g = await guardWith();
    const key = await insertKey(db.sql);
    await tr.redis.zadd(redisKeys.offences(key.id), g.clock.now - 3600_000, 'inc_old_00000001');
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    expect((await getPenalty(tr.redis, key.id, g.clock.now))?.level).toBe('penalty-2');
    expect((await incidentsOf(key.id))[0]).toMatchObject({ priorOffences: 1, level: 'penalty-2', cappedFrom: null });

    const capped = await guardWith({ GUARD_MAX_LEVEL: '1' });
    const other = await insertKey(db.sql);
    await tr.redis.zadd(
      redisKeys.offences(other.id),
      capped.clock.now - 60_000,
      'inc_a_00000001',
      capped.clock.now - 30_000,
      'inc_b_00000002',
    );
    await seedKey(tr, other.id, capped.clock.now, FLOOD);
    await capped.guard.runCycle();
    expect((await getPenalty(tr.redis, other.id, capped.clock.now))?.level).toBe('penalty-1');
    expect((await incidentsOf(other.id))[0]).toMatchObject({ level: 'penalty-1', cappedFrom: 'penalty-3' });
  });

  it('expiry is an automatic pardon; abuse resumed in the same episode escalates the same incident', async () => {
    const g = await guardWith({ GUARD_PENALTY_SECONDS: 'penalty-1=5,penalty-2=5' });
    const key = await insertKey(db.sql);
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    const first = await getPenalty(tr.redis, key.id, g.clock.now);
    expect(first?.level).toBe('penalty-1');

    g.clock.now += 6000; // past the penalty; the abuse goes on in the current window
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    const [incident, ...more] = await incidentsOf(key.id);
    expect(more).toEqual([]);
    expect(incident).toMatchObject({ id: first!.incidentId, action: 'escalate', level: 'penalty-2', status: 'open' });
    expect((await getPenalty(tr.redis, key.id, g.clock.now))?.level).toBe('penalty-2');

    // And once more: each step of the episode is an offence, so the next one is level 3.
    g.clock.now += 6000;
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    expect((await getPenalty(tr.redis, key.id, g.clock.now))?.level).toBe('penalty-3');
    expect(await incidentsOf(key.id)).toHaveLength(1);
    expect(await tr.redis.zcard(redisKeys.offences(key.id))).toBe(3);
  });

  it('a pardon closes the incident, resets the escalation and gives a grace: no re-penalty meanwhile', async () => {
    const g = await guardWith();
    const key = await insertKey(db.sql);
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    const penalty = await getPenalty(tr.redis, key.id, g.clock.now);
    expect(await liftPenalty(tr.redis, key.id)).toBe(true);

    g.clock.now += 1000;
    await g.guard.runCycle(); // the window still shows the flood
    expect(await getPenalty(tr.redis, key.id, g.clock.now)).toBeNull();
    const [incident] = await incidentsOf(key.id);
    expect(incident).toMatchObject({ id: penalty!.incidentId, status: 'pardoned' });
    expect(await tr.redis.exists(redisKeys.pardonGrace(key.id))).toBe(1);
    expect(await tr.redis.zcard(redisKeys.offences(key.id))).toBe(0);
    expect(await tr.redis.pttl(redisKeys.pardonGrace(key.id))).toBeGreaterThan(29 * 60_000);
  });

  it('shadow mode (set at run time) and the allowlist record what would have been done, without acting', async () => {
    const g = await guardWith({ GUARD_ALLOWLIST: 'account:vip@example.com' });
    const shadowed = await insertKey(db.sql);
    const vip = await insertKey(db.sql, 'free', 'vip@example.com');
    const listedInDb = await insertKey(db.sql);
    await db.sql`INSERT INTO guard_allowlist (kind, value, reason) VALUES ('key', ${listedInDb.id}, 'load test')`;
    await tr.redis.hset(redisKeys.detectorModes(), 'repeated_prompt', 'shadow');
    await seedKey(tr, shadowed.id, g.clock.now, { req: 35, s2xx: 35 }, { prompts: { abcabcabcabc: 33 } });
    await seedKey(tr, vip.id, g.clock.now, FLOOD);
    await seedKey(tr, listedInDb.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    await g.guard.runCycle();

    for (const [k, suppressedBy, detector] of [
      [shadowed, 'shadow_mode', 'repeated_prompt'],
      [vip, 'allowlist', 'context_flooding'],
      [listedInDb, 'allowlist', 'context_flooding'],
    ] as const) {
      expect(await getPenalty(tr.redis, k.id, g.clock.now)).toBeNull();
      const incidents = await incidentsOf(k.id);
      expect(incidents).toHaveLength(1);
      expect(incidents[0]).toMatchObject({
        detector,
        action: 'none',
        suppressedBy,
        wouldAction: 'penalty',
        wouldLevel: 'penalty-1',
        polls: 2,
      });
    }
    expect((await incidentsOf(shadowed.id))[0]!.mode).toBe('shadow');
    const shadow = await tr.redis.xrange(redisKeys.shadowDecisions(), '-', '+');
    expect(shadow).toHaveLength(3);
    expect(shadow.map(([, f]) => shadowDecisionSchema.parse(JSON.parse(f[1]!)).suppressedBy).sort()).toEqual([
      'allowlist',
      'allowlist',
      'shadow_mode',
    ]);
    expect(await g.metrics.registry.metrics()).toMatch(/fluxgate_guard_detector_mode\{detector="repeated_prompt",mode="shadow"\} 1/);
  });

  it('blocks a credential-stuffing IP (the IP-block record the data plane will enforce)', async () => {
    const g = await guardWith();
    await seedIp(tr, '203.0.113.9', g.clock.now, { badkey: 45, req: 45 });
    await seedIp(tr, '203.0.113.10', g.clock.now, { badkey: 2, req: 50 });
    await g.guard.runCycle();
    const block = await getIpBlock(tr.redis, '203.0.113.9', g.clock.now);
    expect(block).toMatchObject({ ip: '203.0.113.9', setBy: 'guard' });
    expect(await getIpBlock(tr.redis, '203.0.113.10', g.clock.now)).toBeNull();
    const { incidents } = await store.list(10);
    expect(incidents.filter((i) => i.detector === 'credential_stuffing')).toMatchObject([
      { id: block!.incidentId, clientIp: '203.0.113.9', keyId: null, action: 'ip_block' },
    ]);
  });

  it('a new leader starts from the baselines its predecessor saved, so a rate spike is caught at once', async () => {
    const key = await insertKey(db.sql);
    const first = await guardWith({ GUARD_MODES: 'rate_spike=enforce' });
    for (let i = 0; i < 30; i++) {
      await seedKey(tr, key.id, first.clock.now, { req: 2, s2xx: 2 });
      await first.guard.runCycle();
      first.clock.now += 10_000;
    }
    expect(await tr.redis.hexists(redisKeys.guardBaselines(), key.id)).toBe(1);
    await first.close();

    // The next leader: a fresh process state; the window that just ended is a spike.
    const next = await guardWith();
    next.clock.now = first.clock.now;
    await seedKey(tr, key.id, next.clock.now - 10_000, { req: 40, s2xx: 40 });
    await next.guard.runCycle();
    const [incident] = await incidentsOf(key.id);
    expect(incident).toMatchObject({ detector: 'rate_spike', action: 'penalty' });
    expect(incident!.evidence.baselineRequests).toBeCloseTo(2, 0);
  });

  it('summarises and archives incidents a previous leader stored but never summarised or archived', async () => {
    const g = await guardWith();
    const key = await insertKey(db.sql);
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    await g.guard.summariesIdle();
    const [incident] = await incidentsOf(key.id);
    // As if the leader died before its summary was written.
    expect(await tr.redis.hdel(redisKeys.incidentSummaries(), incident!.id)).toBe(1);
    await g.close();
    // …and before its archive write went through.
    await db.sql`DELETE FROM incident_archive WHERE id = ${incident!.id}`;
    const next = await guardWith();
    await next.guard.runCycle();
    await next.guard.summariesIdle();
    expect((await store.get(incident!.id))?.summarySource).toBe('template');
    await next.guard.runCycle();
    const [row] = await db.sql<{ summary_source: string }[]>`SELECT summary_source FROM incident_archive WHERE id = ${incident!.id}`;
    expect(row?.summary_source).toBe('template');
  });

  it('archives the operator incidents the data plane wrote (it has no archive of its own), a null detector included', async () => {
    const g = await guardWith();
    await g.guard.runCycle();
    // As the admin routes, the CLI and the portal record an action: straight into the ring buffer.
    const op = await recordOperatorAction(
      tr.redis,
      {
        action: 'allowlist_add',
        actor: 'admin-token',
        reason: 'office NAT',
        at: g.clock.now,
        what: 'Operator allowlisted cidr:203.0.113.0/24.',
      },
      1000,
    );
    // The next backfill (every BACKFILL_EVERY = 30 cycles) archives it.
    const archived = async () => (await db.sql`SELECT 1 FROM incident_archive WHERE id = ${op.id}`).length === 1;
    let cycles = 0;
    while (!(await archived()) && cycles < 31) {
      g.clock.now += 2000;
      await g.guard.runCycle();
      cycles++;
    }
    expect(cycles).toBeGreaterThan(0);
    expect(await archived()).toBe(true);
    const [row] = await db.sql<
      { source: string; detector: string | null; action: string; summary_source: string; record: { actor: string } }[]
    >`
      SELECT source, detector, action, summary_source, record FROM incident_archive WHERE id = ${op.id}`;
    expect(row).toMatchObject({
      source: 'operator',
      detector: null,
      action: 'allowlist_add',
      summary_source: 'template',
      record: { actor: 'admin-token' },
    });
  });

  it('skips and counts malformed and old-format records, and keeps working', async () => {
    const g = await guardWith();
    const key = await insertKey(db.sql);
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await seedKey(tr, 'junk-key', g.clock.now, { req: 'many' });
    await tr.redis.set(redisKeys.episode(key.id, 'context_flooding'), '{"incidentId":42}');
    await tr.redis.hset(redisKeys.detectorModes(), 'no_such_detector', 'shadow');
    await tr.redis.zadd(redisKeys.guardWatch(), g.clock.now + 60_000, 'not json');
    await g.guard.runCycle();
    expect((await getPenalty(tr.redis, key.id, g.clock.now))?.level).toBe('penalty-1');
    const text = await g.metrics.registry.metrics();
    expect(text).toMatch(/fluxgate_guard_malformed_records_total\{kind="usage"\} 1/);
    expect(text).toMatch(/fluxgate_guard_malformed_records_total\{kind="episode"\} 2/);
    expect(text).toMatch(/fluxgate_guard_malformed_records_total\{kind="mode"\} 1/);
    // An incident of an older format in the buffer is skipped by readers, not fatal.
    await tr.redis.hset(redisKeys.incidentRecords(), 'inc_old_00000000', JSON.stringify({ v: 0, id: 'inc_old_00000000' }));
    await tr.redis.xadd(redisKeys.incidents(), '*', 'id', 'inc_old_00000000', 'data', '{}');
    const listed = await store.list(10);
    expect(listed.skipped).toBe(1);
    expect(listed.incidents).toHaveLength(1);
  });
});
