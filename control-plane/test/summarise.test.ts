import { formatIncidentId, INCIDENT_SCHEMA_VERSION, redisKeys, type Incident } from '@fluxgate/contracts';
import { Ollama } from 'ollama';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createIncidentStore, type IncidentStore } from '../src/incidents/store.js';
import { timeoutFetch } from '../src/summarise/ollama-client.js';
import { createSummariser, type Summariser } from '../src/summarise/summariser.js';
import { connectTestRedis, waitUntil, type TestRedis } from './support/services.js';
import { startOllamaStandIn, type OllamaStandIn } from './support/ollama-standin.js';

let tr: TestRedis;
let store: IncidentStore;
let ollama: OllamaStandIn;
let seq = 0;
beforeAll(async () => {
  tr = await connectTestRedis();
  store = createIncidentStore(tr.redis, 1000);
  ollama = await startOllamaStandIn();
});
afterEach(async () => {
  // A request the client gave up on may still be sleeping in the stand-in: let it finish.
  await waitUntil(() => ollama.inFlight === 0, { timeoutMs: 5000 });
  ollama.mode = 'ok';
  ollama.requests.length = 0;
  ollama.maxInFlight = 0;
});
afterAll(async () => {
  await ollama?.close();
  await tr?.close();
});

const incident = (over: Partial<Incident> = {}): Incident => {
  const at = 1_765_000_000_000 + ++seq;
  return {
    v: INCIDENT_SCHEMA_VERSION,
    id: formatIncidentId(at, (0x10000000 + seq).toString(16)),
    at,
    updatedAt: at,
    source: 'guard',
    keyId: '6a1c0000-0000-4000-8000-000000000001',
    keyPrefix: 'fgk_7Hq2',
    ownerId: 'u1',
    ownerEmail: 'owner@example.com',
    tier: 'free',
    clientIp: '198.51.100.23',
    detector: 'context_flooding',
    mode: 'enforce',
    evidence: { promptTokens: 300_000, requests: 10 },
    thresholds: { promptTokens: 225_000, requests: 3 },
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
};

const summariser = (opts: { timeoutMs?: number; concurrency?: number } = {}): Summariser =>
  createSummariser({
    ollama: new Ollama({ host: ollama.url, fetch: timeoutFetch(opts.timeoutMs ?? 2000) }),
    model: 'llama3.2:1b',
    concurrency: opts.concurrency ?? 2,
    retryMs: 60_000,
    retryQueue: 100,
    save: (s) => store.saveSummary(s),
    load: (id) => store.get(id),
  });

async function stored(i: Incident): Promise<Incident> {
  await store.add(i);
  return i;
}

describe('summaries', () => {
  it('asks the model with a prompt built only from the evidence, and stores its answer as `model`', async () => {
    const i = await stored(incident());
    const s = summariser();
    s.enqueue(i);
    await s.idle();
    expect(await store.get(i.id)).toMatchObject({ summary: ollama.answer, summarySource: 'model' });
    expect(ollama.requests).toHaveLength(1);
    const body = ollama.requests[0]!.body;
    expect(body).toMatchObject({ model: 'llama3.2:1b', stream: false });
    const prompt = body.messages!.map((m) => m.content).join('\n');
    expect(prompt).toContain('context_flooding');
    expect(prompt).toContain('promptTokens: 300,000 (threshold 225,000)');
    expect(prompt).toContain('fgk_7Hq2');
    expect(prompt).not.toContain('owner@example.com');
    expect(prompt).not.toContain('198.51.100.23');
  });

  it('garbage from the model: the template, marked so, and no retry', async () => {
    ollama.mode = 'garbage';
    const i = await stored(incident());
    const s = summariser();
    s.enqueue(i);
    await s.idle();
    const got = await store.get(i.id);
    expect(got?.summarySource).toBe('template');
    expect(got?.summary).toMatch(
      /^API key fgk_7Hq2 \(tier free\) sent many very large prompts \(context_flooding, enforce mode\)\. Action: penalty penalty-1 until /,
    );
    expect(s.stats().awaitingModel).toBe(0);
  });

  it('an operator incident (an older record stored without its summary) gets the template, and the model is never asked', async () => {
    const i = await stored(
      incident({
        source: 'operator',
        detector: null,
        action: 'allowlist_add',
        level: null,
        expiresAt: null,
        status: 'closed',
        actor: 'cli:ops',
        reason: 'our load test',
        clientIp: null,
      }),
    );
    const s = summariser();
    s.enqueue(i);
    await s.idle();
    expect(ollama.requests).toHaveLength(0);
    expect(await store.get(i.id)).toMatchObject({
      summarySource: 'template',
      summary: 'Operator allowlisted API key fgk_7Hq2. By cli:ops; reason: our load test.',
    });
  });

  it('slow model: the template at once (never blocked), then the model summary once it answers in time', async () => {
    ollama.mode = 'slow';
    ollama.slowMs = 1500;
    const i = await stored(incident());
    const s = summariser({ timeoutMs: 300 });
    s.enqueue(i);
    await s.idle();
    expect((await store.get(i.id))?.summarySource).toBe('template');
    expect(s.stats().awaitingModel).toBe(1);
    ollama.mode = 'ok';
    await s.retryNow();
    expect(await store.get(i.id)).toMatchObject({ summarySource: 'model', summary: ollama.answer });
    expect(s.stats().awaitingModel).toBe(0);
  });

  it('Ollama down: every incident keeps a template summary; when it returns, the retry upgrades them', async () => {
    await ollama.close();
    const a = await stored(incident());
    const b = await stored(incident({ detector: 'leaked_key', evidence: { distinctIps: 20 }, thresholds: { distinctIps: 10 } }));
    const s = summariser();
    s.enqueue(a);
    s.enqueue(b);
    await s.idle();
    expect((await store.get(a.id))?.summarySource).toBe('template');
    expect((await store.get(b.id))?.summary).toContain('was used from many different client IP addresses');
    // Still down: a retry pass costs one attempt and changes nothing.
    await s.retryNow();
    expect(s.stats().awaitingModel).toBe(2);
    await ollama.reopen();
    await s.retryNow();
    expect((await store.get(a.id))?.summarySource).toBe('model');
    expect((await store.get(b.id))?.summarySource).toBe('model');
  });

  it('bounded concurrency', async () => {
    ollama.mode = 'slow';
    ollama.slowMs = 200;
    const s = summariser({ concurrency: 2 });
    for (let n = 0; n < 6; n++) s.enqueue(await stored(incident()));
    await s.idle();
    expect(ollama.requests).toHaveLength(6);
    expect(ollama.maxInFlight).toBe(2);
  });
});

describe('incident ring buffer', () => {
  it('keeps INCIDENT_CAPACITY incidents; records and summaries leave with their stream entries', async () => {
    const t = await connectTestRedis();
    try {
      const small = createIncidentStore(t.redis, 3);
      const all = Array.from({ length: 5 }, () => incident());
      for (const i of all) {
        expect(await small.add(i)).toBe(true);
        await small.saveSummary({ id: i.id, summary: 'A summary long enough to count as one.', source: 'template', model: null, at: i.at });
      }
      expect(await small.add(all[4]!)).toBe(false); // idempotent by id
      expect(await t.redis.xlen(redisKeys.incidents())).toBe(3);
      expect(await t.redis.hlen(redisKeys.incidentRecords())).toBe(3);
      expect(await t.redis.hlen(redisKeys.incidentSummaries())).toBe(3);
      expect(await small.get(all[0]!.id)).toBeNull();
      expect(await small.update({ ...all[0]!, polls: 9 })).toBe(false); // never resurrected
      expect((await small.list(10)).incidents.map((i) => i.id)).toEqual([all[4]!.id, all[3]!.id, all[2]!.id]);
    } finally {
      await t.close();
    }
  });
});
