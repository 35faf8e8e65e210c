import {
  addIncident,
  buildPenaltyRecord,
  formatIncidentId,
  getPenalty,
  graceRecordSchema,
  incidentSchema,
  INCIDENT_SCHEMA_VERSION,
  redisKeys,
  setPenalty,
  type Incident,
} from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { startGuardProcess, type GuardProcess } from '../support/control-plane.js';
import { ADMIN_TOKEN } from '../support/gateway.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from '../support/services.js';

/**
 * Issue 18's rails from the data plane's side (admin routes and CLI), against a real gateway, its
 * Postgres, a private redis-server and — for what only the guard can show — the real control
 * plane: the penalty cap and force, dry runs, grace and an operator incident on a pardon, the
 * allowlist and run-time detector modes reaching the guard at its next poll.
 */
let server: SpawnedRedis;
let redis: Redis;
let mock: MockUpstream;
let gw: InProcessGateway;
let guard: GuardProcess | undefined;
const flooding = new Set<string>();
let floodTimer: NodeJS.Timeout | undefined;

beforeAll(async () => {
  server = await spawnRedisServer();
  redis = new Redis(server.url);
  mock = await startMockUpstream({ events: 2 });
  gw = await startInProcessGateway({ upstreams: mock.url, redisUrl: server.url, env: { GUARD_PARDON_GRACE_SECONDS: '600' } });
});
afterEach(() => flooding.clear());
afterAll(async () => {
  clearInterval(floodTimer);
  await guard?.stop();
  await gw?.stop();
  await mock?.close();
  redis?.disconnect();
  await server?.kill();
});

type Json = Record<string, any>;
async function admin(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await request(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Json };
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    args,
    { DATABASE_URL: gw.db.url, REDIS_URL: server.url, USER: 'tester', ...env },
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
  );
  return { code, stdout, stderr };
}

const tierSeen = async (secret: string): Promise<string> => {
  const res = await request(`${gw.url}/v1/models`, { dispatcher: gw.dispatcher, headers: { authorization: `Bearer ${secret}` } });
  await res.body.text();
  return String(res.headers['x-fluxgate-tier']);
};

const incidents = async (): Promise<Incident[]> =>
  Object.values(await redis.hgetall(redisKeys.incidentRecords())).flatMap((t) => {
    const r = incidentSchema.safeParse(JSON.parse(t));
    return r.success ? [r.data] : [];
  });

const auditRows = (action: string, keyId?: string) =>
  gw.db.sql<
    { actor: string; detail: Json }[]
  >`SELECT actor, detail FROM audit_log WHERE action = ${action} ${keyId ? gw.db.sql`AND key_id = ${keyId}` : gw.db.sql``} ORDER BY id`;

/** Writes a key's current s10 window as the data plane's counters would after huge prompts (context flooding, free tier). */
function startFlooding(keyId: string): void {
  flooding.add(keyId);
  floodTimer ??= setInterval(() => {
    const b = Math.floor(Date.now() / 10_000);
    const p = redis.pipeline();
    for (const id of flooding) {
      p.sadd(redisKeys.activeKeys('s10', b), id).expire(redisKeys.activeKeys('s10', b), 900);
      p.hset(redisKeys.usage(id, 's10', b), { req: 10, ptok: 300_000, ptok_max: 31_000, s2xx: 10 }).expire(
        redisKeys.usage(id, 's10', b),
        900,
      );
    }
    void p.exec();
  }, 250);
}

/** Waits until the guard has run `n` more cycles (so "not penalised" means something). */
async function cyclesPass(n: number): Promise<void> {
  const start = (await guard!.health()).cycles;
  await waitUntil(async () => (await guard!.health()).cycles >= start + n, {
    timeoutMs: 15_000,
    intervalMs: 100,
    message: `${n} guard cycles`,
  });
}

describe('operator penalty cap, force and dry run', () => {
  it('admin: past MCP_MAX_PENALTY is refused without force; a dry run writes nothing; with force the record says forced and who', async () => {
    const { id, secret } = await gw.issueKey();
    const over = await admin('POST', `/admin/penalty/${id}`, { level: 'penalty-1', durationSeconds: 90_000, reason: 'abuse' });
    expect(over.status).toBe(400);
    expect(over.json.error).toMatchObject({
      code: 'penalty_over_cap',
      message: expect.stringMatching(/MCP_MAX_PENALTY \(86400 s\).*force/),
    });
    expect(await getPenalty(redis, id)).toBeNull();

    const incidentsBefore = await redis.xlen(redisKeys.incidents());
    const dry = await admin('POST', `/admin/penalty/${id}?dryRun=true`, { level: 'penalty-1', durationSeconds: 90_000, force: true });
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({
      dryRun: true,
      keyId: id,
      tier: 'free',
      before: { effectiveTier: 'free', penalty: null },
      after: { effectiveTier: 'penalty-1' },
      forced: true,
      replicas: [gw.replicaId],
    });
    expect(dry.json.until - Date.now()).toBeGreaterThan(89_000_000);
    expect(await getPenalty(redis, id)).toBeNull();
    expect(await auditRows('penalty.set', id)).toHaveLength(0);
    expect(await tierSeen(secret)).toBe('free');
    expect(dry.json.incidentId).toBeNull();
    expect(await redis.xlen(redisKeys.incidents())).toBe(incidentsBefore);

    const forced = await admin('POST', `/admin/penalty/${id}`, {
      level: 'penalty-1',
      durationSeconds: 90_000,
      force: true,
      reason: 'abuse',
    });
    expect(forced.status).toBe(201);
    expect(forced.json.penalty).toMatchObject({ keyId: id, level: 'penalty-1', setBy: 'operator', actor: 'admin-token', forced: true });
    expect(await getPenalty(redis, id)).toMatchObject({ forced: true, actor: 'admin-token', incidentId: forced.json.incidentId });
    // One closed operator incident: who, why, forced past the cap; it answers no detector.
    expect(await redis.xlen(redisKeys.incidents())).toBe(incidentsBefore + 1);
    expect((await incidents()).find((i) => i.id === forced.json.incidentId)).toMatchObject({
      source: 'operator',
      action: 'operator_throttle',
      actor: 'admin-token',
      reason: 'abuse',
      detector: null,
      keyId: id,
      level: 'penalty-1',
      expiresAt: forced.json.until,
      status: 'closed',
      evidence: { durationSeconds: 90_000, forced: 1 },
      thresholds: { maxPenaltySeconds: 86_400 },
      summarySource: 'template',
      summary: expect.stringMatching(/forced past MCP_MAX_PENALTY \(86400 s\)\. By admin-token; reason: abuse\.$/),
    });
    await waitUntil(async () => (await tierSeen(secret)) === 'penalty-1', { timeoutMs: 5000 });
    expect((await auditRows('penalty.set', id))[0]).toMatchObject({
      actor: 'admin-token',
      detail: { forced: true, level: 'penalty-1', durationSeconds: 90_000 },
    });

    // Within the cap no force is needed, and the record does not say forced.
    const within = await admin('POST', `/admin/penalty/${id}`, { level: 'penalty-2', durationSeconds: 3600 });
    expect(within.status).toBe(201);
    expect(within.json.penalty.forced).toBeUndefined();
    expect((await admin('POST', `/admin/penalty/${id}?dryRun=maybe`, { level: 'penalty-1' })).status).toBe(400);
  });

  it('CLI: the same cap (MCP_MAX_PENALTY from the environment), --force, --dry-run', async () => {
    const { id } = await gw.issueKey();
    const over = await cli(['penalty', 'set', id, '--level', 'penalty-2', '--duration', '2h'], { MCP_MAX_PENALTY: '3600' });
    expect(over.code).toBe(3);
    expect(over.stderr).toMatch(/MCP_MAX_PENALTY \(3600 s\)/);
    const dry = await cli(['penalty', 'set', id, '--level', 'penalty-2', '--duration', '2h', '--force', '--dry-run'], {
      MCP_MAX_PENALTY: '3600',
    });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      /^dry run, nothing changed: .* would go free → penalty-2 until .*Z, seen by 1 live replica \(forced past MCP_MAX_PENALTY\)\n$/,
    );
    expect(await getPenalty(redis, id)).toBeNull();
    expect((await incidents()).filter((i) => i.keyId === id)).toEqual([]);
    const set = await cli(['penalty', 'set', id, '--level', 'penalty-2', '--duration', '2h', '--force', '--reason', 'scraping', '--json'], {
      MCP_MAX_PENALTY: '3600',
    });
    expect(set.code).toBe(0);
    const setOut = JSON.parse(set.stdout);
    expect(await getPenalty(redis, id)).toMatchObject({ level: 'penalty-2', actor: 'cli:tester', forced: true, reason: 'scraping' });
    expect((await incidents()).filter((i) => i.keyId === id && i.reason === 'scraping')).toEqual([
      expect.objectContaining({
        id: setOut.incidentId,
        source: 'operator',
        action: 'operator_throttle',
        actor: 'cli:tester',
        reason: 'scraping',
        evidence: { durationSeconds: 7200, forced: 1 },
      }),
    ]);
    const second = await gw.issueKey();
    const plainSet = await cli(['penalty', 'set', second.id, '--level', 'penalty-1', '--reason', 'milder']);
    expect(plainSet.stdout).toMatch(/: free → penalty-1 until .*Z, seen by 1 live replica; incident inc_\S+\n$/);
    const listed = await cli(['penalty', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ keyId: id, forced: true })]));
    expect((await cli(['penalty', 'set', id, '--level', 'penalty-9'])).code).toBe(2);
    expect((await cli(['penalty', 'set', id, '--level', 'penalty-1', '--duration', 'soon'])).code).toBe(2);
    expect((await cli(['penalty', 'set', '00000000-0000-4000-8000-000000000000', '--level', 'penalty-1'])).code).toBe(3);
    // MCP_MAX_PENALTY is whole seconds for every plane: anything else is a configuration error.
    const badCap = await cli(['penalty', 'list'], { MCP_MAX_PENALTY: '1h' });
    expect(badCap.code).toBe(2);
    expect(badCap.stderr).toMatch(/MCP_MAX_PENALTY: expected whole seconds/);
  });
});

describe('pardon: grace on the guard list and an operator incident', () => {
  /** A key in a guard penalty of incident `incidentId` (what apply.ts writes). */
  async function guardPenalty(keyId: string): Promise<string> {
    const now = Date.now();
    const incidentId = formatIncidentId(now, 'abcdef01');
    const guardIncident: Incident = {
      v: INCIDENT_SCHEMA_VERSION,
      id: incidentId,
      at: now,
      updatedAt: now,
      source: 'guard',
      keyId,
      keyPrefix: null,
      ownerId: null,
      ownerEmail: null,
      tier: 'free',
      clientIp: null,
      detector: 'repeated_prompt',
      mode: 'enforce',
      evidence: { topPromptCount: 90 },
      thresholds: { topPromptCount: 40 },
      alsoTripped: [],
      action: 'penalty',
      level: 'penalty-1',
      expiresAt: now + 900_000,
      wouldAction: null,
      wouldLevel: null,
      suppressedBy: null,
      cappedFrom: null,
      priorOffences: 0,
      status: 'open',
      endedAt: null,
      polls: 1,
      lastSeenAt: now,
      actor: null,
      reason: null,
      summary: null,
      summarySource: null,
    };
    await addIncident(redis, guardIncident, 1000);
    await setPenalty(
      redis,
      buildPenaltyRecord({
        keyId,
        level: 'penalty-1',
        setBy: 'guard',
        reason: 'repeated_prompt (guard)',
        incidentId,
        durationSeconds: 900,
      }),
    );
    return incidentId;
  }

  it('admin: a dry run changes nothing; the pardon gives grace first, lifts on every replica and records who and why', async () => {
    const { id, secret } = await gw.issueKey();
    const guardIncident = await guardPenalty(id);
    await waitUntil(async () => (await tierSeen(secret)) === 'penalty-1', { timeoutMs: 5000 });
    const before = (await incidents()).length;

    const dry = await admin('DELETE', `/admin/penalty/${id}?dryRun=true&reason=false%20positive`);
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({
      dryRun: true,
      lifted: true,
      before: { effectiveTier: 'penalty-1' },
      after: { effectiveTier: 'free', penalty: null },
      until: null,
      replicas: [gw.replicaId],
    });
    expect(dry.json.graceUntil - Date.now()).toBeGreaterThan(590_000);
    expect(await getPenalty(redis, id)).not.toBeNull();
    expect(await redis.exists(redisKeys.pardonGrace(id))).toBe(0);
    expect((await incidents()).length).toBe(before);

    const pardon = await admin('DELETE', `/admin/penalty/${id}?reason=false%20positive`);
    expect(pardon.json).toMatchObject({ dryRun: false, lifted: true, incidentId: expect.stringMatching(/^inc_/) });
    await waitUntil(async () => (await tierSeen(secret)) === 'free', { timeoutMs: 5000 });
    const grace = graceRecordSchema.parse(JSON.parse((await redis.get(redisKeys.pardonGrace(id)))!));
    expect(grace).toMatchObject({ keyId: id, incidentId: guardIncident });
    expect(grace.until).toBe(pardon.json.graceUntil);
    expect(await redis.pttl(redisKeys.pardonGrace(id))).toBeGreaterThan(590_000);
    const op = (await incidents()).find((i) => i.id === pardon.json.incidentId);
    expect(op).toMatchObject({
      source: 'operator',
      actor: 'admin-token',
      reason: 'false positive',
      action: 'pardon',
      detector: 'repeated_prompt',
      level: 'penalty-1',
      keyId: id,
      status: 'closed',
      relatesTo: guardIncident,
    });
    expect(await redis.xlen(redisKeys.incidents())).toBe(before + 1);
    expect((await auditRows('penalty.lifted', id))[0]).toMatchObject({
      actor: 'admin-token',
      detail: { setBy: 'guard', incidentId: pardon.json.incidentId },
    });
  });

  it('CLI: the same, as cli:<user>; an operator penalty is lifted with no grace, its incident naming the throttle it undid', async () => {
    const { id } = await gw.issueKey();
    await guardPenalty(id);
    const lifted = await cli(['penalty', 'lift', id, '--reason', 'customer called']);
    expect(lifted.code).toBe(0);
    expect(lifted.stdout).toMatch(/penalty-1 → free, seen by 1 live replica; grace from the guard until .*Z; incident inc_/);
    const incidentId = /incident (inc_\S+)/.exec(lifted.stdout)![1];
    expect((await incidents()).find((i) => i.id === incidentId)).toMatchObject({
      actor: 'cli:tester',
      reason: 'customer called',
      source: 'operator',
    });
    expect(await redis.exists(redisKeys.pardonGrace(id))).toBe(1);

    const other = await gw.issueKey();
    const throttled = await admin('POST', `/admin/penalty/${other.id}`, { level: 'penalty-1' });
    const plain = await admin('DELETE', `/admin/penalty/${other.id}?reason=mistyped%20key`);
    expect(plain.json).toMatchObject({ lifted: true, graceUntil: null, incidentId: expect.stringMatching(/^inc_/) });
    expect(await redis.exists(redisKeys.pardonGrace(other.id))).toBe(0);
    expect((await incidents()).find((i) => i.id === plain.json.incidentId)).toMatchObject({
      action: 'pardon',
      actor: 'admin-token',
      reason: 'mistyped key',
      detector: null,
      level: 'penalty-1',
      relatesTo: throttled.json.incidentId,
    });
    // Nothing to lift: nothing changes and nothing is recorded.
    const count = await redis.xlen(redisKeys.incidents());
    expect((await cli(['penalty', 'lift', other.id])).stdout).toMatch(/has no penalty/);
    expect((await admin('DELETE', `/admin/penalty/${other.id}`)).json).toMatchObject({ lifted: false, incidentId: null });
    expect(await redis.xlen(redisKeys.incidents())).toBe(count);
  });
});

describe('the allowlist and detector modes reach the running guard at its next poll', () => {
  beforeAll(async () => {
    guard = await startGuardProcess({ REDIS_URL: server.url, DATABASE_URL: gw.db.url, GUARD_PARDON_GRACE_SECONDS: '600' });
    await waitUntil(async () => (await guard!.health()).role === 'leader', { timeoutMs: 10_000 });
  });

  it('an allowlisted key flooding is never penalised but leaves a shadow incident; removed from the list, it is penalised; pardoned, it is not re-penalised within its grace', async () => {
    const { id } = await gw.issueKey();
    const added = await admin('POST', '/admin/allowlist', { kind: 'key', value: id, reason: 'load test' });
    expect(added.status).toBe(201);
    expect(added.json.entry).toMatchObject({ kind: 'key', value: id, reason: 'load test', createdBy: 'admin-token', expiresAt: null });
    expect((await incidents()).find((i) => i.id === added.json.incidentId)).toMatchObject({
      source: 'operator',
      action: 'allowlist_add',
      actor: 'admin-token',
      reason: 'load test',
      keyId: id,
      detector: null,
      status: 'closed',
    });

    startFlooding(id);
    const shadow = await waitUntil(async () => (await incidents()).find((i) => i.keyId === id && i.suppressedBy === 'allowlist'), {
      timeoutMs: 15_000,
      message: 'a shadow incident of the allowlisted key',
    });
    expect(shadow).toMatchObject({ detector: 'context_flooding', action: 'none', wouldAction: 'penalty', wouldLevel: 'penalty-1' });
    await cyclesPass(2);
    expect(await getPenalty(redis, id)).toBeNull();

    const removed = await admin('DELETE', `/admin/allowlist/${added.json.entry.id}?reason=load%20test%20over`);
    expect(removed).toMatchObject({ status: 200, json: { removed: { value: id }, incidentId: expect.stringMatching(/^inc_/) } });
    expect((await incidents()).find((i) => i.id === removed.json.incidentId)).toMatchObject({
      action: 'allowlist_remove',
      actor: 'admin-token',
      reason: 'load test over',
      keyId: id,
    });
    const penalty = await waitUntil(() => getPenalty(redis, id), {
      timeoutMs: 15_000,
      message: 'the guard penalises the key once it is off the list',
    });
    expect(penalty).toMatchObject({ setBy: 'guard', level: 'penalty-1' });

    // The pardon's grace: the flood goes on, the guard keeps seeing it, and does not act.
    const pardon = await admin('DELETE', `/admin/penalty/${id}?reason=allowlisted%20by%20mistake`);
    expect(pardon.json).toMatchObject({ lifted: true, incidentId: expect.stringMatching(/^inc_/) });
    await cyclesPass(3);
    expect(await getPenalty(redis, id)).toBeNull();
    expect((await incidents()).find((i) => i.id === penalty.incidentId)).toMatchObject({ status: 'pardoned' });
    expect(await auditRows('allowlist.added')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: 'admin-token', detail: expect.objectContaining({ kind: 'key', value: id }) }),
      ]),
    );
    expect(await auditRows('allowlist.removed')).toHaveLength(1);
  });

  it("a detector put in shadow at run time records would-be actions; cleared, it enforces; the guard's /metrics shows the mode", async () => {
    const set = await admin('PUT', '/admin/detector-modes/context_flooding', { mode: 'shadow', reason: 'tuning on live traffic' });
    expect(set).toMatchObject({ status: 200, json: { detector: 'context_flooding', mode: 'shadow', previous: null } });
    expect((await incidents()).find((i) => i.id === set.json.incidentId)).toMatchObject({
      source: 'operator',
      action: 'mode_change',
      actor: 'admin-token',
      reason: 'tuning on live traffic',
      detector: 'context_flooding',
      mode: 'shadow',
      keyId: null,
      evidence: {},
    });
    // Setting what is already set changes nothing and records nothing.
    const count = await redis.xlen(redisKeys.incidents());
    expect((await admin('PUT', '/admin/detector-modes/context_flooding', { mode: 'shadow' })).json).toMatchObject({ incidentId: null });
    expect(await redis.xlen(redisKeys.incidents())).toBe(count);
    await waitUntil(
      async () => (await guard!.metrics()).includes('fluxgate_guard_detector_mode{detector="context_flooding",mode="shadow"} 1'),
      { timeoutMs: 10_000 },
    );
    const modes = await admin('GET', '/admin/detector-modes');
    expect(modes.json.modes).toContainEqual({ detector: 'context_flooding', mode: 'shadow' });
    expect(modes.json.modes).toContainEqual({ detector: 'leaked_key', mode: null });

    const { id } = await gw.issueKey();
    startFlooding(id);
    const shadow = await waitUntil(async () => (await incidents()).find((i) => i.keyId === id), {
      timeoutMs: 15_000,
      message: 'a shadow incident',
    });
    expect(shadow).toMatchObject({ detector: 'context_flooding', mode: 'shadow', suppressedBy: 'shadow_mode', wouldAction: 'penalty' });
    await cyclesPass(2);
    expect(await getPenalty(redis, id)).toBeNull();

    const cleared = await cli(['detectors', 'mode', 'context_flooding', 'clear', '--reason', 'tuned']);
    expect(cleared).toMatchObject({ code: 0 });
    expect(cleared.stdout).toMatch(/^context_flooding: shadow → configured \(the guard applies it at its next poll\); incident inc_\S+\n$/);
    expect((await incidents()).find((i) => i.id === /incident (inc_\S+)/.exec(cleared.stdout)![1])).toMatchObject({
      action: 'mode_change',
      actor: 'cli:tester',
      reason: 'tuned',
      detector: 'context_flooding',
      mode: 'shadow',
      evidence: { cleared: 1 },
    });
    await waitUntil(() => getPenalty(redis, id), { timeoutMs: 15_000, message: 'enforced once the run-time mode is cleared' });
    expect(JSON.parse((await cli(['detectors', 'list', '--json'])).stdout)).toContainEqual({ detector: 'context_flooding', mode: null });
    expect((await auditRows('detector_mode.set'))[0]).toMatchObject({
      actor: 'admin-token',
      detail: { detector: 'context_flooding', mode: 'shadow' },
    });
    expect((await auditRows('detector_mode.cleared'))[0]).toMatchObject({ actor: 'cli:tester' });
  });
});

describe('bad operator input gets a clear answer and changes nothing', () => {
  it('allowlist and detector modes, admin and CLI', async () => {
    const bad = await admin('POST', '/admin/allowlist', { kind: 'cidr', value: '10.0.0.0/33' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/^value: cidr: /);
    expect((await admin('POST', '/admin/allowlist', { kind: 'ip', value: '10.0.0.1' })).status).toBe(400);
    expect((await admin('POST', '/admin/allowlist', { kind: 'key', value: 'fgk_secretish' })).status).toBe(400);
    expect((await admin('DELETE', '/admin/allowlist/999999')).status).toBe(404);
    expect((await admin('DELETE', '/admin/allowlist/abc')).status).toBe(404);
    expect((await admin('PUT', '/admin/detector-modes/no_such_detector', { mode: 'shadow' })).status).toBe(404);
    expect((await admin('PUT', '/admin/detector-modes/leaked_key', { mode: 'loud' })).status).toBe(400);
    expect(await redis.hgetall(redisKeys.detectorModes())).toEqual({});

    const added = await cli(['allowlist', 'add', 'cidr:10.20.0.0/16', '--reason', 'office', '--expires-in', '7d']);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^added #\d+ cidr:10\.20\.0\.0\/16 until /);
    expect((await cli(['allowlist', 'add', 'account:Ops@Example.com'])).stdout).toMatch(/account:ops@example\.com/);
    const listed = await cli(['allowlist', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'cidr', value: '10.20.0.0/16', createdBy: 'cli:tester', reason: 'office' })]),
    );
    const addedCidr = /incident (inc_\S+)/.exec(added.stdout)![1];
    expect((await incidents()).find((i) => i.id === addedCidr)).toMatchObject({
      action: 'allowlist_add',
      actor: 'cli:tester',
      reason: 'office',
      detector: null,
      keyId: null,
      summary: expect.stringMatching(/^Operator allowlisted cidr:10\.20\.0\.0\/16 until .*By cli:tester; reason: office\.$/),
    });
    const gone = await cli(['allowlist', 'remove', 'cidr:10.20.0.0/16', '--reason', 'office moved', '--json']);
    expect(gone.code).toBe(0);
    expect((await incidents()).find((i) => i.id === JSON.parse(gone.stdout).incidentId)).toMatchObject({
      action: 'allowlist_remove',
      actor: 'cli:tester',
      reason: 'office moved',
    });
    const count = await redis.xlen(redisKeys.incidents());
    expect((await cli(['allowlist', 'remove', 'cidr:10.20.0.0/16'])).code).toBe(3);
    expect(await redis.xlen(redisKeys.incidents())).toBe(count);
    expect((await cli(['allowlist', 'add', '10.0.0.1'])).code).toBe(2);
    expect((await cli(['allowlist', 'add', 'cidr:nope'])).code).toBe(2);
    expect((await cli(['detectors', 'mode', 'nope', 'shadow'])).code).toBe(2);
    expect((await cli(['detectors', 'mode', 'leaked_key', 'loud'])).code).toBe(2);
    expect(await gw.serving()).toBe(true);
  });
});
