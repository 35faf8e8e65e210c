/**
 * Issue 15: the operator-only portal routes, against real Redis (a unique key prefix) and real
 * Postgres. Incidents are written the way the guard writes them (a stream entry naming the
 * incident, its JSON in the records hash, the summary in the summaries hash); penalties through
 * the contracts protocol.
 */
import { randomBytes } from 'node:crypto';
import {
  channels,
  formatIncidentId,
  getPenalty,
  graceRecordSchema,
  incidentSchema,
  penaltyEventSchema,
  redisKeys,
  setPenalty,
  buildPenaltyRecord,
  type Incident,
} from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, cookieAuth, jsonBody, signUp, startPortal, type PortalHarness } from './support.js';
import { waitUntil } from '../support/services.js';

let h: PortalHarness;
let operator: Awaited<ReturnType<typeof signUp>>;
let user: Awaited<ReturnType<typeof signUp>>;
/** Keys of `user`, the one the guard "caught". */
let key: { id: string; prefix: string };
let other: { id: string; prefix: string };

beforeAll(async () => {
  h = await startPortal();
  operator = await signUp(h.call, 'op@example.com');
  await h.db.sql`UPDATE users SET role = 'operator' WHERE id = ${operator.user.id}`;
  user = await signUp(h.call, 'caught@example.com');
  const made = await h.call('POST', '/portal/keys', { ...jsonBody({ name: 'scraper' }), headers: bearer(user.token) });
  key = made.json.key;
  const made2 = await h.call('POST', '/portal/keys', { ...jsonBody({ name: 'other' }), headers: bearer(user.token) });
  other = made2.json.key;
});
afterAll(async () => {
  await h?.close();
});

let clock = Date.now() - 60_000;
function incident(overrides: Partial<Incident> = {}): Incident {
  const at = (clock += 1000);
  return incidentSchema.parse({
    v: 1,
    id: formatIncidentId(at, randomBytes(4).toString('hex')),
    at,
    updatedAt: at,
    source: 'guard',
    keyId: key.id,
    keyPrefix: key.prefix,
    ownerId: user.user.id,
    ownerEmail: user.user.email,
    tier: 'free',
    clientIp: null,
    detector: 'model_enumeration',
    mode: 'enforce',
    evidence: { distinctModels: 12 },
    thresholds: { distinctModels: 8 },
    alsoTripped: [],
    action: 'penalty',
    level: 'penalty-1',
    expiresAt: at + 900_000,
    wouldAction: null,
    wouldLevel: null,
    suppressedBy: null,
    cappedFrom: null,
    priorOffences: 0,
    status: 'open',
    endedAt: null,
    polls: 1,
    lastSeenAt: at,
    actor: null,
    reason: null,
    summary: null,
    summarySource: null,
    ...overrides,
  });
}

/** What the guard's store does on add (control-plane/src/incidents/store.ts), plus an optional summary. */
async function storeIncident(i: Incident, summary?: string): Promise<Incident> {
  await h.tr.redis.xadd(redisKeys.incidents(), '*', 'id', i.id, 'data', JSON.stringify(i));
  await h.tr.redis.hset(redisKeys.incidentRecords(), i.id, JSON.stringify(i));
  if (summary)
    await h.tr.redis.hset(
      redisKeys.incidentSummaries(),
      i.id,
      JSON.stringify({ id: i.id, summary, source: 'model', model: 'llama3.2:1b', at: i.at + 10 }),
    );
  return i;
}

const routes = [
  ['GET', '/portal/operator/incidents'],
  ['GET', '/portal/operator/penalties'],
  ['POST', `/portal/operator/penalties/00000000-0000-4000-8000-000000000000/pardon`],
] as const;

describe('operator portal routes', () => {
  it('refuse anonymous callers (401) and accounts without the operator role (403)', async () => {
    for (const [method, path] of routes) {
      const anon = await h.call(method, path, jsonBody({ reason: 'because' }));
      expect(anon.status, path).toBe(401);
      const res = await h.call(method, path, {
        ...jsonBody({ reason: 'because' }),
        headers: { ...bearer(user.token), 'content-type': 'application/json' },
      });
      expect(res.status, path).toBe(403);
      expect(res.json, path).toEqual({
        error: { message: 'This needs an operator account.', type: 'permission_error', code: 'forbidden' },
      });
    }
    // The role is read from Postgres on every request: a demotion applies at once.
    await h.db.sql`UPDATE users SET role = 'user' WHERE id = ${operator.user.id}`;
    expect((await h.call('GET', '/portal/operator/incidents', { headers: bearer(operator.token) })).status).toBe(403);
    await h.db.sql`UPDATE users SET role = 'admin' WHERE id = ${operator.user.id}`;
    expect((await h.call('GET', '/portal/operator/incidents', { headers: bearer(operator.token) })).status).toBe(200);
    await h.db.sql`UPDATE users SET role = 'operator' WHERE id = ${operator.user.id}`;
  });

  it('lists incidents newest first with their summaries, filtered by key id or prefix, page by page', async () => {
    const first = await storeIncident(incident({ detector: 'repeated_prompt' }));
    await h.tr.redis.xadd(redisKeys.incidents(), '*', 'id', 'inc_junk_00000000', 'data', '{}');
    await h.tr.redis.hset(redisKeys.incidentRecords(), 'inc_junk_00000000', '{"v":99}');
    const second = await storeIncident(incident({ keyId: other.id, keyPrefix: other.prefix, detector: 'leaked_key' }));
    const third = await storeIncident(incident(), 'Key fgk_… asked for 12 distinct models in 30 s.');

    const all = await h.call('GET', '/portal/operator/incidents', { headers: bearer(operator.token) });
    expect(all.status).toBe(200);
    expect(all.header('cache-control')).toBe('no-store');
    expect(all.json.incidents.map((i: Incident) => i.id)).toEqual([third.id, second.id, first.id]);
    expect(all.json.incidents[0]).toMatchObject({
      summary: 'Key fgk_… asked for 12 distinct models in 30 s.',
      summarySource: 'model',
      evidence: { distinctModels: 12 },
    });
    expect(all.json.skipped).toBe(1);
    expect(all.json.next).toBeNull();

    const byId = await h.call('GET', '/portal/operator/incidents', {
      query: `key=${key.id.toUpperCase()}`,
      headers: bearer(operator.token),
    });
    expect(byId.json.incidents.map((i: Incident) => i.id)).toEqual([third.id, first.id]);
    const byPrefix = await h.call('GET', '/portal/operator/incidents', { query: `key=${other.prefix}`, headers: bearer(operator.token) });
    expect(byPrefix.json.incidents.map((i: Incident) => i.id)).toEqual([second.id]);

    const page1 = await h.call('GET', '/portal/operator/incidents', { query: 'limit=1', headers: bearer(operator.token) });
    expect(page1.json.incidents.map((i: Incident) => i.id)).toEqual([third.id]);
    const page2 = await h.call('GET', '/portal/operator/incidents', {
      query: `limit=2&before=${page1.json.next}`,
      headers: bearer(operator.token),
    });
    expect(page2.json.incidents.map((i: Incident) => i.id)).toEqual([second.id, first.id]);

    for (const query of ['limit=0', 'limit=101', 'before=not-an-id', 'key=x']) {
      expect((await h.call('GET', '/portal/operator/incidents', { query, headers: bearer(operator.token) })).status, query).toBe(400);
    }
  });

  it('shows the penalty box with each key, owner and incident, and pardons with a reason', async () => {
    const caught = await storeIncident(incident({ detector: 'model_enumeration' }), 'Enumerated models.');
    await setPenalty(
      h.tr.redis,
      buildPenaltyRecord({ keyId: key.id, level: 'penalty-2', setBy: 'guard', reason: 'model_enumeration', incidentId: caught.id }),
    );

    const box = await h.call('GET', '/portal/operator/penalties', { headers: bearer(operator.token) });
    expect(box.status).toBe(200);
    expect(box.json.total).toBe(1);
    expect(box.json.penalties).toEqual([
      expect.objectContaining({
        keyId: key.id,
        level: 'penalty-2',
        setBy: 'guard',
        key: { id: key.id, name: 'scraper', prefix: key.prefix, tier: 'free', status: 'active', ownerEmail: 'caught@example.com' },
        incident: { id: caught.id, detector: 'model_enumeration', status: 'open', summary: 'Enumerated models.', at: caught.at },
      }),
    ]);

    const path = `/portal/operator/penalties/${key.id}/pardon`;
    // Cookie sessions need the CSRF header; a reason is required.
    expect(
      (
        await h.call('POST', path, {
          ...jsonBody({ reason: 'false positive' }),
          headers: { ...cookieAuth(operator.cookie, false), 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(403);
    const noReason = await h.call('POST', path, {
      ...jsonBody({}),
      headers: { ...bearer(operator.token), 'content-type': 'application/json' },
    });
    expect(noReason.status).toBe(400);
    expect(noReason.json.error.message).toMatch(/^reason: /);

    const sub = await h.tr.connect();
    const events: unknown[] = [];
    sub.on('message', (_ch: string, msg: string) => events.push(penaltyEventSchema.parse(JSON.parse(msg))));
    await sub.subscribe(channels.penalties);

    const res = await h.call('POST', path, {
      ...jsonBody({ reason: 'Eval harness of a customer; false positive' }),
      headers: { ...cookieAuth(operator.cookie), 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      keyId: key.id,
      lifted: true,
      level: 'penalty-2',
      setBy: 'guard',
      graceUntil: expect.any(Number),
      incidentId: expect.stringMatching(/^inc_/),
    });

    // Lifted on every replica: the record is gone and the event went out.
    expect(await getPenalty(h.tr.redis, key.id)).toBeNull();
    await waitUntil(
      () => events.some((e) => (e as { type: string; keyId: string }).type === 'lifted' && (e as { keyId: string }).keyId === key.id),
      { message: 'lifted event' },
    );
    // On the guard's grace list, for the contracts default.
    const grace = graceRecordSchema.parse(JSON.parse((await h.tr.redis.get(redisKeys.pardonGrace(key.id)))!));
    expect(grace).toMatchObject({ keyId: key.id, incidentId: caught.id, until: res.json.graceUntil });
    expect(await h.tr.redis.pttl(redisKeys.pardonGrace(key.id))).toBeGreaterThan(29 * 60_000);
    // An operator incident, newest in the buffer, naming who and why; the guard's incident is left for the guard to close.
    const list = await h.call('GET', '/portal/operator/incidents', { query: 'limit=2', headers: bearer(operator.token) });
    expect(list.json.incidents[0]).toMatchObject({
      id: res.json.incidentId,
      source: 'operator',
      action: 'pardon',
      detector: 'model_enumeration',
      keyId: key.id,
      keyPrefix: key.prefix,
      level: 'penalty-2',
      status: 'closed',
      actor: 'portal:op@example.com',
      reason: 'Eval harness of a customer; false positive',
      relatesTo: caught.id,
    });
    expect(list.json.incidents[1]).toMatchObject({ id: caught.id, status: 'open' });
    const audit = await h.db.sql`SELECT actor, action, detail FROM audit_log WHERE key_id = ${key.id} AND action = 'penalty.lifted'`;
    expect(audit).toEqual([
      {
        actor: 'portal:op@example.com',
        action: 'penalty.lifted',
        detail: expect.objectContaining({
          reason: 'Eval harness of a customer; false positive',
          setBy: 'guard',
          incidentId: res.json.incidentId,
        }),
      },
    ]);

    // Nothing left to pardon.
    const again = await h.call('POST', path, {
      ...jsonBody({ reason: 'again' }),
      headers: { ...bearer(operator.token), 'content-type': 'application/json' },
    });
    expect(again.status).toBe(404);
    expect((await h.call('GET', '/portal/operator/penalties', { headers: bearer(operator.token) })).json.penalties).toEqual([]);
  });

  it("pardons an operator's own penalty without grace; the operator incident names who and why, and no detector when none is linked", async () => {
    await setPenalty(h.tr.redis, buildPenaltyRecord({ keyId: other.id, level: 'penalty-1', setBy: 'operator', reason: 'manual' }));
    const res = await h.call('POST', `/portal/operator/penalties/${other.id}/pardon`, {
      ...jsonBody({ reason: 'enough' }),
      headers: { ...bearer(operator.token), 'content-type': 'application/json' },
    });
    expect(res.json).toEqual({
      keyId: other.id,
      lifted: true,
      level: 'penalty-1',
      setBy: 'operator',
      graceUntil: null,
      incidentId: expect.stringMatching(/^inc_/),
    });
    expect(await h.tr.redis.exists(redisKeys.pardonGrace(other.id))).toBe(0);
    expect(await getPenalty(h.tr.redis, other.id)).toBeNull();
    const list = await h.call('GET', '/portal/operator/incidents', { query: 'limit=1', headers: bearer(operator.token) });
    expect(list.json.incidents).toEqual([
      expect.objectContaining({
        id: res.json.incidentId,
        source: 'operator',
        action: 'pardon',
        detector: null,
        relatesTo: null,
        status: 'closed',
        actor: 'portal:op@example.com',
        reason: 'enough',
        summarySource: 'template',
        summary: expect.stringMatching(
          /^Operator pardoned API key .*: lifted penalty-1 set by operator .*By portal:op@example\.com; reason: enough\.$/,
        ),
      }),
    ]);
  });
});
