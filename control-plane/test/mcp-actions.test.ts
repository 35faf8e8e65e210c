import { channels, getPenalty, redisKeys, type Incident } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { McpContext } from '../src/mcp/context.js';
import { buildGuard, FLOOD, insertKey, seedKey, type TestGuard } from './support/guard.js';
import { connect, mcpContext, OPERATOR, READER, type Connected } from './support/mcp.js';
import { connectTestRedis, createTestDatabase, waitUntil, type TestDatabase, type TestRedis } from './support/services.js';

// The acting tools (issue 14, issue 18's rails) through the SDK's Client over InMemoryTransport,
// against real Redis and Postgres, and the real guard cycle for what the guard does next.
let tr: TestRedis;
let db: TestDatabase;
let ctx: McpContext;
const open: Connected[] = [];
const guards: TestGuard[] = [];
beforeAll(async () => {
  tr = await connectTestRedis();
  db = await createTestDatabase();
  ctx = await mcpContext(tr, db.sql);
});
afterEach(async () => {
  await Promise.all([...open.splice(0).map((c) => c.close()), ...guards.splice(0).map((g) => g.close())]);
  const keys = await tr.redis.keys('*');
  if (keys.length > 0) await tr.redis.del(...keys.map((k) => k.slice(tr.prefix.length)));
});
afterAll(async () => {
  await tr?.close();
  await db?.drop();
});
const as = async (identity = OPERATOR): Promise<Connected> => {
  const c = await connect(ctx, identity);
  open.push(c);
  return c;
};
const guard = async (env: Record<string, string> = {}): Promise<TestGuard> => {
  const g = await buildGuard(tr, db.sql, env);
  guards.push(g);
  return g;
};
const incidentCount = async (): Promise<number> => tr.redis.xlen(redisKeys.incidents());
const archived = async (id: string) =>
  (
    await db.sql<
      { source: string; action: string; record: Incident }[]
    >`SELECT source, action, record FROM incident_archive WHERE id = ${id}`
  )[0];

describe('throttle_key', () => {
  it('refuses beyond MCP_MAX_PENALTY without force, changes nothing on a dry run, and with force records that it was forced', async () => {
    const key = await insertKey(db.sql, 'pro');
    const now = Date.now();
    await tr.redis.zadd(redisKeys.replicas(), now, JSON.stringify({ id: 'replica-a', address: '10.0.0.7', port: 8443 }));
    await tr.redis.zadd(redisKeys.replicas(), now - 60_000, JSON.stringify({ id: 'replica-dead', address: '10.0.0.8', port: 8443 }));
    const c = await as();

    const refused = await c.error('throttle_key', {
      key: key.prefix,
      level: 'penalty-2',
      duration: '48h',
      reason: 'scraping the catalogue',
      detector: 'repeated_prompt',
    });
    expect(refused).toBe(
      'duration: 48h is longer than MCP_MAX_PENALTY (24h); pass force: true to set it anyway (the incident records that it was forced), or a shorter duration',
    );
    // No detector named and no incident to take one from: the action answers none (detector null).
    expect(
      await c.ok('throttle_key', { key: key.prefix, level: 'penalty-2', duration: '2h', reason: 'scraping the catalogue', dryRun: true }),
    ).toMatchObject({ dryRun: true, changed: false, detector: null, incidentId: null });

    const dry = await c.ok('throttle_key', {
      key: key.prefix,
      level: 'penalty-2',
      duration: '2h',
      reason: 'scraping the catalogue',
      detector: 'repeated_prompt',
      dryRun: true,
    });
    expect(dry).toMatchObject({
      found: true,
      dryRun: true,
      changed: false,
      incidentId: null,
      key: { id: key.id, prefix: key.prefix },
      before: { effectiveTier: 'pro', penalty: null },
      after: { effectiveTier: 'penalty-2', durationSeconds: 7200 },
      forced: false,
      replicas: [{ id: 'replica-a', address: '10.0.0.7', port: 8443 }],
    });
    expect(Date.parse(dry.after.until) - Date.now()).toBeGreaterThan(7100_000);
    expect(await getPenalty(tr.redis, key.id)).toBeNull();
    expect(await incidentCount()).toBe(0);

    const done = await c.ok('throttle_key', {
      key: key.id,
      level: 'penalty-3',
      duration: '48h',
      force: true,
      reason: 'credential sharing',
      detector: 'leaked_key',
    });
    expect(done).toMatchObject({
      changed: true,
      dryRun: false,
      forced: true,
      before: { effectiveTier: 'pro' },
      after: { effectiveTier: 'penalty-3', durationSeconds: 172_800 },
    });
    const penalty = await getPenalty(tr.redis, key.id);
    expect(penalty).toMatchObject({
      level: 'penalty-3',
      setBy: 'operator',
      incidentId: done.incidentId,
      actor: 'mcp:alice',
      forced: true,
      reason: 'credential sharing',
    });
    const incident = await ctx.store.get(done.incidentId);
    expect(incident).toMatchObject({
      source: 'operator',
      actor: 'mcp:alice',
      reason: 'credential sharing',
      detector: 'leaked_key',
      action: 'operator_throttle',
      status: 'closed',
      endedAt: incident!.at,
      level: 'penalty-3',
      expiresAt: penalty!.expiresAt,
      keyId: key.id,
      keyPrefix: key.prefix,
      ownerEmail: key.email,
      evidence: { durationSeconds: 172_800, forced: 1 },
      thresholds: { maxPenaltySeconds: 86_400 },
      summarySource: 'template',
    });
    expect(incident!.summary).toMatch(/forced beyond MCP_MAX_PENALTY \(24h\).*credential sharing/);
    expect(await archived(done.incidentId)).toMatchObject({ source: 'operator', action: 'operator_throttle' });
    // One closed incident records the act; the penalty ends by its own expiry (nothing for the guard to watch).
    expect(await tr.redis.zcard(redisKeys.guardWatch())).toBe(0);
    expect(await incidentCount()).toBe(1);

    // A throttle that answers no detector: its incident's detector is null, in Redis and in the archive.
    const plain = await insertKey(db.sql);
    const none = await c.ok('throttle_key', { key: plain.id, level: 'penalty-1', duration: '10m', reason: 'asked by the owner' });
    expect(none).toMatchObject({ changed: true, detector: null });
    expect(await ctx.store.get(none.incidentId)).toMatchObject({
      detector: null,
      source: 'operator',
      actor: 'mcp:alice',
      status: 'closed',
    });
    const [row] = await db.sql<{ detector: string | null }[]>`SELECT detector FROM incident_archive WHERE id = ${none.incidentId}`;
    expect(row).toEqual({ detector: null });
  });

  it('takes the detector from the incident it names, and MCP_MAX_PENALTY from the config', async () => {
    const key = await insertKey(db.sql);
    const g = await guard({ GUARD_MODES: 'context_flooding=shadow' });
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    const [shadow] = (await ctx.store.list(10)).incidents;
    expect(shadow).toMatchObject({ keyId: key.id, suppressedBy: 'shadow_mode' });
    const short = await mcpContext(tr, db.sql, { MCP_MAX_PENALTY: '600' });
    const c = await connect(short, OPERATOR);
    open.push(c);
    expect(await c.error('throttle_key', { key: key.id, level: 'penalty-1', reason: 'too long for this cap' })).toMatch(
      /^duration: 15m is longer than MCP_MAX_PENALTY \(10m\)/,
    );
    const done = await c.ok('throttle_key', {
      key: key.id,
      level: 'penalty-1',
      duration: 300,
      reason: 'act on the shadow finding',
      incidentId: shadow!.id,
    });
    expect(done).toMatchObject({ changed: true, detector: 'context_flooding', forced: false });
    expect(
      await c.error('throttle_key', {
        key: (await insertKey(db.sql)).id,
        level: 'penalty-1',
        duration: 300,
        reason: 'wrong incident',
        incidentId: shadow!.id,
      }),
    ).toMatch(/^incidentId: incident .* is about another key/);
  });

  it('a Redis error part way is a tool error, not a crash, and the incident tells what really happened', async () => {
    const key = await insertKey(db.sql);
    // The index under the wrong type: the protocol's ZADD fails, its SET of the record (the truth) does not.
    await tr.redis.set(redisKeys.penaltyIndex(), 'not a sorted set');
    const c = await as();
    const text = await c.error('throttle_key', { key: key.id, level: 'penalty-1', reason: 'index broken', detector: 'leaked_key' });
    expect(text).toMatch(/^throttle_key could not complete \(ReplyError\)/);
    const live = await getPenalty(tr.redis, key.id);
    expect(live).not.toBeNull();
    expect(await ctx.store.get(live!.incidentId!)).toMatchObject({ action: 'operator_throttle', status: 'closed' });
    // Lifting: DEL of the record works, ZREM on the broken index fails. The record is the truth, so
    // the pardon goes on (grace and all) and says so.
    expect(await c.ok('pardon_key', { key: key.id, reason: 'index broken' })).toMatchObject({ changed: true });
    expect(await getPenalty(tr.redis, key.id)).toBeNull();
    expect(await tr.redis.exists(redisKeys.pardonGrace(key.id))).toBe(1);
    expect((await ctx.store.list(1)).incidents[0]).toMatchObject({ action: 'pardon', status: 'closed' });
  });

  it('an unknown key is a clean not-found answer and writes nothing', async () => {
    const c = await as();
    const r = await c.ok('throttle_key', {
      key: '00000000-0000-4000-8000-000000000001',
      level: 'penalty-1',
      reason: 'no such key',
      detector: 'leaked_key',
    });
    expect(r).toEqual({ found: false, message: 'no API key has id 00000000-0000-4000-8000-000000000001' });
    expect(await incidentCount()).toBe(0);
  });
});

describe('explain_key and pardon_key on a key the guard penalised', () => {
  it('explains the penalty with its detector and evidence; a dry run changes nothing; the pardon lifts it, resets the escalation, and the grace keeps the guard off', async () => {
    const key = await insertKey(db.sql, 'free');
    const g = await guard();
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    const penalty = (await getPenalty(tr.redis, key.id))!;
    expect(penalty).toMatchObject({ level: 'penalty-1', setBy: 'guard' });
    const reader = await as(READER);
    const ex = await reader.ok('explain_key', { key: key.prefix });
    expect(ex).toMatchObject({
      found: true,
      limited: true,
      ownTier: { id: 'free' },
      effectiveTier: { id: 'penalty-1' },
      penalty: { level: 'penalty-1', setBy: 'guard', incidentId: penalty.incidentId },
      incident: {
        id: penalty.incidentId,
        detector: 'context_flooding',
        evidence: { promptTokens: 300_000 },
        thresholds: { promptTokens: 165_000 },
      },
      allowlist: [],
      grace: null,
    });
    expect(ex.explanation).toMatch(/limited by penalty-1 instead of its own tier free, set by the guard \(context_flooding\)/);
    expect(ex.explanation).toMatch(/promptTokens 300000 \(threshold 165000\)/);
    expect((await reader.ok('debug_guard_state', { key: key.id })).incident.id).toBe(penalty.incidentId);

    const c = await as();
    const offencesBefore = await tr.redis.zcard(redisKeys.offences(key.id));
    expect(offencesBefore).toBe(1);
    const dry = await c.ok('pardon_key', { key: key.prefix, reason: 'false positive: nightly batch job', dryRun: true });
    expect(dry).toMatchObject({
      dryRun: true,
      changed: false,
      before: { effectiveTier: 'penalty-1' },
      after: { effectiveTier: 'free' },
      pardonedIncidentId: penalty.incidentId,
      incidentId: null,
    });
    expect(await getPenalty(tr.redis, key.id)).toEqual(penalty);
    expect(await tr.redis.zcard(redisKeys.offences(key.id))).toBe(1);
    expect(await tr.redis.exists(redisKeys.pardonGrace(key.id))).toBe(0);
    expect(await incidentCount()).toBe(1);

    const done = await c.ok('pardon_identity', { key: key.prefix, reason: 'false positive: nightly batch job' });
    expect(done).toMatchObject({ changed: true, after: { effectiveTier: 'free' }, pardonedIncidentId: penalty.incidentId });
    expect(await getPenalty(tr.redis, key.id)).toBeNull();
    expect(await tr.redis.zcard(redisKeys.offences(key.id))).toBe(0);
    expect(await ctx.store.get(penalty.incidentId!)).toMatchObject({ status: 'pardoned' });
    const grace = JSON.parse((await tr.redis.get(redisKeys.pardonGrace(key.id)))!);
    expect(grace).toMatchObject({ keyId: key.id, incidentId: penalty.incidentId, until: Date.parse(done.graceUntil) });
    expect(grace.until - Date.now()).toBeGreaterThan(1700_000);
    expect(await ctx.store.get(done.incidentId)).toMatchObject({
      source: 'operator',
      action: 'pardon',
      actor: 'mcp:alice',
      detector: 'context_flooding',
      reason: 'false positive: nightly batch job',
      status: 'closed',
    });

    // The same abuse keeps showing in the counters: within its grace the key is not penalised again.
    for (let n = 0; n < 3; n++) {
      g.clock.now += 1000;
      await seedKey(tr, key.id, g.clock.now, FLOOD);
      await g.guard.runCycle();
    }
    expect(await getPenalty(tr.redis, key.id)).toBeNull();
    expect((await ctx.store.get(penalty.incidentId!))!.status).toBe('pardoned');
    expect((await reader.ok('explain_key', { key: key.id })).grace).toMatchObject({ incidentId: penalty.incidentId });
    expect(await c.ok('pardon_key', { key: key.id, reason: 'again' })).toMatchObject({
      changed: false,
      message: expect.stringMatching(/nothing to pardon/),
    });
  });

  it('pardons a penalty that already ended when its incident is named (its offence no longer counts)', async () => {
    const key = await insertKey(db.sql);
    const g = await guard({ GUARD_PENALTY_SECONDS: 'penalty-1=1' });
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    const incidentId = (await ctx.store.list(1)).incidents[0]!.id;
    // The record's PX is the penalty's one second: it is gone from Redis by itself.
    await waitUntil(async () => (await tr.redis.exists(redisKeys.penalty(key.id))) === 0, {
      timeoutMs: 5000,
      message: 'penalty did not expire',
    });
    const c = await as();
    expect(await tr.redis.zcard(redisKeys.offences(key.id))).toBe(1);
    const done = await c.ok('pardon_key', { key: key.id, reason: 'that was our load test', incidentId });
    expect(done).toMatchObject({ changed: true, before: { penalty: null }, pardonedIncidentId: incidentId });
    expect(await tr.redis.zcard(redisKeys.offences(key.id))).toBe(0);
    expect((await ctx.store.get(incidentId))!.status).toBe('pardoned');
  });
});

describe('allowlist and detector modes (issue 18 rails through MCP)', () => {
  it('an allowlisted key flooding is never penalised but produces a shadow incident; the change is audited; removing it is too', async () => {
    const key = await insertKey(db.sql);
    const c = await as();
    const dry = await c.ok('add_allowlist_entry', { kind: 'key', value: key.prefix, reason: 'internal eval runner', dryRun: true });
    expect(dry).toMatchObject({ changed: false, dryRun: true, entry: { kind: 'key', value: key.id } });
    expect((await c.ok('list_allowlist')).entries).toEqual([]);
    const added = await c.ok('add_allowlist_entry', { kind: 'key', value: key.prefix, reason: 'internal eval runner', expiresIn: '7d' });
    expect(added).toMatchObject({
      changed: true,
      existed: false,
      entry: { kind: 'key', value: key.id, createdBy: 'mcp:alice', reason: 'internal eval runner', source: 'database' },
    });
    expect(await c.error('add_allowlist_entry', { kind: 'cidr', value: '10.0.0.0/99', reason: 'bad cidr' })).toMatch(
      /^value: cidr: expected an IP address or a CIDR/,
    );
    await c.ok('add_allowlist_entry', { kind: 'cidr', value: '203.0.113.0/24', reason: 'office NAT' });
    const reader = await as(READER);
    expect((await reader.ok('list_allowlist')).entries.map((e: { value: string }) => e.value)).toEqual([key.id, '203.0.113.0/24']);

    const g = await guard();
    await seedKey(tr, key.id, g.clock.now, FLOOD);
    await g.guard.runCycle();
    expect(await getPenalty(tr.redis, key.id)).toBeNull();
    const [shadow] = (await ctx.store.list(10)).incidents;
    expect(shadow).toMatchObject({
      keyId: key.id,
      detector: 'context_flooding',
      suppressedBy: 'allowlist',
      wouldAction: 'penalty',
      action: 'none',
    });
    expect((await reader.ok('list_shadow_decisions', { key: key.id })).decisions).toMatchObject([
      { keyId: key.id, suppressedBy: 'allowlist', evidence: { promptTokens: 300_000 } },
    ]);
    expect((await reader.ok('explain_key', { key: key.id })).allowlist).toMatchObject([{ kind: 'key', value: key.id, source: 'database' }]);

    const removed = await c.ok('remove_allowlist_entry', { kind: 'key', value: key.id, reason: 'runner retired' });
    expect(removed).toMatchObject({ changed: true, removed: { value: key.id } });
    expect(await c.ok('remove_allowlist_entry', { kind: 'key', value: key.id, reason: 'runner retired' })).toMatchObject({
      changed: false,
    });
    const audit = await db.sql<
      { actor: string; action: string; key_id: string | null; detail: { reason: string } }[]
    >`SELECT actor, action, key_id, detail FROM audit_log WHERE action LIKE 'allowlist.%' ORDER BY id`;
    expect(audit.map((a) => [a.actor, a.action, a.key_id])).toEqual([
      ['mcp:alice', 'allowlist.add', key.id],
      ['mcp:alice', 'allowlist.add', null],
      ['mcp:alice', 'allowlist.remove', key.id],
    ]);
    expect(audit[2]!.detail.reason).toBe('runner retired');

    // Each change (not the dry run, not the removal that found nothing) is one closed operator
    // incident naming the token and the reason; none answers a detector.
    const ops = (await reader.ok('list_incidents', { source: 'operator' })).incidents as Incident[];
    expect(ops.map((i) => [i.action, i.actor, i.reason, i.detector, i.keyId, i.status])).toEqual([
      ['allowlist_remove', 'mcp:alice', 'runner retired', null, key.id, 'closed'],
      ['allowlist_add', 'mcp:alice', 'office NAT', null, null, 'closed'],
      ['allowlist_add', 'mcp:alice', 'internal eval runner', null, key.id, 'closed'],
    ]);
    expect(ops[1]!.summary).toBe(
      'Operator allowlisted cidr:203.0.113.0/24: the guard stops penalising it from its next poll. By mcp:alice; reason: office NAT.',
    );
    expect(ops[2]!.expiresAt! - Date.now()).toBeGreaterThan(6 * 86_400_000);
    expect((await reader.ok('list_incidents', { action: 'allowlist_add' })).incidents).toHaveLength(2);
    expect((await reader.ok('list_incidents', { detector: 'context_flooding' })).incidents).toMatchObject([{ source: 'guard' }]);
    const one = await reader.call('get_incident', { id: ops[1]!.id });
    expect((one.content as Array<{ text: string }>)[0]!.text).toMatch(/^Operator action by mcp:alice: allowlist_add, closed\./);
    expect(await archived(ops[1]!.id)).toMatchObject({ source: 'operator', action: 'allowlist_add', record: { detector: null } });
  });

  it('set_detector_mode switches a detector at run time: stored, announced, recorded, and the guard follows at its next poll', async () => {
    const listener = new Redis(tr.url);
    const heard: string[] = [];
    listener.on('message', (_ch: string, msg: string) => heard.push(msg));
    await listener.subscribe(channels.detectorModes);
    try {
      const c = await as();
      expect(
        await c.ok('set_detector_mode', { detector: 'context_flooding', mode: 'shadow', reason: 'tuning', dryRun: true }),
      ).toMatchObject({ changed: false, before: 'enforce', after: 'shadow' });
      expect(await tr.redis.hget(redisKeys.detectorModes(), 'context_flooding')).toBeNull();
      const done = await c.ok('set_detector_mode', {
        detector: 'context_flooding',
        mode: 'shadow',
        reason: 'tuning thresholds on live traffic',
      });
      expect(done).toMatchObject({ changed: true, before: 'enforce', after: 'shadow' });
      expect(await tr.redis.hget(redisKeys.detectorModes(), 'context_flooding')).toBe('shadow');
      await waitUntil(() => heard.some((m) => JSON.parse(m).detector === 'context_flooding' && JSON.parse(m).mode === 'shadow'), {
        message: 'mode event not published',
      });
      expect(await ctx.store.get(done.incidentId)).toMatchObject({
        source: 'operator',
        action: 'mode_change',
        status: 'closed',
        actor: 'mcp:alice',
        detector: 'context_flooding',
        mode: 'shadow',
        keyId: null,
        reason: 'tuning thresholds on live traffic',
        evidence: {},
      });
      const modes = (await c.ok('get_detector_modes')).detectors;
      expect(modes.find((m: { detector: string }) => m.detector === 'context_flooding')).toEqual({
        detector: 'context_flooding',
        mode: 'shadow',
        configured: 'enforce',
        override: 'shadow',
      });

      const key = await insertKey(db.sql);
      const g = await guard();
      await seedKey(tr, key.id, g.clock.now, FLOOD);
      await g.guard.runCycle();
      expect(await getPenalty(tr.redis, key.id)).toBeNull();
      expect(await g.metrics.registry.metrics()).toMatch(/fluxgate_guard_detector_mode\{detector="context_flooding",mode="shadow"\} 1/);

      const cleared = await c.ok('set_detector_mode', { detector: 'context_flooding', mode: 'default', reason: 'done tuning' });
      expect(cleared).toMatchObject({ changed: true, after: 'enforce' });
      // A clear records the override it removed, and says it was cleared.
      expect(await ctx.store.get(cleared.incidentId)).toMatchObject({ action: 'mode_change', mode: 'shadow', evidence: { cleared: 1 } });
      expect(await tr.redis.hget(redisKeys.detectorModes(), 'context_flooding')).toBeNull();
      expect(await c.ok('set_detector_mode', { detector: 'context_flooding', mode: 'default', reason: 'done tuning' })).toMatchObject({
        changed: false,
        incidentId: null,
      });
    } finally {
      listener.disconnect();
    }
  });
});
