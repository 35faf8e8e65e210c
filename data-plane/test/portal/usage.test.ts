import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageSample } from '../../src/metrics/counters.js';
import { bearer, jsonBody, signUp, startPortal, type PortalHarness } from './support.js';

let h: PortalHarness;
beforeAll(async () => {
  h = await startPortal();
});
afterAll(async () => {
  await h?.close();
});

const sample = (over: Partial<UsageSample> = {}): UsageSample => ({
  status: 200,
  promptTokens: 10,
  completionTokens: 5,
  estimated: false,
  requestBytes: 100,
  responseBytes: 400,
  ttfbMs: 20,
  durationMs: 50,
  clientIp: '127.0.0.1',
  model: 'llama3',
  promptFingerprint: null,
  streamed: true,
  cut: false,
  upstreamError: false,
  ...over,
});

const newKey = async (token: string, name: string) =>
  (await h.call('POST', '/portal/keys', { ...jsonBody({ name }), headers: bearer(token) })).json.key.id as string;

describe('GET /portal/usage', () => {
  it('returns the caller’s usage per key and minute from the Redis counters', async () => {
    const s = await signUp(h.call, 'usage@example.com');
    const k1 = await newKey(s.token, 'one');
    const k2 = await newKey(s.token, 'two');
    const now = Date.now();
    const t0 = Math.floor((now - 5 * 60_000) / 60_000) * 60_000 + 10;
    h.counters.record(k1, sample(), t0);
    h.counters.record(k1, sample({ status: 429, promptTokens: 30, completionTokens: 0 }), t0 + 1);
    h.counters.record(k1, sample({ promptTokens: 7 }), now);
    h.counters.record(k2, sample({ status: 502, upstreamError: true }), now);
    expect((await h.counters.flush()).ok).toBe(true);

    const res = await h.call('GET', '/portal/usage', { headers: bearer(s.token), query: `window=m1&since=${now - 10 * 60_000}` });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ window: 'm1', bucketSeconds: 60 });
    const byId = new Map(res.json.keys.map((k: { id: string }) => [k.id, k]));
    const one = byId.get(k1) as { name: string; points: Array<Record<string, number>>; totals: Record<string, number> };
    expect(one.name).toBe('one');
    expect(one.points.map((p) => p.t)).toEqual([Math.floor(t0 / 60_000) * 60_000, Math.floor(now / 60_000) * 60_000]);
    expect(one.points[0]).toMatchObject({
      requests: 2,
      status2xx: 1,
      status4xx: 1,
      rateLimited: 1,
      promptTokens: 40,
      completionTokens: 5,
      maxPromptTokens: 30,
    });
    expect(one.totals).toMatchObject({ requests: 3, promptTokens: 47, completionTokens: 10, maxPromptTokens: 30 });
    const two = byId.get(k2) as { totals: Record<string, number> };
    expect(two.totals).toMatchObject({ requests: 1, status5xx: 1, upstreamErrors: 1 });

    const onlyTwo = await h.call('GET', '/portal/usage', { headers: bearer(s.token), query: `key=${k2}` });
    expect(onlyTwo.json.keys.map((k: { id: string }) => k.id)).toEqual([k2]);

    const hourly = await h.call('GET', '/portal/usage', { headers: bearer(s.token), query: 'window=h1' });
    const total = hourly.json.keys.reduce((n: number, k: { totals: { requests: number } }) => n + k.totals.requests, 0);
    expect(total).toBe(4);
  });

  it('never shows another account’s key, even by id', async () => {
    const a = await signUp(h.call, 'usage-a@example.com');
    const b = await signUp(h.call, 'usage-b@example.com');
    const kb = await newKey(b.token, 'b');
    h.counters.record(kb, sample());
    await h.counters.flush();
    const mine = await h.call('GET', '/portal/usage', { headers: bearer(a.token) });
    expect(mine.json.keys).toEqual([]);
    const peek = await h.call('GET', '/portal/usage', { headers: bearer(a.token), query: `key=${kb}` });
    expect(peek.status).toBe(404);
  });

  it('refuses unbounded or malformed ranges with 400', async () => {
    const s = await signUp(h.call, 'usage-range@example.com');
    for (const query of [
      'window=s10',
      'since=0',
      'window=h1&since=0',
      'since=tomorrow',
      `since=${Date.now()}&until=${Date.now() - 3600_000}`,
    ]) {
      const res = await h.call('GET', '/portal/usage', { headers: bearer(s.token), query });
      expect(res.status, query).toBe(400);
      expect(res.json.error.code).toBe('bad_request');
    }
    expect((await h.call('GET', '/portal/usage')).status).toBe(401);
  });
});
