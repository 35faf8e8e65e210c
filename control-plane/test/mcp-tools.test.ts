import { randomBytes } from 'node:crypto';
import { buildPenaltyRecord, formatIncidentId, INCIDENT_SCHEMA_VERSION, redisKeys, setPenalty, type Incident } from '@fluxgate/contracts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { McpContext } from '../src/mcp/context.js';
import { insertKey } from './support/guard.js';
import { connect, mcpContext, OPERATOR, READER, type Connected } from './support/mcp.js';
import { startOllamaStandIn, type OllamaStandIn } from './support/ollama-standin.js';
import { connectTestRedis, createTestDatabase, type TestDatabase, type TestRedis } from './support/services.js';

// Every tool through the SDK's Client over InMemoryTransport, against real Redis (a unique key
// prefix) and a fresh Postgres database.
const READ_TOOLS = [
  'get_gateway_metrics',
  'list_top_consumers',
  'list_incidents',
  'get_incident',
  'summarise_incident',
  'list_shadow_decisions',
  'list_penalty_box',
  'get_key_profile',
  'explain_key',
  'get_upstream_health',
  'list_allowlist',
  'get_detector_modes',
  'get_security_incidents',
  'debug_guard_state',
];
const ACTING_TOOLS = [
  'throttle_key',
  'pardon_key',
  'pardon_identity',
  'add_allowlist_entry',
  'remove_allowlist_entry',
  'set_detector_mode',
];

let tr: TestRedis;
let db: TestDatabase;
let ctx: McpContext;
let ollama: OllamaStandIn;
const open: Connected[] = [];
beforeAll(async () => {
  tr = await connectTestRedis();
  db = await createTestDatabase();
  ctx = await mcpContext(tr, db.sql);
  ollama = await startOllamaStandIn();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  const keys = await tr.redis.keys('*');
  if (keys.length > 0) await tr.redis.del(...keys.map((k) => k.slice(tr.prefix.length)));
});
afterAll(async () => {
  await ollama?.close();
  await tr?.close();
  await db?.drop();
});
const as = async (identity = READER, c = ctx): Promise<Connected> => {
  const conn = await connect(c, identity);
  open.push(conn);
  return conn;
};

let seq = 0;
function incident(over: Partial<Incident> = {}): Incident {
  const at = over.at ?? Date.now() - 60_000 + seq++;
  return {
    v: INCIDENT_SCHEMA_VERSION,
    id: formatIncidentId(at, randomBytes(4).toString('hex')),
    at,
    updatedAt: at,
    source: 'guard',
    keyId: null,
    keyPrefix: null,
    ownerId: null,
    ownerEmail: null,
    tier: 'free',
    clientIp: null,
    detector: 'context_flooding',
    mode: 'enforce',
    evidence: { promptTokens: 300_000 },
    thresholds: { promptTokens: 165_000 },
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
    ...over,
  };
}

describe('roles: what each token sees', () => {
  it('a reader lists every read tool and no acting tool, and cannot call one; an operator lists both', async () => {
    const reader = await as(READER);
    const readerTools = (await reader.client.listTools()).tools.map((t) => t.name);
    expect(readerTools).toEqual(expect.arrayContaining(READ_TOOLS));
    for (const name of ACTING_TOOLS) expect(readerTools).not.toContain(name);
    const refused = await reader.error('throttle_key', {
      key: '00000000-0000-4000-8000-000000000000',
      level: 'penalty-1',
      reason: 'try it',
      detector: 'leaked_key',
    });
    expect(refused).toMatch(/throttle_key not found/);
    // No acting tool answers a reader, whatever the arguments: nothing changes, no operator incident is written.
    for (const name of ACTING_TOOLS)
      expect(
        await reader.error(name, { kind: 'cidr', value: '10.0.0.0/8', detector: 'leaked_key', mode: 'shadow', reason: 'try it' }),
      ).toMatch(new RegExp(`${name} not found`));
    expect(await tr.redis.xlen(redisKeys.incidents())).toBe(0);
    expect(await tr.redis.hgetall(redisKeys.detectorModes())).toEqual({});

    const operator = await as(OPERATOR);
    const tools = (await operator.client.listTools()).tools;
    expect(tools.map((t) => t.name).sort()).toEqual([...READ_TOOLS, ...ACTING_TOOLS].sort());
    for (const t of tools) {
      // Input and output schemas on every tool; a misspelt argument is refused, never dropped.
      expect(t.inputSchema.type).toBe('object');
      expect(t.inputSchema.additionalProperties).toBe(false);
      expect(t.outputSchema?.type).toBe('object');
      expect(t.description?.length).toBeGreaterThan(40);
    }
    const throttle = tools.find((t) => t.name === 'throttle_key')!;
    expect(throttle.inputSchema.required).toEqual(expect.arrayContaining(['key', 'level', 'reason']));
    expect(throttle.annotations?.destructiveHint).toBe(true);
    expect(tools.find((t) => t.name === 'list_incidents')!.annotations?.readOnlyHint).toBe(true);
  });
});

describe('bad arguments are tool errors that say which argument and what was expected', () => {
  it('schema violations, unknown arguments, bad times, cursors, ids and key references', async () => {
    const c = await as(OPERATOR);
    expect(await c.error('list_incidents', { limit: 500 })).toMatch(/at most 100.*limit/s);
    expect(await c.error('list_incidents', { limt: 5 })).toMatch(/Unrecognized key.*limt/s);
    expect(await c.error('list_incidents', { limit: 'ten' })).toMatch(/expected number.*limit/s);
    expect(await c.error('list_incidents', { since: 'yesterday' })).toMatch(/^since: expected an ISO 8601 time/);
    expect(await c.error('list_incidents', { cursor: 'garbage!' })).toMatch(/^cursor: not a cursor of this list/);
    expect(await c.error('get_incident', { id: 'nope' })).toMatch(/expected an incident id like inc_.*id/s);
    expect(await c.error('get_incident', {})).toMatch(/id/);
    expect(await c.error('throttle_key', { key: 'x', level: 'penalty-9', reason: 'abc' })).toMatch(/level/);
    expect(await c.error('throttle_key', { key: 'fgk_abcd', level: 'penalty-1' })).toMatch(/reason/);
    expect(await c.error('get_key_profile', { key: 'hello' })).toMatch(/^key: expected an API key id \(UUID\) or a display prefix/);
    expect(await c.error('throttle_key', { key: 'fgk_abcd', level: 'penalty-1', reason: 'slow down', duration: 'soon' })).toMatch(
      /^duration: expected seconds/,
    );

    // A secret is refused without being repeated anywhere in the answer.
    const secret = `fgk_${randomBytes(30).toString('base64url').replace(/[-_]/g, 'x').slice(0, 43)}Ab12Cd`;
    const text = await c.error('explain_key', { key: secret });
    expect(text).toMatch(/looks like an API key secret/);
    expect(text).not.toContain(secret.slice(4, 20));

    // Two keys share the start of a prefix: ambiguous, both named; more characters resolve it.
    const [u] = await db.sql<
      { id: string }[]
    >`INSERT INTO users (email) VALUES (${`amb-${randomBytes(3).toString('hex')}@example.com`}) RETURNING id`;
    for (const p of ['fgk_Zq81aaaa', 'fgk_Zq81bbbb'])
      await db.sql`INSERT INTO api_keys (user_id, display_prefix, key_hash) VALUES (${u!.id}, ${p}, ${randomBytes(32).toString('hex')})`;
    expect(await c.error('get_key_profile', { key: 'fgk_Zq81' })).toMatch(
      /matches several keys \(fgk_Zq81(aaaa|bbbb) .*fgk_Zq81(aaaa|bbbb)/,
    );
    expect((await c.ok('get_key_profile', { key: 'fgk_Zq81bbbb…' })).key.prefix).toBe('fgk_Zq81bbbb');
  });

  it('an unknown key or incident is a clean not-found answer, not an error', async () => {
    const c = await as(READER);
    const r = await c.call('get_incident', { id: formatIncidentId(Date.now(), 'deadbeef') });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ found: false, message: expect.stringMatching(/no incident/) });
    expect(await c.ok('get_key_profile', { key: '00000000-0000-4000-8000-000000000000' })).toMatchObject({
      found: false,
      message: expect.stringMatching(/no API key has id/),
    });
    expect(await c.ok('explain_key', { key: 'fgk_Nope' })).toMatchObject({ found: false });
    expect(await c.ok('summarise_incident', { id: formatIncidentId(Date.now(), 'deadbeef') })).toMatchObject({ found: false });
  });
});

describe('incidents', () => {
  it('list_incidents pages newest first with cursors and filters; get_security_incidents is the same tool', async () => {
    const key = await insertKey(db.sql, 'pro');
    const stored: Incident[] = [];
    for (let n = 0; n < 5; n++) {
      const i = incident({
        detector: n % 2 === 0 ? 'context_flooding' : 'leaked_key',
        keyId: n === 4 ? key.id : null,
        keyPrefix: n === 4 ? key.prefix : null,
      });
      await ctx.store.add(i);
      stored.push(i);
    }
    const old = incident({ at: Date.now() - 3 * 3600_000 });
    await ctx.store.add(old);
    const c = await as(READER);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await c.ok('list_incidents', { limit: 2, since: '1h', ...(cursor ? { cursor } : {}) });
      expect(page.incidents.length).toBeLessThanOrEqual(2);
      seen.push(...page.incidents.map((i: Incident) => i.id));
      cursor = page.nextCursor ?? undefined;
      if (!cursor) break;
    }
    expect(seen).toEqual(stored.map((i) => i.id).reverse());
    const flooding = await c.ok('list_incidents', { detector: 'leaked_key' });
    expect(flooding.incidents.map((i: Incident) => i.id)).toEqual([stored[3]!.id, stored[1]!.id]);
    expect((await c.ok('list_incidents', { key: key.prefix })).incidents.map((i: Incident) => i.id)).toEqual([stored[4]!.id]);
    expect((await c.ok('get_security_incidents', { limit: 100 })).incidents).toHaveLength(6);
    // A cursor of another list is refused.
    const shadowCursor = Buffer.from('shadow:1-0').toString('base64url');
    expect(await c.error('list_incidents', { cursor: shadowCursor })).toMatch(/cursor: not a cursor of this list/);
    expect(await c.ok('get_incident', { id: stored[2]!.id })).toMatchObject({
      found: true,
      incident: { id: stored[2]!.id, evidence: { promptTokens: 300_000 } },
    });
  });

  it('summarise_incident asks the model now (regenerate) and keeps the stored summary otherwise', async () => {
    const withModel = await mcpContext(tr, db.sql, { OLLAMA_HOST: ollama.url, LLM_MODEL: 'llama3.2:1b' });
    const c = await as(READER, withModel);
    const i = incident({
      keyId: '00000000-0000-4000-8000-00000000abcd',
      ownerEmail: 'secret-owner@example.com',
      keyPrefix: 'fgk_Sum12345',
    });
    await withModel.store.add(i);
    const first = await c.ok('summarise_incident', { id: i.id });
    expect(first).toMatchObject({ found: true, source: 'model', summary: ollama.answer, regenerated: true });
    const sent = ollama.requests
      .at(-1)!
      .body.messages!.map((m) => m.content)
      .join('\n');
    expect(sent).toContain('fgk_Sum12345');
    expect(sent).not.toContain('secret-owner@example.com');
    const asked = ollama.requests.length;
    expect(await c.ok('summarise_incident', { id: i.id })).toMatchObject({ source: 'model', regenerated: false });
    expect(ollama.requests.length).toBe(asked);
    ollama.mode = 'error';
    try {
      // The model fails this time: the template never replaces its earlier summary.
      expect(await c.ok('summarise_incident', { id: i.id, regenerate: true })).toMatchObject({
        source: 'model',
        summary: ollama.answer,
        regenerated: false,
        message: expect.stringMatching(/did not answer/),
      });
    } finally {
      ollama.mode = 'ok';
    }
    expect(ollama.requests.length).toBe(asked + 1);
  });
});

describe('gateway views', () => {
  it('metrics and top consumers come from the counter windows; lists are bounded with cursors', async () => {
    const a = await insertKey(db.sql, 'pro');
    const b = await insertKey(db.sql, 'free');
    const bucket = Math.floor(Date.now() / 60_000);
    const p = tr.redis.pipeline();
    p.sadd(redisKeys.activeKeys('m1', bucket), a.id, b.id);
    p.hset(redisKeys.usage(a.id, 'm1', bucket), {
      req: 100,
      s2xx: 90,
      r429: 10,
      s4xx: 10,
      ptok: 20_000,
      ctok: 30_000,
      ttfb_sum: 5000,
      ttfb_n: 100,
    });
    p.hset(redisKeys.usage(b.id, 'm1', bucket), { req: 10, s2xx: 10, ptok: 150_000, ctok: 50_000 });
    await p.exec();
    const c = await as(READER);
    const m = await c.ok('get_gateway_metrics', { window: '5m' });
    expect(m.totals).toMatchObject({ requests: 110, rateLimited: 10, promptTokens: 170_000, avgTtfbMs: 50 });
    expect(m.activeKeys).toBe(2);
    const byRequests = await c.ok('list_top_consumers', { metric: 'requests', window: '15m', limit: 1 });
    expect(byRequests.consumers).toMatchObject([
      { rank: 1, keyId: a.id, keyPrefix: a.prefix, ownerEmail: a.email, tier: 'pro', value: 100 },
    ]);
    const next = await c.ok('list_top_consumers', { metric: 'requests', window: '15m', limit: 1, cursor: byRequests.nextCursor });
    expect(next.consumers).toMatchObject([{ rank: 2, keyId: b.id, value: 10 }]);
    expect(next.nextCursor).toBeNull();
    expect((await c.ok('list_top_consumers', { metric: 'tokens' })).consumers.map((x: { keyId: string }) => x.keyId)).toEqual([b.id, a.id]);
    // A cursor of the requests ranking is not one of the tokens ranking.
    expect(await c.error('list_top_consumers', { metric: 'tokens', cursor: byRequests.nextCursor })).toMatch(/^cursor:/);
  });

  it("upstream health: a clearly labelled empty answer without records, the replicas' view with them", async () => {
    const c = await as(READER);
    const none = await c.ok('get_upstream_health');
    expect(none).toMatchObject({ status: 'no_data', replicas: 0, upstreams: [] });
    expect(none.note).toMatch(/^No data: no data-plane replica has written upstream health/);
    const report = (replicaId: string, state: string, at = Date.now()) =>
      JSON.stringify({
        replicaId,
        at,
        upstreams: [
          {
            name: 'ollama-a',
            url: 'http://10.0.0.5:11434',
            state,
            outstanding: 2,
            consecutiveFailures: 0,
            ejectedUntil: null,
            lastError: null,
            requests: 50,
            failures: 1,
          },
        ],
      });
    await tr.redis.hset(
      redisKeys.upstreamHealth(),
      'r1',
      report('r1', 'healthy'),
      'r2',
      report('r2', 'ejected'),
      'dead',
      report('dead', 'open', Date.now() - 120_000),
    );
    const some = await c.ok('get_upstream_health');
    expect(some).toMatchObject({
      status: 'ok',
      replicas: 2,
      upstreams: [{ name: 'ollama-a', healthyOn: 1, reportingReplicas: 2, requests: 100, states: { healthy: 1, ejected: 1, open: 0 } }],
    });
  });

  it('resources fluxgate://incidents/{id} and fluxgate://metrics/current, and the triage prompt', async () => {
    const i = incident();
    await ctx.store.add(i);
    const reader = await as(READER);
    const templates = (await reader.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
    expect(templates).toContain('fluxgate://incidents/{id}');
    const listed = (await reader.client.listResources()).resources.map((r) => r.uri);
    expect(listed).toEqual(expect.arrayContaining(['fluxgate://metrics/current', `fluxgate://incidents/${i.id}`]));
    const read = await reader.client.readResource({ uri: `fluxgate://incidents/${i.id}` });
    expect(JSON.parse((read.contents[0] as { text: string }).text)).toMatchObject({ id: i.id, detector: 'context_flooding' });
    const missing = await reader.client.readResource({ uri: `fluxgate://incidents/${formatIncidentId(Date.now(), 'deadbeef')}` });
    expect(JSON.parse((missing.contents[0] as { text: string }).text)).toMatchObject({ found: false });
    const metrics = await reader.client.readResource({ uri: 'fluxgate://metrics/current' });
    expect(JSON.parse((metrics.contents[0] as { text: string }).text)).toMatchObject({ window: '5m', totals: { requests: 0 } });

    const prompt = await reader.client.getPrompt({ name: 'triage_incident', arguments: { incidentId: i.id } });
    expect(prompt.messages).toHaveLength(2);
    expect((prompt.messages[0]!.content as { text: string }).text).toMatch(/explain_key[\s\S]*an operator has to carry it out/);
    expect(prompt.messages[1]!.content).toMatchObject({ type: 'resource', resource: { uri: `fluxgate://incidents/${i.id}` } });
    const operator = await as(OPERATOR);
    const opPrompt = await operator.client.getPrompt({ name: 'triage_incident', arguments: { incidentId: i.id } });
    expect((opPrompt.messages[0]!.content as { text: string }).text).toMatch(/dryRun: true first/);
  });
});

describe('no output carries a secret, a password hash or prompt text', () => {
  it('key views never include the key hash or the owner password hash', async () => {
    const keyHash = randomBytes(32).toString('hex');
    const passwordHash = `$argon2id$v=19$m=65536,t=3,p=4$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;
    const [u] = await db.sql<
      { id: string }[]
    >`INSERT INTO users (email, password_hash) VALUES (${`hash-${randomBytes(3).toString('hex')}@example.com`}, ${passwordHash}) RETURNING id`;
    const [k] = await db.sql<
      { id: string }[]
    >`INSERT INTO api_keys (user_id, display_prefix, key_hash) VALUES (${u!.id}, 'fgk_Hash0001', ${keyHash}) RETURNING id`;
    const bucket = Math.floor(Date.now() / 60_000);
    await tr.redis
      .pipeline()
      .sadd(redisKeys.activeKeys('m1', bucket), k!.id)
      .hset(redisKeys.usage(k!.id, 'm1', bucket), { req: 3 })
      .exec();
    await ctx.store.add(incident({ keyId: k!.id, keyPrefix: 'fgk_Hash0001' }));
    await setPenalty(tr.redis, buildPenaltyRecord({ keyId: k!.id, level: 'penalty-1', setBy: 'operator', reason: 'test' }));
    const c = await as(OPERATOR);
    const answers = await Promise.all([
      c.call('get_key_profile', { key: 'fgk_Hash0001' }),
      c.call('explain_key', { key: k!.id }),
      c.call('list_top_consumers', { metric: 'requests' }),
      c.call('list_incidents', { key: 'fgk_Hash0001' }),
      c.call('list_penalty_box', {}),
    ]);
    for (const a of answers) {
      expect(a.isError).toBeFalsy();
      const all = JSON.stringify(a);
      expect(all).toContain('fgk_Hash0001');
      expect(all).not.toContain(keyHash);
      expect(all).not.toContain(passwordHash.slice(30));
      expect(all).not.toMatch(/password|key_hash/i);
    }
  });
});
