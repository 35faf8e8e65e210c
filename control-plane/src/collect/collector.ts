import { IP_FIELDS, USAGE_FIELDS, WINDOWS, redisKeys } from '@fluxgate/contracts';
import type { MalformedKind } from '../metrics/registry.js';
import type { BulkReader } from './bulk-reader.js';
import { RedisReplyError, type Reply } from './resp.js';
import { emptyCounters, type KeyCounters, type KeyDetail, type Snapshot } from './snapshot.js';

/**
 * Reads the s10 windows of the active keys and IPs (the data plane's active sets, so nothing is
 * ever SCANned) into a Snapshot, in a few pipelined round trips:
 *   1. SMEMBERS of the active-key and active-IP sets of each lookback bucket still to read;
 *   2. one HMGET per (member, bucket) for just the fields the detectors use;
 *   3. for keys whose volume could trip a detector that needs them: PFCOUNT of the distinct-IP
 *      and distinct-model HyperLogLogs over the lookback (one command per key: the buckets of a
 *      key share its hash tag, so this also works on Redis Cluster) and the fingerprint hashes.
 * A bucket is read until it is final — FINAL_AFTER_MS past its end, when the data plane's last
 * flush for it has landed — and then kept in memory; so a steady-state cycle reads the current
 * bucket only, plus the previous one once after each boundary.
 * Malformed values (not a non-negative integer, a key of the wrong type) skip that record and
 * are counted; they never fail the cycle.
 */
export const FINAL_AFTER_MS = 3000;
const S10 = WINDOWS.s10.seconds * 1000;

const KEY_FIELDS = [USAGE_FIELDS.requests, USAGE_FIELDS.status4xx, USAGE_FIELDS.rateLimited, USAGE_FIELDS.promptTokens, USAGE_FIELDS.completionTokens, USAGE_FIELDS.maxPromptTokens] as const;
const IP_HMGET_FIELDS = [IP_FIELDS.failedCredentials, IP_FIELDS.failedLogins, IP_FIELDS.requests] as const;

/**
 * One window's numbers, packed: member → row, and the rows' values in one Float64Array
 * (`width` per row). One typed array per window rather than one per member: at 100k members the
 * per-object overhead was most of the collector's memory.
 */
class Table {
  readonly rows = new Map<string, number>();
  #values: Float64Array;
  constructor(readonly width: number, capacity: number) {
    this.#values = new Float64Array(Math.max(1, capacity) * width);
  }
  add(member: string, reply: Reply | undefined): boolean {
    if (!Array.isArray(reply) || reply.length !== this.width) return false;
    const row = this.rows.size;
    const base = row * this.width;
    if (base + this.width > this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    for (let i = 0; i < this.width; i++) {
      const n = num(reply[i]);
      if (Number.isNaN(n)) return false;
      this.#values[base + i] = n;
    }
    this.rows.set(member, row);
    return true;
  }
  value(row: number, field: number): number {
    return this.#values[row * this.width + field]!;
  }
}

interface BucketData {
  final: boolean;
  /** keyId → KEY_FIELDS values. */
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
  /** Drops every cached bucket (a new leader, or after Redis lost data). */
  reset(): void;
}

/** A counter value: missing = 0; anything but a non-negative integer = malformed (NaN). */
const num = (v: Reply | undefined): number => {
  if (v === null || v === undefined) return 0;
  if (typeof v !== 'string' || v.length === 0 || v.length > 15) return Number.NaN;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n;
};


const rowValue = (t: Table, member: string, field: number): number => {
  const row = t.rows.get(member);
  return row === undefined ? 0 : t.value(row, field);
};

export function createCollector(opts: CollectorOptions): Collector {
  const { reader } = opts;
  const now = opts.now ?? Date.now;
  const p = reader.keyPrefix;
  const cache = new Map<number, BucketData>();
  const malformed = (kind: MalformedKind, n = 1): void => opts.countMalformed?.(kind, n);

  async function readBuckets(buckets: number[], t: number): Promise<void> {
    if (buckets.length === 0) return;
    const sets = await reader.pipeline(buckets.flatMap((b) => [['SMEMBERS', p + redisKeys.activeKeys('s10', b)], ['SMEMBERS', p + redisKeys.activeIps('s10', b)]]));
    // Parallel arrays rather than one object per read: at 100k keys the allocations show.
    const keyNames: string[] = [];
    const keyIds: string[] = [];
    const keyBuckets: number[] = [];
    const ipNames: string[] = [];
    const ipIds: string[] = [];
    const ipBuckets: number[] = [];
    buckets.forEach((b, i) => {
      const members = sets[2 * i];
      const ips = sets[2 * i + 1];
      if (Array.isArray(members)) {
        for (const id of members) {
          if (typeof id !== 'string') continue;
          keyNames.push(p + redisKeys.usage(id, 's10', b));
          keyIds.push(id);
          keyBuckets.push(b);
        }
      } else if (members instanceof RedisReplyError) malformed('usage');
      if (Array.isArray(ips)) {
        for (const ip of ips) {
          if (typeof ip !== 'string') continue;
          ipNames.push(p + redisKeys.ipUsage(ip, 's10', b));
          ipIds.push(ip);
          ipBuckets.push(b);
        }
      } else if (ips instanceof RedisReplyError) malformed('ip_usage');
    });
    const fresh = new Map<number, BucketData>(
      buckets.map((b, i) => {
        const members = sets[2 * i];
        const ips = sets[2 * i + 1];
        const keys = new Table(KEY_FIELDS.length, Array.isArray(members) ? members.length : 0);
        return [b, { final: t >= (b + 1) * S10 + FINAL_AFTER_MS, keys, ips: new Table(IP_HMGET_FIELDS.length, Array.isArray(ips) ? ips.length : 0) }];
      }),
    );
    let badKeys = 0;
    let badIps = 0;
    // Each reply is converted as it arrives and dropped: only the numbers are kept.
    await Promise.all([
      reader.each('HMGET', keyNames, KEY_FIELDS, (reply, i) => {
        if (!fresh.get(keyBuckets[i]!)!.keys.add(keyIds[i]!, reply)) badKeys++;
      }),
      reader.each('HMGET', ipNames, IP_HMGET_FIELDS, (reply, i) => {
        if (!fresh.get(ipBuckets[i]!)!.ips.add(ipIds[i]!, reply)) badIps++;
      }),
    ]);
    malformed('usage', badKeys);
    malformed('ip_usage', badIps);
    for (const [b, d] of fresh) cache.set(b, d);
  }

  async function readDetails(keyIds: string[], buckets: number[]): Promise<Map<string, KeyDetail>> {
    const commands: (string | number)[][] = [];
    for (const id of keyIds) {
      commands.push(['PFCOUNT', ...buckets.map((b) => p + redisKeys.usageIps(id, 's10', b))]);
      commands.push(['PFCOUNT', ...buckets.map((b) => p + redisKeys.usageModels(id, 's10', b))]);
      for (const b of buckets) commands.push(['HGETALL', p + redisKeys.usagePrompts(id, 's10', b)]);
    }
    const replies = await reader.pipeline(commands);
    const out = new Map<string, KeyDetail>();
    const stride = 2 + buckets.length;
    keyIds.forEach((id, k) => {
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
          const n = num(h[f + 1]);
          if (Number.isNaN(n) || typeof h[f] !== 'string') bad = true;
          else counts.set(h[f] as string, (counts.get(h[f] as string) ?? 0) + n);
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
    reset: () => cache.clear(),
    async collect() {
      const t = now();
      const current = Math.floor(t / S10);
      const lookback: number[] = [];
      for (let b = current - opts.lookbackBuckets + 1; b <= current; b++) lookback.push(b);
      for (const b of cache.keys()) if (b < lookback[0]!) cache.delete(b);
      await readBuckets(
        lookback.filter((b) => !cache.get(b)?.final),
        t,
      );

      const totals = new Map<string, KeyCounters>();
      const ips = new Map<string, { failedCredentials: number; failedLogins: number; requests: number }>();
      for (const b of lookback) {
        const data = cache.get(b);
        if (!data) continue;
        const k = data.keys;
        for (const [id, row] of k.rows) {
          let c = totals.get(id);
          if (!c) totals.set(id, (c = emptyCounters()));
          c.requests += k.value(row, 0);
          c.status4xx += k.value(row, 1);
          c.rateLimited += k.value(row, 2);
          c.promptTokens += k.value(row, 3);
          c.completionTokens += k.value(row, 4);
          c.maxPromptTokens = Math.max(c.maxPromptTokens, k.value(row, 5));
        }
        const ipt = data.ips;
        for (const [ip, row] of ipt.rows) {
          let c = ips.get(ip);
          if (!c) ips.set(ip, (c = { failedCredentials: 0, failedLogins: 0, requests: 0 }));
          c.failedCredentials += ipt.value(row, 0);
          c.failedLogins += ipt.value(row, 1);
          c.requests += ipt.value(row, 2);
        }
      }
      const candidates = [...totals].filter(([id, c]) => opts.needsDetail(id, c)).map(([id]) => id);
      const details = candidates.length > 0 ? await readDetails(candidates, lookback) : new Map<string, KeyDetail>();

      const prev = cache.get(current - 1);
      const lastCompleteBucket = prev?.final ? current - 1 : null;
      return {
        at: t,
        bucket: current,
        lookbackBuckets: opts.lookbackBuckets,
        lastCompleteBucket,
        keys: [...totals].map(([keyId, c]) => ({
          keyId,
          totals: c,
          lastWindowRequests: lastCompleteBucket === null ? null : rowValue(prev!.keys, keyId, 0),
          detail: details.get(keyId) ?? null,
        })),
        ips: [...ips].map(([ip, c]) => ({ ip, ...c })),
      };
    },
  };
}
