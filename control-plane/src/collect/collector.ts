import { IP_FIELDS, USAGE_FIELDS, WINDOWS, redisKeys } from '@fluxgate/contracts';
import type { MalformedKind } from '../metrics/registry.js';
import type { BulkReader } from './bulk-reader.js';
import { RedisReplyError } from './resp.js';
import type { KeyCounters, KeyDetail, KeySnapshot, Snapshot } from './snapshot.js';
import { Accumulator, counterValue, Interner, Table } from './tables.js';

/**
 * Reads the s10 windows of the active keys and IPs (the data plane's active sets, so nothing is
 * ever SCANned) into a Snapshot, in a few pipelined round trips:
 *   1. SMEMBERS of the active-key and active-IP sets of each lookback window still to read;
 *   2. one HMGET per (member, window) for just the fields the detectors use;
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

const KEY_FIELDS = [USAGE_FIELDS.requests, USAGE_FIELDS.status4xx, USAGE_FIELDS.rateLimited, USAGE_FIELDS.promptTokens, USAGE_FIELDS.completionTokens, USAGE_FIELDS.maxPromptTokens] as const;
const MAX_FIELD = 5;
const IP_HMGET_FIELDS = [IP_FIELDS.failedCredentials, IP_FIELDS.failedLogins, IP_FIELDS.requests] as const;

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

const emptyTotals = (): KeyCounters => ({ requests: 0, status4xx: 0, rateLimited: 0, promptTokens: 0, completionTokens: 0, maxPromptTokens: 0 });

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
    keyIds = rebuild(keyIds, [...windows.values()].map((w) => w.keys));
    pool = [];
    ipIds = rebuild(ipIds, [...windows.values()].map((w) => w.ips));
  }

  /** Reads windows one at a time, so a new leader's first cycle holds one window's replies at most. */
  async function readWindows(buckets: number[], t: number): Promise<void> {
    for (const b of buckets) windows.set(b, await readWindow(b, t));
  }

  async function readWindow(b: number, t: number): Promise<Window> {
    const [members, ips] = await reader.pipeline([
      ['SMEMBERS', p + redisKeys.activeKeys('s10', b)],
      ['SMEMBERS', p + redisKeys.activeIps('s10', b)],
    ]);
    const keyList = Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : [];
    const ipList = Array.isArray(ips) ? ips.filter((m): m is string => typeof m === 'string') : [];
    if (members instanceof RedisReplyError) malformed('usage');
    if (ips instanceof RedisReplyError) malformed('ip_usage');
    const w: Window = { final: t >= (b + 1) * S10 + FINAL_AFTER_MS, keys: new Table(KEY_FIELDS.length, keyList.length), ips: new Table(IP_HMGET_FIELDS.length, ipList.length) };
    const keyMembers = Int32Array.from(keyList, (id) => keyIds.indexOf(id));
    const ipMembers = Int32Array.from(ipList, (ip) => ipIds.indexOf(ip));
    let badKeys = 0;
    let badIps = 0;
    // Key names are made as the writer needs them; each reply is stored as numbers and dropped.
    await Promise.all([
      reader.each('HMGET', lazyMap(keyList, (id) => p + redisKeys.usage(id, 's10', b)), keyList.length, KEY_FIELDS, (reply, i) => void (w.keys.add(keyMembers[i]!, reply) || badKeys++), true),
      reader.each('HMGET', lazyMap(ipList, (ip) => p + redisKeys.ipUsage(ip, 's10', b)), ipList.length, IP_HMGET_FIELDS, (reply, i) => void (w.ips.add(ipMembers[i]!, reply) || badIps++), true),
    ]);
    malformed('usage', badKeys);
    malformed('ip_usage', badIps);
    return w;
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
      pool = [];
      keyIds = new Interner();
      ipIds = new Interner();
    },
    async collect() {
      const t = now();
      const current = Math.floor(t / S10);
      const lookback: number[] = [];
      for (let b = current - opts.lookbackBuckets + 1; b <= current; b++) lookback.push(b);
      for (const b of windows.keys()) if (b < lookback[0]!) windows.delete(b);
      compact();
      await readWindows(
        lookback.filter((b) => !windows.get(b)?.final),
        t,
      );

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
        if (!k || k.keyId !== keyIds.ids[m]) pool[m] = k = { keyId: keyIds.ids[m]!, totals: emptyTotals(), lastWindowRequests: null, detail: null };
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
        ips: ipSums.touched.map((m) => ({ ip: ipIds.ids[m]!, failedCredentials: ipSums.sum(m, 0), failedLogins: ipSums.sum(m, 1), requests: ipSums.sum(m, 2) })),
      };
    },
  };
}
