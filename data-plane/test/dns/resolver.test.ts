/**
 * The resolver against real local DoH upstreams (node:https speaking RFC 8484): forwarding,
 * TTLs and their clamps, negative caching (RFC 2308), serve-stale (RFC 8767), fallback and
 * per-server timeouts, coalescing. Time-dependent cases fake only Date (the cache's clock), so
 * sockets and timeouts keep running on real time.
 */
import type { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort, waitUntil } from '../support/services.js';
import { rr, startDohUpstream, type DohUpstream } from './doh-upstream.js';
import { buildResolver, counterValue, type Built } from './support.js';

/** Observations in one histogram series (its `_count`; 0 when absent). */
async function histogramCount(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  // A histogram's values carry their series name (_bucket, _sum, _count).
  const values = (await metric.get()).values as Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
  const match = values.find(
    (v) => v.metricName === `${name}_count` && Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val),
  );
  return match?.value ?? 0;
}

let up1: DohUpstream;
let up2: DohUpstream;
const built: Built[] = [];
const make = (o: Parameters<typeof buildResolver>[0]) => {
  const b = buildResolver(o);
  built.push(b);
  return b;
};

beforeAll(async () => {
  [up1, up2] = await Promise.all([startDohUpstream(), startDohUpstream()]);
});
afterAll(async () => {
  await Promise.all([up1.close(), up2.close()]);
});
afterEach(async () => {
  vi.useRealTimers();
  up1.reset();
  up2.reset();
  await Promise.all(built.splice(0).map((b) => b.resolver.close()));
});

describe('forwarding and the cache', () => {
  it('forwards A and AAAA to the upstream, then answers from the cache', async () => {
    up1.set('fwd.example', 'A', { answers: [rr('fwd.example', 'A', '203.0.113.7', 120)] });
    up1.set('fwd.example', 'AAAA', { answers: [rr('fwd.example', 'AAAA', '2001:db8::7', 90)] });
    const { resolver, registry } = make({ upstreams: [up1] });

    expect(await resolver.resolve('fwd.example', 'A')).toEqual({
      addresses: ['203.0.113.7'],
      ttl: 120,
      rcode: 'NOERROR',
      source: 'upstream',
    });
    expect(await resolver.resolve('FWD.example.', 'A')).toMatchObject({ addresses: ['203.0.113.7'], source: 'cache' });
    expect(await resolver.resolve('fwd.example', 'AAAA')).toMatchObject({ addresses: ['2001:db8::7'], ttl: 90, source: 'upstream' });
    expect(up1.count('fwd.example', 'A')).toBe(1);
    expect(up1.count('fwd.example', 'AAAA')).toBe(1);
    expect(await counterValue(registry, 'fluxgate_dns_lookups_total', { source: 'cache' })).toBe(1);
    expect(await counterValue(registry, 'fluxgate_dns_lookups_total', { source: 'upstream' })).toBe(2);
  });

  it('counts a cache hit and records the upstream exchange in the latency histogram', async () => {
    up1.set('metrics.example', 'A', { answers: [rr('metrics.example', 'A', '203.0.113.60', 120)] });
    const { resolver, registry } = make({ upstreams: [up1] });
    expect(await counterValue(registry, 'fluxgate_dns_cache_hits_total', { state: 'fresh' })).toBe(0);
    expect(await histogramCount(registry, 'fluxgate_dns_upstream_duration_seconds', { server: '0' })).toBe(0);

    expect(await resolver.resolve('metrics.example', 'A')).toMatchObject({ source: 'upstream' });
    expect(await counterValue(registry, 'fluxgate_dns_cache_hits_total', { state: 'fresh' })).toBe(0);
    expect(await counterValue(registry, 'fluxgate_dns_cache_misses_total')).toBe(1);
    expect(await histogramCount(registry, 'fluxgate_dns_upstream_duration_seconds', { server: '0' })).toBe(1);

    expect(await resolver.resolve('metrics.example', 'A')).toMatchObject({ source: 'cache' });
    expect(await counterValue(registry, 'fluxgate_dns_cache_hits_total', { state: 'fresh' })).toBe(1);
    expect(await counterValue(registry, 'fluxgate_dns_cache_hits_total', { state: 'stale' })).toBe(0);
    // A cache hit is not an upstream exchange: the histogram still holds the one observation.
    expect(await histogramCount(registry, 'fluxgate_dns_upstream_duration_seconds', { server: '0' })).toBe(1);
    expect(up1.count('metrics.example', 'A')).toBe(1);
  });

  it('follows a CNAME chain to the addresses', async () => {
    up1.set('alias.example', 'A', {
      answers: [rr('alias.example', 'CNAME', 'real.example', 300), rr('real.example', 'A', '203.0.113.9', 60)],
    });
    const { resolver } = make({ upstreams: [up1] });
    expect(await resolver.resolve('alias.example', 'A')).toMatchObject({ addresses: ['203.0.113.9'], ttl: 60 });
  });

  it('honours the TTL and clamps it to [min, max]', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    up1.set('ttl.example', 'A', { answers: [rr('ttl.example', 'A', '203.0.113.1', 30)] });
    up1.set('short.example', 'A', { answers: [rr('short.example', 'A', '203.0.113.2', 1)] });
    up1.set('long.example', 'A', { answers: [rr('long.example', 'A', '203.0.113.3', 604_800)] });
    const { resolver } = make({ upstreams: [up1], cache: { minTtlSec: 10, maxTtlSec: 600, maxStaleSec: 0 } });

    await resolver.resolve('ttl.example', 'A');
    vi.setSystemTime(1_000_000 + 29_000);
    expect(await resolver.resolve('ttl.example', 'A')).toMatchObject({ source: 'cache', ttl: 1 });
    vi.setSystemTime(1_000_000 + 30_000);
    expect(await resolver.resolve('ttl.example', 'A')).toMatchObject({ source: 'upstream', ttl: 30 });
    expect(up1.count('ttl.example')).toBe(2);

    // TTL 1 is held for the 10 s minimum; a week is cut to the 600 s maximum.
    vi.setSystemTime(2_000_000);
    expect(await resolver.resolve('short.example', 'A')).toMatchObject({ ttl: 10 });
    vi.setSystemTime(2_000_000 + 9_000);
    expect(await resolver.resolve('short.example', 'A')).toMatchObject({ source: 'cache' });
    expect(up1.count('short.example')).toBe(1);
    expect(await resolver.resolve('long.example', 'A')).toMatchObject({ ttl: 600 });
  });
});

describe('negative caching (RFC 2308)', () => {
  it('caches NXDOMAIN and NODATA for min(SOA TTL, MINIMUM), and does not cache without a SOA', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(5_000_000);
    up1.set('gone.example', 'A', { rcode: 'NXDOMAIN', soa: { ttl: 60, minimum: 20 } });
    up1.set('v4only.example', 'A', { answers: [rr('v4only.example', 'A', '203.0.113.4')] });
    up1.set('v4only.example', 'AAAA', { soa: { ttl: 15, minimum: 900 } });
    up1.set('nosoa.example', 'A', { rcode: 'NXDOMAIN', soa: null });
    const { resolver } = make({ upstreams: [up1], cache: { negativeMinTtlSec: 1, maxStaleSec: 0 } });

    expect(await resolver.resolve('gone.example', 'A')).toEqual({ addresses: [], ttl: 20, rcode: 'NXDOMAIN', source: 'upstream' });
    vi.setSystemTime(5_000_000 + 19_000);
    expect(await resolver.resolve('gone.example', 'A')).toMatchObject({ rcode: 'NXDOMAIN', source: 'cache' });
    expect(up1.count('gone.example')).toBe(1);
    vi.setSystemTime(5_000_000 + 20_000);
    expect(await resolver.resolve('gone.example', 'A')).toMatchObject({ rcode: 'NXDOMAIN', source: 'upstream' });
    expect(up1.count('gone.example')).toBe(2);

    expect(await resolver.resolve('v4only.example', 'AAAA')).toEqual({ addresses: [], ttl: 15, rcode: 'NOERROR', source: 'upstream' });
    expect(await resolver.resolve('v4only.example', 'AAAA')).toMatchObject({ rcode: 'NOERROR', source: 'cache' });
    expect(up1.count('v4only.example', 'AAAA')).toBe(1);

    await resolver.resolve('nosoa.example', 'A');
    expect(await resolver.resolve('nosoa.example', 'A')).toMatchObject({ rcode: 'NXDOMAIN', source: 'upstream' });
    expect(up1.count('nosoa.example')).toBe(2);
  });
});

describe('serve-stale (RFC 8767)', () => {
  it('serves an expired answer at once while one refresh runs; keeps serving it while upstreams fail', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = 10_000_000;
    vi.setSystemTime(t0);
    up1.set('stale.example', 'A', { answers: [rr('stale.example', 'A', '203.0.113.10', 30)] });
    const { resolver, registry } = make({ upstreams: [up1], cache: { failureRecheckSec: 30 }, client: { backoffMs: 1 } });
    await resolver.resolve('stale.example', 'A');

    // Expired, upstream broken: the stale answer comes back with the RFC 8767 TTL of 30 s.
    up1.failure = 'http500';
    vi.setSystemTime(t0 + 31_000);
    expect(await resolver.resolve('stale.example', 'A')).toEqual({
      addresses: ['203.0.113.10'],
      ttl: 30,
      rcode: 'NOERROR',
      source: 'stale',
    });
    await waitUntil(() => up1.queries.filter((q) => q === 'http500').length === 1, { message: 'background refresh attempt' });
    await waitUntil(async () => (await counterValue(registry, 'fluxgate_dns_upstream_failures_total', { server: '0' })) === 1);

    // Within the failure recheck period no further refresh is tried.
    vi.setSystemTime(t0 + 40_000);
    expect(await resolver.resolve('stale.example', 'A')).toMatchObject({ source: 'stale' });
    expect(up1.queries.filter((q) => q === 'http500').length).toBe(1);

    // Upstream back and recheck period over: stale once more while the refresh lands, then fresh.
    up1.failure = 'none';
    up1.set('stale.example', 'A', { answers: [rr('stale.example', 'A', '203.0.113.11', 30)] });
    vi.setSystemTime(t0 + 62_000);
    expect(await resolver.resolve('stale.example', 'A')).toMatchObject({ addresses: ['203.0.113.10'], source: 'stale' });
    await waitUntil(async () => (await resolver.resolve('stale.example', 'A')).source === 'cache', { message: 'refreshed entry' });
    expect(await resolver.resolve('stale.example', 'A')).toMatchObject({ addresses: ['203.0.113.11'] });
    expect(up1.count('stale.example')).toBe(2);
  });
});

describe('upstream fallback, timeouts and health', () => {
  it('falls back in order when the first upstream is down, then skips it for the backoff period', async () => {
    const dead = `https://127.0.0.1:${await freePort()}/dns-query`;
    up2.set('fallback.example', 'A', { answers: [rr('fallback.example', 'A', '203.0.113.20')] });
    up2.set('fallback2.example', 'A', { answers: [rr('fallback2.example', 'A', '203.0.113.21')] });
    up1.failure = 'http500';
    const { resolver, client, registry } = make({ leadingUrls: [dead], upstreams: [up1, up2] });

    expect(await resolver.resolve('fallback.example', 'A')).toMatchObject({ addresses: ['203.0.113.20'] });
    const status = client!.status();
    expect(status.map((s) => s.consecutiveFailures)).toEqual([1, 1, 0]);
    expect(status[0]!.lastError).toBe('ECONNREFUSED');
    expect(status[1]!.skipUntil).toBeGreaterThan(Date.now());

    // Both broken servers are in backoff: the next query goes straight to the third.
    expect(await resolver.resolve('fallback2.example', 'A')).toMatchObject({ addresses: ['203.0.113.21'] });
    expect(up1.queries.filter((q) => q === 'http500').length).toBe(1);
    expect(await counterValue(registry, 'fluxgate_dns_upstream_failures_total', { server: '0' })).toBe(1);
    expect(await counterValue(registry, 'fluxgate_dns_upstream_failures_total', { server: '1' })).toBe(1);
  });

  it('gives each server its own timeout', async () => {
    up1.latencyMs = 5_000;
    up1.set('slow.example', 'A', { answers: [rr('slow.example', 'A', '203.0.113.30')] });
    up2.set('slow.example', 'A', { answers: [rr('slow.example', 'A', '203.0.113.31')] });
    const { resolver, client } = make({ upstreams: [up1, up2], client: { timeoutMs: 200 } });
    const started = performance.now();
    expect(await resolver.resolve('slow.example', 'A')).toMatchObject({ addresses: ['203.0.113.31'] });
    // The first server was given up on at its own timeout (a timer: load only makes it later);
    // the answer is the second server's, where waiting out the first would have returned .30.
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(client!.status()[0]!.consecutiveFailures).toBe(1);
  });

  it('treats a garbage or mismatched answer as a server failure and SERVFAIL as a reason to ask the next', async () => {
    up1.failure = 'wrong-question';
    up2.set('mismatch.example', 'A', { answers: [rr('mismatch.example', 'A', '203.0.113.40')] });
    const a = make({ upstreams: [up1, up2] });
    expect(await a.resolver.resolve('mismatch.example', 'A')).toMatchObject({ addresses: ['203.0.113.40'] });
    expect(a.client!.status()[0]!.lastError).toBe('answer to another question');

    up1.failure = 'none';
    up1.set('servfail.example', 'A', { rcode: 'SERVFAIL' });
    up2.set('servfail.example', 'A', { rcode: 'SERVFAIL' });
    const b = make({ upstreams: [up1, up2] });
    expect(await b.resolver.resolve('servfail.example', 'A')).toEqual({ addresses: [], ttl: 0, rcode: 'SERVFAIL', source: null });
    expect(up1.count('servfail.example') + up2.count('servfail.example')).toBe(2);
    // SERVFAIL is the domain's problem, not the server's: nobody is put in backoff.
    expect(b.client!.status().map((s) => s.consecutiveFailures)).toEqual([0, 0]);
  });
});

describe('coalescing', () => {
  it('shares one upstream query among concurrent lookups of one name', async () => {
    up1.latencyMs = 100;
    up1.set('busy.example', 'A', { answers: [rr('busy.example', 'A', '203.0.113.50')] });
    const { resolver } = make({ upstreams: [up1] });
    const results = await Promise.all(Array.from({ length: 50 }, () => resolver.resolve('busy.example', 'A')));
    expect(up1.count('busy.example', 'A')).toBe(1);
    expect(new Set(results.map((r) => r.addresses.join()))).toEqual(new Set(['203.0.113.50']));
    // The lookup path coalesces too.
    const origin = new URL('http://busy2.example/');
    up1.set('busy2.example', 'A', { answers: [rr('busy2.example', 'A', '203.0.113.51')] });
    const lookups = await Promise.all(
      Array.from(
        { length: 20 },
        () => new Promise<unknown>((res, rej) => resolver.lookup(origin, {}, (err, addrs) => (err ? rej(err) : res(addrs)))),
      ),
    );
    expect(up1.count('busy2.example', 'A')).toBe(1);
    expect(lookups[0]).toEqual([{ address: '203.0.113.51', family: 4, ttl: 300_000 }]);
  });
});
