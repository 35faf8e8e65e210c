import type { KeyRecord, KeyStatus } from '../store/keys.js';
import { createLookupLimit } from './lookup-limit.js';

/** Resolves a key hash against the store: the record, or null when no key has this hash. */
export type KeyLookup = (hash: string) => Promise<KeyRecord | null>;

/** The store could not answer (Postgres down, overloaded, too slow) and nothing usable is cached. */
export class KeyStoreUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'KeyStoreUnavailableError';
  }
}

export interface KeyCacheOptions {
  lookup: KeyLookup;
  /** Known keys kept (least recently used evicted first). */
  maxEntries?: number;
  /** Unknown hashes kept; separate from maxEntries so a flood of bad keys cannot evict good ones. */
  maxNegativeEntries?: number;
  /** How long a known key is served without asking the store (revocations arrive by pub/sub). */
  ttlMs?: number;
  negativeTtlMs?: number;
  /**
   * How long past its TTL an active key may still be served while the store cannot answer.
   * Short (seconds): a key revoked while this replica cannot reach Postgres and whose events
   * were lost stops working this long after its TTL (503: it cannot be checked), not minutes.
   */
  staleIfErrorMs?: number;
  /**
   * The same for a revoked or suspended key: refusing it stale is always safe, and its owner
   * gets the true answer (401/403) instead of a 503 while the store is down.
   */
  refusalStaleMs?: number;
  /** Store lookups at once; more wait in a bounded queue, beyond which they fail as unavailable. */
  maxConcurrentLookups?: number;
  maxQueuedLookups?: number;
  /** A lookup (queueing included) slower than this fails as unavailable; the query itself may finish and fill the cache. */
  lookupTimeoutMs?: number;
  now?: () => number;
}

export interface KeyCacheStats {
  entries: number;
  negativeEntries: number;
  hits: number;
  negativeHits: number;
  misses: number;
  lookups: number;
  lookupFailures: number;
  staleServed: number;
  invalidations: number;
  /** Revocations and suspensions applied from the revocation feed. */
  blocks: number;
  inflight: number;
}

export interface KeyCache {
  /**
   * The record for this hash (any status), or null when no key has it. Concurrent calls for one
   * uncached hash share one lookup. Rejects with KeyStoreUnavailableError only when the store
   * fails and no usable entry is cached.
   */
  get(hash: string): Promise<KeyRecord | null>;
  /**
   * The fresh cached record for this hash, synchronously (a hit, counted and refreshed in the
   * LRU like one from get), or undefined when only get can answer.
   */
  cached(hash: string): KeyRecord | undefined;
  /**
   * True when `get(hash)` would start a store lookup for a hash this replica does not know as a
   * key (not cached, not negatively cached, not being looked up): what a guessed key costs.
   * Refreshing a known key is not counted.
   */
  needsLookup(hash: string): boolean;
  /** Drops whatever is cached for this key id and/or hash (pub/sub events). */
  invalidate(target: { keyId?: string; keyHash?: string }): void;
  /**
   * The key was revoked or suspended (revocation-feed.ts): a cached entry takes that status at
   * once and is re-read from the store on next use (the store is the truth: a suspended key may
   * have been re-activated since); while the store is down it is refused from cache.
   */
  block(keyId: string, status: Exclude<KeyStatus, 'active'>): void;
  /** Marks every known key as due for a refresh (after missed events), keeping stale-if-error. */
  expireAll(): void;
  clear(): void;
  stats(): KeyCacheStats;
}

interface Entry {
  record: KeyRecord;
  expiresAt: number;
  staleUntil: number;
}

/** Invalidations remembered to catch lookups that raced them (see `load`). */
const MAX_TOMBSTONES = 4096;

export function createKeyCache(opts: KeyCacheOptions): KeyCache {
  const maxEntries = opts.maxEntries ?? 50_000;
  const maxNegative = opts.maxNegativeEntries ?? 20_000;
  const ttlMs = opts.ttlMs ?? 60_000;
  const negativeTtlMs = opts.negativeTtlMs ?? 30_000;
  const staleIfErrorMs = opts.staleIfErrorMs ?? 5_000;
  const refusalStaleMs = opts.refusalStaleMs ?? 15 * 60_000;
  const lookupTimeoutMs = opts.lookupTimeoutMs ?? 3_000;
  const now = opts.now ?? Date.now;

  // Map iteration order is insertion order: re-inserting on use makes the first entry the LRU.
  const positive = new Map<string, Entry>();
  const byId = new Map<string, string>();
  const negative = new Map<string, number>();
  const inflight = new Map<string, Promise<KeyRecord | null>>();
  // id or hash → sequence number of its last invalidation.
  const tombstones = new Map<string, number>();
  let seq = 0;
  const s = { hits: 0, negativeHits: 0, misses: 0, lookups: 0, lookupFailures: 0, staleServed: 0, invalidations: 0, blocks: 0 };

  const limited = createLookupLimit({
    maxConcurrent: opts.maxConcurrentLookups ?? 32,
    maxQueued: opts.maxQueuedLookups ?? 2_000,
    timeoutMs: lookupTimeoutMs,
    onReject: (why) =>
      new KeyStoreUnavailableError(why === 'timeout' ? `key lookup exceeded ${lookupTimeoutMs} ms` : 'too many key lookups waiting'),
  });

  function remember(hash: string, record: KeyRecord | null): void {
    const t = now();
    if (record === null) {
      // The key is gone from the store: nothing may serve it stale later.
      const old = positive.get(hash);
      if (old) {
        positive.delete(hash);
        if (byId.get(old.record.id) === hash) byId.delete(old.record.id);
      }
      negative.delete(hash);
      negative.set(hash, t + negativeTtlMs);
      while (negative.size > maxNegative) negative.delete(negative.keys().next().value!);
      return;
    }
    positive.delete(hash);
    const staleMs = record.status === 'active' ? staleIfErrorMs : refusalStaleMs;
    positive.set(hash, { record, expiresAt: t + ttlMs, staleUntil: t + ttlMs + staleMs });
    byId.set(record.id, hash);
    while (positive.size > maxEntries) {
      const [oldHash, oldEntry] = positive.entries().next().value!;
      positive.delete(oldHash);
      if (byId.get(oldEntry.record.id) === oldHash) byId.delete(oldEntry.record.id);
    }
  }

  async function load(hash: string): Promise<KeyRecord | null> {
    const startSeq = seq;
    s.lookups++;
    let record: KeyRecord | null;
    try {
      record = await limited(() => opts.lookup(hash));
    } catch (err) {
      s.lookupFailures++;
      // Re-read the entry: an invalidation during the lookup must not be undone by stale data.
      const stale = positive.get(hash);
      if (stale && now() < stale.staleUntil) {
        s.staleServed++;
        return stale.record;
      }
      throw err instanceof KeyStoreUnavailableError ? err : new KeyStoreUnavailableError('key store lookup failed', err);
    }
    // A revocation published while the query ran may have been read before the commit: only
    // cache the answer if neither the hash nor the id was invalidated since the lookup began.
    const raced = (tombstones.get(hash) ?? -1) > startSeq || (record !== null && (tombstones.get(record.id) ?? -1) > startSeq);
    if (!raced) remember(hash, record);
    return record;
  }

  function cached(hash: string, t: number): KeyRecord | undefined {
    const entry = positive.get(hash);
    if (entry === undefined || t >= entry.expiresAt) return undefined;
    s.hits++;
    positive.delete(hash);
    positive.set(hash, entry);
    return entry.record;
  }

  return {
    cached: (hash) => cached(hash, now()),

    get(hash) {
      const t = now();
      const hit = cached(hash, t);
      if (hit !== undefined) return Promise.resolve(hit);
      const negUntil = negative.get(hash);
      if (negUntil !== undefined) {
        if (t < negUntil) {
          s.negativeHits++;
          return Promise.resolve(null);
        }
        negative.delete(hash);
      }
      const pending = inflight.get(hash);
      if (pending) return pending;
      s.misses++;
      const p = load(hash).finally(() => inflight.delete(hash));
      inflight.set(hash, p);
      return p;
    },

    needsLookup(hash) {
      if (positive.has(hash) || inflight.has(hash)) return false;
      const negUntil = negative.get(hash);
      return negUntil === undefined || now() >= negUntil;
    },

    invalidate({ keyId, keyHash }) {
      s.invalidations++;
      seq++;
      const hashes = new Set<string>();
      if (keyHash !== undefined) hashes.add(keyHash);
      if (keyId !== undefined) {
        const h = byId.get(keyId);
        if (h !== undefined) hashes.add(h);
        byId.delete(keyId);
        tombstones.set(keyId, seq);
      }
      for (const h of hashes) {
        const e = positive.get(h);
        if (e && byId.get(e.record.id) === h) byId.delete(e.record.id);
        positive.delete(h);
        negative.delete(h);
        tombstones.set(h, seq);
      }
      while (tombstones.size > MAX_TOMBSTONES) tombstones.delete(tombstones.keys().next().value!);
    },

    block(keyId, status) {
      s.blocks++;
      seq++;
      // A lookup that started before this may have read the key as active: do not cache it.
      tombstones.set(keyId, seq);
      while (tombstones.size > MAX_TOMBSTONES) tombstones.delete(tombstones.keys().next().value!);
      const hash = byId.get(keyId);
      const e = hash === undefined ? undefined : positive.get(hash);
      if (!e || e.record.status === 'revoked') return;
      e.record = { ...e.record, status };
      e.expiresAt = Number.NEGATIVE_INFINITY;
      e.staleUntil = Math.max(e.staleUntil, now() + refusalStaleMs);
    },

    expireAll() {
      seq++;
      // "Due now", and stale-if-error counted from now rather than from the original expiry.
      const staleCap = now() + staleIfErrorMs;
      for (const e of positive.values()) {
        e.expiresAt = Number.NEGATIVE_INFINITY;
        if (e.record.status === 'active') e.staleUntil = Math.min(e.staleUntil, staleCap);
      }
      // Lookups running now may have read state older than the missed events: treat as raced.
      for (const h of inflight.keys()) tombstones.set(h, seq);
    },

    clear() {
      seq++;
      positive.clear();
      byId.clear();
      negative.clear();
      for (const h of inflight.keys()) tombstones.set(h, seq);
    },

    stats: () => ({ ...s, entries: positive.size, negativeEntries: negative.size, inflight: inflight.size }),
  };
}
