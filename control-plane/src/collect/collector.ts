import { PACKED_IP_FIELDS, PACKED_KEY_FIELDS, PACKED_KEY_MAX_FROM, PACKED_SHARDS, WINDOWS, redisKeys } from '@fluxgate/contracts';
import type { MalformedKind } from '../metrics/registry.js';
import type { BulkReader } from './bulk-reader.js';
import { RedisReplyError } from './resp.js';
import type { KeyCounters, KeyDetail, KeySnapshot, Snapshot } from './snapshot.js';
import { Accumulator, counterValue, Interner, Table } from './tables.js';

/**
 * Reads the s10 windows of the active keys and IPs (the data plane's active sets, so nothing is
 * ever SCANned) into a Snapshot, in a few pipelined round trips:
 *   1. per lookback window still to read, the size of its active sets and of its packed shards
 *      (contracts packed-windows.ts), all O(1);
 *   2. when the packed shards hold every active member: one HGETALL per non-empty shard, which
 *      carries the detectors' fields of every member at once; otherwise (a window written by a
 *      data plane from before packing, or a packed write that failed) the old way: SMEMBERS of
 *      the active sets, then one HMGET per (member, window) for just the fields the detectors use;
 *   3. for keys whose volume could trip a detector that needs them: PFCOUNT of the distinct-IP
 *      and distinct-model HyperLogLogs over the lookback (one command per key: the windows of a
 *      key share its hash tag, so this also works on Redis Cluster) and the fingerprint hashes.
 * A window is read until it is final — FINAL_AFTER_MS past its end, when the data plane's last
 * flush for it has landed (it flushes every COUNTER_FLUSH_MS, 1 s) — and then kept in memory; so
 * a steady-state cycle reads the current window only, plus the previous one once after each
 * boundary. Malformed values (not a non-negative integer, a key of the wrong type) skip that
 * record and are counted; they never fail the cycle.
 */
export const FINAL_AFTER_MS = 3000;
const S10 = WINDOWS.s10.seconds * 1000;

// The detectors' fields, in one order for the packed values and for HMGET of the old hashes:
// requests, 4xx, 429s, prompt and completion tokens, largest prompt (max-merged).
const KEY_FIELDS = PACKED_KEY_FIELDS;
const MAX_FIELD = PACKED_KEY_MAX_FROM;
const IP_HMGET_FIELDS = PACKED_IP_FIELDS;
const SHARDS = Array.from({ length: PACKED_SHARDS }, (_, i) => i);

interface Window {
  final: boolean;
  keys: Table;
  ips: Table;
}

export interface CollectorOptions {
  reader: BulkReader;
  lookbackBuckets: number;
  /** Whether a key's totals are high enough for the detail reads (step 3). */
  needsDetail: (keyId: string, totals: KeyCounters) => boolean;
  countMalformed?: (kind: MalformedKind, n: number) => void;
  now?: () => number;
}

export interface Collector {
  collect(): Promise<Snapshot>;
  /** Drops every cached window (a new leader, or after Redis lost data). */
  reset(): void;
}

const emptyTotals = (): KeyCounters => ({
  requests: 0,
  status4xx: 0,
  rateLimited: 0,
  promptTokens: 0,
  completionTokens: 0,
  maxPromptTokens: 0,
});

function* lazyMap<T, U>(items: readonly T[], f: (t: T) => U): Generator<U> {
  for (const item of items) yield f(item);
}

export function createCollector(opts: CollectorOptions): Collector {
  const { reader } = opts;
  const now = opts.now ?? Date.now;
  const p = reader.keyPrefix;
  const windows = new Map<number, Window>();
  let keyIds = new Interner();
  let ipIds = new Interner();
  const keySums = new Accumulator(KEY_FIELDS.length);
  let pool: KeySnapshot[] = [];
  let lastReq = new Float64Array(0);
  const ipSums = new Accumulator(IP_HMGET_FIELDS.length);
  /**
   * Member indexes of each packed shard in the order its last HGETALL listed them. The current
   * window is re-read every cycle and a hash lists its fields in the same order until it grows or
   * rehashes, so most members are recognised by one string comparison at their old position
   * instead of a lookup in a 100k-entry map (which was the biggest cost of a cycle).
   */
  let order = new Map<string, Int32Array>();
  /**
   * Tables of windows that were replaced or left the lookback, reused for the next reads: at 100k
   * keys a window's table is ~5 MB of typed arrays, which a fresh one per cycle would make garbage.
   */
  const spares: Table[] = [];
  const tableFor = (width: number, capacity: number): Table => {
    const i = spares.findIndex((t) => t.width === width);
    return i >= 0 ? spares.splice(i, 1)[0]!.reset(capacity) : new Table(width, capacity);
  };
  const retire = (w: Window | undefined): void => {
    if (w && spares.length < 8) spares.push(w.keys, w.ips);
  };
  let nextOrder = new Map<string, Int32Array>();
  const malformed = (kind: MalformedKind, n = 1): void => {
    if (n > 0) opts.countMalformed?.(kind, n);
  };

  /** Members that left every cached window are forgotten, so the interners stay the size of the lookback. */
  function compact(): void {
    let live = 0;
    for (const w of windows.values()) live += w.keys.rows + w.ips.rows;
    if (keyIds.size + ipIds.size < 4 * live + 10_000) return;
    const rebuild = (old: Interner, tables: Table[]): Interner => {
      const next = new Interner();
      const map = new Int32Array(old.size).fill(-1);
      for (const t of tables) for (let r = 0; r < t.rows; r++) map[t.member(r)] = next.indexOf(old.ids[t.member(r)]!);
      for (const t of tables) t.remap(map);
      return next;
    };
    keyIds = rebuild(
      keyIds,
      [...windows.values()].map((w) => w.keys),
    );
    pool = [];
    ipIds = rebuild(
      ipIds,
      [...windows.values()].map((w) => w.ips),
    );
    order.clear();
  }

  /** Reads windows one at a time, so a new leader's first cycle holds one window's replies at most. */
  async function readWindows(buckets: number[], t: number): Promise<void> {
    for (const b of buckets) {
      const w = await readWindow(b, t);
      retire(windows.get(b));
      windows.set(b, w);
    }
  }

  async function readWindow(b: number, t: number): Promise<Window> {
    const sizes = await reader.pipeline([
      ['SCARD', p + redisKeys.activeKeys('s10', b)],
      ['SCARD', p + redisKeys.activeIps('s10', b)],
      ...SHARDS.map((s) => ['HLEN', p + redisKeys.packedUsage('s10', b, s)]),
      ...SHARDS.map((s) => ['HLEN', p + redisKeys.packedIpUsage('s10', b, s)]),
    ]);
    const size = (i: number): number => (typeof sizes[i] === 'number' ? (sizes[i] as number) : 0);
    const keyShards = SHARDS.map((s) => size(2 + s));
    const ipShards = SHARDS.map((s) => size(2 + PACKED_SHARDS + s));
    const packedKeys = keyShards.reduce((a, n) => a + n, 0);
    const packedIps = ipShards.reduce((a, n) => a + n, 0);
    const [keys, ips] = await Promise.all([
      packedKeys >= size(0)
        ? readPacked(
            keyIds,
            KEY_FIELDS.length,
            SHARDS.filter((s) => keyShards[s]! > 0).map((s) => p + redisKeys.packedUsage('s10', b, s)),
            packedKeys,
            'usage',
          )
        : readLegacy(keyIds, KEY_FIELDS, redisKeys.activeKeys('s10', b), (id) => redisKeys.usage(id, 's10', b), 'usage'),
      packedIps >= size(1)
        ? readPacked(
            ipIds,
            IP_HMGET_FIELDS.length,
            SHARDS.filter((s) => ipShards[s]! > 0).map((s) => p + redisKeys.packedIpUsage('s10', b, s)),
            packedIps,
            'ip_usage',
          )
        : readLegacy(ipIds, IP_HMGET_FIELDS, redisKeys.activeIps('s10', b), (ip) => redisKeys.ipUsage(ip, 's10', b), 'ip_usage'),
    ]);
    return { final: t >= (b + 1) * S10 + FINAL_AFTER_MS, keys, ips };
  }

  /**
   * A window's members from its packed shards. Each HGETALL reply streams in as field, value,
   * field, value… (bulk-reader eachElement), parsed into the table as it arrives and never kept.
   */
  async function readPacked(
    ids: Interner,
    width: number,
    shardKeys: string[],
    members: number,
    kind: 'usage' | 'ip_usage',
  ): Promise<Table> {
    const table = tableFor(width, members);
    let bad = 0;
    let shard = -1;
    let before: Int32Array | undefined;
    let seen: number[] = [];
    let id: string | null = null;
    const finishShard = (): void => {
      if (shard >= 0) nextOrder.set(shardKeys[shard]!, Int32Array.from(seen));
    };
    await reader.eachElement('HGETALL', shardKeys, shardKeys.length, [], (element, n) => {
      if (n !== shard) {
        finishShard();
        shard = n;
        before = order.get(shardKeys[n]!);
        seen = [];
        id = null;
      }
      if (id === null) {
        if (typeof element === 'string') id = element;
        else bad++;
        return;
      }
      const guess = before?.[seen.length];
      const member = guess !== undefined && ids.ids[guess] === id ? guess : ids.indexOf(id);
      seen.push(member);
      if (!table.addPacked(member, element)) bad++;
      id = null;
    });
    finishShard();
    malformed(kind, bad);
    return table;
  }

  /** The old way: the active set's members, then one HMGET of each member's own hash. */
  async function readLegacy(
    ids: Interner,
    fields: readonly string[],
    activeSet: string,
    hashOf: (id: string) => string,
    kind: 'usage' | 'ip_usage',
  ): Promise<Table> {
    const [members] = await reader.pipeline([['SMEMBERS', p + activeSet]]);
    if (members instanceof RedisReplyError) malformed(kind);
    const list = Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : [];
    const table = tableFor(fields.length, list.length);
    const indexes = Int32Array.from(list, (id) => ids.indexOf(id));
    let bad = 0;
    // Key names are made as the writer needs them; each reply is stored as numbers and dropped.
    await reader.each(
      'HMGET',
      lazyMap(list, (id) => p + hashOf(id)),
      list.length,
      fields,
      (reply, i) => void (table.add(indexes[i]!, reply) || bad++),
      true,
    );
    malformed(kind, bad);
    return table;
  }

  async function readDetails(ids: string[], buckets: number[]): Promise<Map<string, KeyDetail>> {
    const commands: (string | number)[][] = [];
    for (const id of ids) {
      commands.push(['PFCOUNT', ...buckets.map((b) => p + redisKeys.usageIps(id, 's10', b))]);
      commands.push(['PFCOUNT', ...buckets.map((b) => p + redisKeys.usageModels(id, 's10', b))]);
      for (const b of buckets) commands.push(['HGETALL', p + redisKeys.usagePrompts(id, 's10', b)]);
    }
    const replies = await reader.pipeline(commands);
    const out = new Map<string, KeyDetail>();
    const stride = 2 + buckets.length;
    ids.forEach((id, k) => {
      const base = k * stride;
      const ips = replies[base];
      const models = replies[base + 1];
      const counts = new Map<string, number>();
      let bad = false;
      for (let j = 0; j < buckets.length; j++) {
        const h = replies[base + 2 + j];
        if (!Array.isArray(h)) {
          bad ||= h instanceof RedisReplyError;
          continue;
        }
        for (let f = 0; f + 1 < h.length; f += 2) {
          const n = counterValue(h[f + 1]);
          const fp = h[f];
          if (Number.isNaN(n) || typeof fp !== 'string') bad = true;
          else counts.set(fp, (counts.get(fp) ?? 0) + n);
        }
      }
      if (bad) malformed('fingerprints');
      if (typeof ips !== 'number' || typeof models !== 'number') {
        malformed('usage');
        return;
      }
      let top = 0;
      for (const n of counts.values()) if (n > top) top = n;
      out.set(id, { distinctIps: ips, distinctModels: models, topPromptCount: top });
    });
    return out;
  }

  return {
    reset() {
      windows.clear();
      spares.length = 0;
      order.clear();
      pool = [];
      keyIds = new Interner();
      ipIds = new Interner();
    },
    async collect() {
      const t = now();
      const current = Math.floor(t / S10);
      const lookback: number[] = [];
      for (let b = current - opts.lookbackBuckets + 1; b <= current; b++) lookback.push(b);
      for (const [b, w] of windows) {
        if (b >= lookback[0]!) continue;
        retire(w);
        windows.delete(b);
      }
      compact();
      await readWindows(
        lookback.filter((b) => !windows.get(b)?.final),
        t,
      );
      // Only the shards read this cycle are worth remembering (a final window is not read again).
      order = nextOrder;
      nextOrder = new Map();

      keySums.reset(keyIds.size);
      ipSums.reset(ipIds.size);
      for (const b of lookback) {
        const w = windows.get(b);
        if (!w) continue;
        keySums.add(w.keys, MAX_FIELD);
        ipSums.add(w.ips);
      }
      const prev = windows.get(current - 1);
      const lastCompleteBucket = prev?.final ? current - 1 : null;
      if (lastReq.length < keyIds.size) lastReq = new Float64Array(Math.max(keyIds.size, lastReq.length * 2));
      for (const m of keySums.touched) lastReq[m] = 0;
      if (prev?.final) for (let r = 0; r < prev.keys.rows; r++) lastReq[prev.keys.member(r)] = prev.keys.value(r, 0);

      // The per-key objects are reused from cycle to cycle (by member index): at 100k keys a
      // fresh pair per key per cycle was most of the garbage. Callers must not keep them.
      const keys: KeySnapshot[] = [];
      for (const m of keySums.touched) {
        let k = pool[m];
        if (!k || k.keyId !== keyIds.ids[m])
          pool[m] = k = { keyId: keyIds.ids[m]!, totals: emptyTotals(), lastWindowRequests: null, detail: null };
        const t = k.totals;
        t.requests = keySums.sum(m, 0);
        t.status4xx = keySums.sum(m, 1);
        t.rateLimited = keySums.sum(m, 2);
        t.promptTokens = keySums.sum(m, 3);
        t.completionTokens = keySums.sum(m, 4);
        t.maxPromptTokens = keySums.max(m);
        k.lastWindowRequests = lastCompleteBucket === null ? null : lastReq[m]!;
        k.detail = null;
        keys.push(k);
      }
      const candidates = keys.filter((k) => opts.needsDetail(k.keyId, k.totals));
      if (candidates.length > 0) {
        const details = await readDetails(
          candidates.map((k) => k.keyId),
          lookback,
        );
        for (const k of candidates) k.detail = details.get(k.keyId) ?? null;
      }
      return {
        at: t,
        bucket: current,
        lookbackBuckets: opts.lookbackBuckets,
        lastCompleteBucket,
        keys,
        ips: ipSums.touched.map((m) => ({
          ip: ipIds.ids[m]!,
          failedCredentials: ipSums.sum(m, 0),
          failedLogins: ipSums.sum(m, 1),
          requests: ipSums.sum(m, 2),
        })),
      };
    },
  };
}
