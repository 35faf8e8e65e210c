import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { KeyRecord } from '../store/keys.js';
import { KeyStoreUnavailableError, createKeyCache, type KeyCacheOptions } from './key-cache.js';

const rec = (id: string, status: KeyRecord['status'] = 'active'): KeyRecord => ({
  id,
  userId: `u-${id}`,
  status,
  tier: 'free',
  prefix: `fgk_${id}`,
  ownerEmail: `${id}@example.com`,
  role: 'user',
});

/** An in-memory store that counts lookups; `fail` makes it throw like a dead Postgres. */
function fakeStore(records: Record<string, KeyRecord>) {
  const state = { calls: 0, fail: false, data: { ...records } };
  const lookup = vi.fn(async (hash: string) => {
    state.calls++;
    if (state.fail) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    return state.data[hash] ?? null;
  });
  return { state, lookup };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const make = (store: ReturnType<typeof fakeStore>, opts: Partial<KeyCacheOptions> = {}) =>
  createKeyCache({ lookup: store.lookup, ...opts });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('key cache', () => {
  it('serves a known key from memory for the TTL, then asks the store again', async () => {
    const store = fakeStore({ h1: rec('k1') });
    const cache = make(store, { ttlMs: 60_000 });
    expect(await cache.get('h1')).toEqual(rec('k1'));
    vi.advanceTimersByTime(59_999);
    expect(await cache.get('h1')).toEqual(rec('k1'));
    expect(store.state.calls).toBe(1);
    vi.advanceTimersByTime(2);
    await cache.get('h1');
    expect(store.state.calls).toBe(2);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, lookups: 2 });
  });

  it('caches unknown hashes negatively for the negative TTL', async () => {
    const store = fakeStore({});
    const cache = make(store, { negativeTtlMs: 30_000 });
    for (let i = 0; i < 50; i++) expect(await cache.get('nope')).toBeNull();
    expect(store.state.calls).toBe(1);
    vi.advanceTimersByTime(30_001);
    expect(await cache.get('nope')).toBeNull();
    expect(store.state.calls).toBe(2);
    expect(cache.stats().negativeHits).toBe(49);
  });

  it('caches revoked and suspended keys too (their repeated use never reaches the store)', async () => {
    const store = fakeStore({ r: rec('kr', 'revoked'), s: rec('ks', 'suspended') });
    const cache = make(store);
    for (let i = 0; i < 10; i++) {
      expect((await cache.get('r'))?.status).toBe('revoked');
      expect((await cache.get('s'))?.status).toBe('suspended');
    }
    expect(store.state.calls).toBe(2);
  });

  it('makes one store lookup for many concurrent requests with one uncached key', async () => {
    const store = fakeStore({});
    const gate = deferred<KeyRecord | null>();
    store.lookup.mockImplementation(async () => {
      store.state.calls++;
      return gate.promise;
    });
    const cache = make(store);
    const all = Promise.all(Array.from({ length: 200 }, () => cache.get('h1')));
    expect(cache.stats().inflight).toBe(1);
    gate.resolve(rec('k1'));
    const results = await all;
    expect(store.state.calls).toBe(1);
    expect(new Set(results.map((r) => r?.id))).toEqual(new Set(['k1']));
  });

  it('bounds the negative cache so a flood of distinct bad keys cannot grow memory or evict good keys', async () => {
    const store = fakeStore({ good: rec('g') });
    const cache = make(store, { maxEntries: 10, maxNegativeEntries: 100 });
    await cache.get('good');
    for (let i = 0; i < 10_000; i++) await cache.get(`bad-${i}`);
    expect(cache.stats().negativeEntries).toBe(100);
    expect(cache.stats().entries).toBe(1);
    const before = store.state.calls;
    await cache.get('good');
    expect(store.state.calls).toBe(before);
  });

  it('evicts the least recently used known key first', async () => {
    const store = fakeStore({ a: rec('a'), b: rec('b'), c: rec('c') });
    const cache = make(store, { maxEntries: 2 });
    await cache.get('a');
    await cache.get('b');
    await cache.get('a');
    await cache.get('c');
    const calls = store.state.calls;
    await cache.get('a');
    await cache.get('c');
    expect(store.state.calls).toBe(calls);
    await cache.get('b');
    expect(store.state.calls).toBe(calls + 1);
  });

  it('drops entries by hash or by key id', async () => {
    const store = fakeStore({ h1: rec('k1'), h2: rec('k2') });
    const cache = make(store);
    await cache.get('h1');
    await cache.get('h2');
    store.state.data.h1 = rec('k1', 'revoked');
    store.state.data.h2 = rec('k2', 'suspended');
    cache.invalidate({ keyHash: 'h1' });
    cache.invalidate({ keyId: 'k2' });
    expect((await cache.get('h1'))?.status).toBe('revoked');
    expect((await cache.get('h2'))?.status).toBe('suspended');
    expect(store.state.calls).toBe(4);
  });

  it('does not cache a lookup that raced an invalidation of the same key', async () => {
    const store = fakeStore({});
    const gate = deferred<KeyRecord | null>();
    store.lookup.mockImplementationOnce(async () => {
      store.state.calls++;
      return gate.promise;
    });
    const cache = make(store);
    const first = cache.get('h1');
    // The revocation commits and its event arrives while the (pre-commit) read is in flight.
    cache.invalidate({ keyId: 'k1' });
    gate.resolve(rec('k1', 'active'));
    expect((await first)?.status).toBe('active');
    store.state.data.h1 = rec('k1', 'revoked');
    expect((await cache.get('h1'))?.status).toBe('revoked');
    expect(store.state.calls).toBe(2);
  });

  it('when the store fails: unknown hashes reject as unavailable, known keys are served stale', async () => {
    const store = fakeStore({ h1: rec('k1') });
    const cache = make(store, { ttlMs: 1000, staleIfErrorMs: 10_000 });
    await cache.get('h1');
    store.state.fail = true;
    vi.advanceTimersByTime(5000);
    expect(await cache.get('h1')).toEqual(rec('k1'));
    expect(cache.stats().staleServed).toBe(1);
    await expect(cache.get('other')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
    vi.advanceTimersByTime(10_000);
    await expect(cache.get('h1')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
    store.state.fail = false;
    expect(await cache.get('h1')).toEqual(rec('k1'));
  });

  it('forgets a known key the store no longer has, so it is not served stale later', async () => {
    const store = fakeStore({ h1: rec('k1') });
    const cache = make(store, { ttlMs: 1000, negativeTtlMs: 1000 });
    await cache.get('h1');
    delete store.state.data.h1;
    vi.advanceTimersByTime(1001);
    expect(await cache.get('h1')).toBeNull();
    vi.advanceTimersByTime(1001);
    store.state.fail = true;
    await expect(cache.get('h1')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('never serves an invalidated key stale, even when the store is down', async () => {
    const store = fakeStore({ h1: rec('k1') });
    const cache = make(store);
    await cache.get('h1');
    store.state.fail = true;
    cache.invalidate({ keyId: 'k1' });
    await expect(cache.get('h1')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('expireAll makes every key refresh on next use but keeps stale-if-error', async () => {
    const store = fakeStore({ h1: rec('k1') });
    const cache = make(store);
    await cache.get('h1');
    cache.expireAll();
    await cache.get('h1');
    expect(store.state.calls).toBe(2);
    cache.expireAll();
    store.state.fail = true;
    expect(await cache.get('h1')).toEqual(rec('k1'));
  });

  it('the CLI promise, with the defaults: a revoked key whose every event was lost is refused within 60 s, or 65 s while the store is down', async () => {
    const store = fakeStore({ h1: rec('k1'), h2: rec('k2') });
    const cache = make(store);
    await cache.get('h1');
    await cache.get('h2');
    // Revoked in Postgres; no pub/sub message, no feed entry reaches this replica.
    store.state.data.h1 = rec('k1', 'revoked');
    store.state.data.h2 = rec('k2', 'revoked');
    vi.advanceTimersByTime(59_999);
    expect((await cache.get('h1'))?.status).toBe('active');
    vi.advanceTimersByTime(1);
    expect((await cache.get('h1'))?.status).toBe('revoked');
    // The store is unreachable when the entry expires: served stale for 5 s, then 503, never minutes.
    store.state.fail = true;
    expect((await cache.get('h2'))?.status).toBe('active');
    vi.advanceTimersByTime(4_999);
    expect((await cache.get('h2'))?.status).toBe('active');
    vi.advanceTimersByTime(1);
    await expect(cache.get('h2')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
    vi.advanceTimersByTime(15 * 60_000);
    await expect(cache.get('h2')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('block() refuses a cached key at once, re-reads the store on next use, and keeps refusing while the store is down', async () => {
    const store = fakeStore({ h1: rec('k1'), h2: rec('k2') });
    const cache = make(store, { staleIfErrorMs: 1000 });
    await cache.get('h1');
    await cache.get('h2');
    store.state.fail = true;
    cache.block('k1', 'revoked');
    cache.block('k2', 'suspended');
    expect((await cache.get('h1'))?.status).toBe('revoked');
    expect((await cache.get('h2'))?.status).toBe('suspended');
    // Past the active stale window, a refusal is still answered as such, not as a 503.
    vi.advanceTimersByTime(120_000);
    expect((await cache.get('h1'))?.status).toBe('revoked');
    // The store is the truth once it answers: the suspension was lifted meanwhile.
    store.state.fail = false;
    expect((await cache.get('h2'))?.status).toBe('active');
    expect(store.state.calls).toBe(2 + 4);
    expect(cache.stats().blocks).toBe(2);
  });

  it('block() of a key this replica never cached changes nothing, and a lookup racing it is not cached', async () => {
    const store = fakeStore({ h1: rec('k1') });
    const gate = deferred<KeyRecord | null>();
    store.lookup.mockImplementationOnce(() => gate.promise);
    const cache = make(store);
    const first = cache.get('h1');
    await vi.advanceTimersByTimeAsync(0);
    cache.block('k1', 'revoked');
    gate.resolve(rec('k1'));
    expect((await first)?.status).toBe('active');
    store.state.data.h1 = rec('k1', 'revoked');
    expect((await cache.get('h1'))?.status).toBe('revoked');
    cache.block('never-seen', 'revoked');
    expect(cache.stats().entries).toBe(1);
  });

  it('expireAll counts the stale window from now, so a resync cannot extend it to the TTL', async () => {
    const store = fakeStore({ h1: rec('k1') });
    const cache = make(store, { ttlMs: 60_000, staleIfErrorMs: 5_000 });
    await cache.get('h1');
    cache.expireAll();
    store.state.fail = true;
    expect((await cache.get('h1'))?.status).toBe('active');
    vi.advanceTimersByTime(5_000);
    await expect(cache.get('h1')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('fails a lookup that takes longer than the timeout', async () => {
    const store = fakeStore({});
    store.lookup.mockImplementation(() => new Promise(() => undefined));
    const cache = make(store, { lookupTimeoutMs: 3000 });
    const p = cache.get('slow');
    const check = expect(p).rejects.toThrow(/exceeded 3000 ms/);
    await vi.advanceTimersByTimeAsync(3001);
    await check;
    expect(cache.stats().inflight).toBe(0);
  });

  it('limits concurrent store lookups and refuses beyond the queue', async () => {
    const store = fakeStore({});
    const gates: Array<ReturnType<typeof deferred<KeyRecord | null>>> = [];
    store.lookup.mockImplementation(() => {
      const g = deferred<KeyRecord | null>();
      gates.push(g);
      return g.promise;
    });
    const cache = make(store, { maxConcurrentLookups: 2, maxQueuedLookups: 1 });
    const ps = ['a', 'b', 'c'].map((h) => cache.get(h));
    await expect(cache.get('d')).rejects.toThrow(/too many key lookups/);
    await vi.advanceTimersByTimeAsync(0);
    expect(gates).toHaveLength(2);
    gates[0]!.resolve(null);
    await vi.waitFor(() => expect(gates).toHaveLength(3));
    gates[1]!.resolve(null);
    gates[2]!.resolve(null);
    expect(await Promise.all(ps)).toEqual([null, null, null]);
  });
});
