import { IP_FIELDS, PROMPT_FINGERPRINT_HEX, USAGE_FIELDS, WINDOW_NAMES, bucketOf, type WindowName } from '@fluxgate/contracts';
import type { UsageSample } from './counters.js';
import {
  MAX_DISTINCT_PER_BUCKET,
  addDistinct,
  addFingerprint,
  addMax,
  addSum,
  bucketId,
  newBucket,
  type PendingBucket,
} from './buckets.js';

/**
 * The hot path of the usage counters (metrics/counters.ts): one accumulator per owner (key or
 * client IP) and s10 bucket, whose sums are numeric slots, folded into the per-window buckets of
 * buckets.ts at flush time rather than per request. Every window is a multiple of the s10 one
 * (contracts usage.ts), so one accumulator serves all three windows of its owner.
 *
 * The fold reproduces exactly what per-request updates of the buckets produced: the buckets are
 * created in the same order (a log of the records that opened an accumulator is replayed), each
 * bucket receives its accumulators in the order they were opened, and an accumulator keeps the
 * order in which its fields first became non-zero, so every hash field, HyperLogLog element and
 * active-set member reaches the flush pipeline in the order it did before. An accumulator that
 * could not take a new distinct IP, model or fingerprint (MAX_DISTINCT_PER_BUCKET) is closed and
 * a new one opened, so the caps apply where they applied before.
 */

/** Sum slots of a key accumulator, in the order a request adds them. */
const KEY_SUMS = [
  USAGE_FIELDS.requests,
  USAGE_FIELDS.status2xx,
  USAGE_FIELDS.status3xx,
  USAGE_FIELDS.status4xx,
  USAGE_FIELDS.status5xx,
  USAGE_FIELDS.rateLimited,
  USAGE_FIELDS.promptTokens,
  USAGE_FIELDS.completionTokens,
  USAGE_FIELDS.estimatedRequests,
  USAGE_FIELDS.requestBytes,
  USAGE_FIELDS.responseBytes,
  USAGE_FIELDS.ttfbMsSum,
  USAGE_FIELDS.ttfbCount,
  USAGE_FIELDS.durationMsSum,
  USAGE_FIELDS.streams,
  USAGE_FIELDS.cutStreams,
  USAGE_FIELDS.upstreamErrors,
] as const;
const slot = (field: (typeof KEY_SUMS)[number]): number => KEY_SUMS.indexOf(field);
const REQ = slot(USAGE_FIELDS.requests);
const S2XX = slot(USAGE_FIELDS.status2xx); // then 3xx, 4xx, 5xx
const R429 = slot(USAGE_FIELDS.rateLimited);
const PTOK = slot(USAGE_FIELDS.promptTokens);
const CTOK = slot(USAGE_FIELDS.completionTokens);
const EST = slot(USAGE_FIELDS.estimatedRequests);
const RQB = slot(USAGE_FIELDS.requestBytes);
const RSB = slot(USAGE_FIELDS.responseBytes);
const TTFB_SUM = slot(USAGE_FIELDS.ttfbMsSum);
const TTFB_N = slot(USAGE_FIELDS.ttfbCount);
const DUR_SUM = slot(USAGE_FIELDS.durationMsSum);
const STREAMS = slot(USAGE_FIELDS.streams);
const CUT = slot(USAGE_FIELDS.cutStreams);
const UPERR = slot(USAGE_FIELDS.upstreamErrors);

const IP_SUMS = [IP_FIELDS.failedCredentials, IP_FIELDS.failedLogins, IP_FIELDS.requests] as const;
export const IP_FAILED_CREDENTIALS = 0;
export const IP_FAILED_LOGINS = 1;
const IP_REQUESTS = 2;

const WINDOWS_N = WINDOW_NAMES.length;

class Accumulator {
  readonly sums: Float64Array;
  /** Slots in the order they first became non-zero (a bucket's hash fields keep that order). */
  readonly order: number[] = [];
  samples = 0;
  maxPromptTokens = 0;
  lastUsedMs = 0;
  readonly ips: Set<string> | null;
  readonly models: Set<string> | null;
  readonly fingerprints: Map<string, number> | null;
  /** Replaced by a newer accumulator of the same owner (new bucket, or a distinct set full). */
  closed = false;
  /** In the log of opened accumulators (the record that opened it is logged once). */
  logged = false;
  folded = false;
  /** The fold that last swept it, and whether that fold kept it for reuse. */
  sweptBy = 0;
  kept = false;
  /** Bucket number per window (WINDOW_NAMES order). */
  readonly buckets: Float64Array;

  constructor(
    readonly kind: 'key' | 'ip',
    readonly owner: string,
    buckets: Float64Array,
  ) {
    const key = kind === 'key';
    this.buckets = Float64Array.from(buckets);
    this.sums = new Float64Array(key ? KEY_SUMS.length : IP_SUMS.length);
    this.ips = key ? new Set() : null;
    this.models = key ? new Set() : null;
    this.fingerprints = key ? new Map() : null;
  }

  /** Empty again after a fold, to be reused by the same owner (no allocation per interval). */
  reset(): void {
    for (const slot of this.order) this.sums[slot] = 0;
    this.order.length = 0;
    this.samples = 0;
    this.maxPromptTokens = 0;
    this.lastUsedMs = 0;
    this.ips?.clear();
    this.models?.clear();
    this.fingerprints?.clear();
    this.logged = false;
    this.folded = false;
  }

  add(slot: number, n: number): void {
    if (n === 0) return;
    if (this.sums[slot] === 0) this.order.push(slot);
    this.sums[slot]! += n;
  }
}

const hasRoom = (set: { size: number; has(v: string): boolean }, v: string): boolean => set.size < MAX_DISTINCT_PER_BUCKET || set.has(v);

const FP_RE = /^[0-9a-f]+$/;

export class AccumulatorTable {
  readonly #keys = new Map<string, Accumulator>();
  /** By the address as the request spelled it (and by its normalised form, for other spellings). */
  readonly #ips = new Map<string, Accumulator>();
  /** Pairs [key accumulator or null, IP accumulator], one per record that opened an accumulator. */
  #log: Array<Accumulator | null> = [];
  readonly #at = new Float64Array(WINDOWS_N);
  readonly #normalise: (ip: string) => string;
  #folds = 0;

  constructor(normalise: (ip: string) => string) {
    this.#normalise = normalise;
  }

  /** Owners (keys and spellings of client addresses) holding an accumulator. */
  get owners(): number {
    return this.#keys.size + this.#ips.size;
  }

  /** Records that opened an accumulator since the last fold (about the accumulators open). */
  get opened(): number {
    return this.#log.length / 2;
  }

  #setNow(atMs: number): void {
    for (let i = 0; i < WINDOWS_N; i++) this.#at[i] = bucketOf(WINDOW_NAMES[i]!, atMs);
  }

  /**
   * Whether `a` takes a sample of now; an accumulator emptied by a fold takes the buckets of now
   * (never a closed one: those have samples, and leave the maps at the next fold).
   */
  #current(a: Accumulator): boolean {
    if (a.samples === 0) a.buckets.set(this.#at);
    else if (a.closed) return false;
    for (let i = 0; i < WINDOWS_N; i++) if (a.buckets[i] !== this.#at[i]) return false;
    return true;
  }

  /** The IP accumulator of now (set by #setNow), if there is one; no normalising on a hit. */
  #ipHit(rawIp: string): Accumulator | undefined {
    const hit = this.#ips.get(rawIp);
    return hit !== undefined && this.#current(hit) ? hit : undefined;
  }

  /** Opens (or finds under its normalised spelling) the IP accumulator of now. */
  #ipOpen(rawIp: string, owner: string): Accumulator {
    let acc = this.#ips.get(owner);
    if (acc === undefined || !this.#current(acc)) {
      if (acc) acc.closed = true;
      acc = new Accumulator('ip', owner, this.#at);
      this.#ips.set(owner, acc);
    }
    this.#ips.set(rawIp, acc);
    return acc;
  }

  /** One finished request of `keyId`. */
  record(keyId: string, s: UsageSample, atMs: number): void {
    this.#setNow(atMs);
    // Everything that can throw (normalising what the sample holds) before anything is changed.
    const hit = this.#ipHit(s.clientIp);
    const owner = hit ? hit.owner : this.#normalise(s.clientIp);
    const model = s.model?.slice(0, 128) || undefined;
    let fp = s.promptFingerprint?.toLowerCase().slice(0, PROMPT_FINGERPRINT_HEX);
    if (fp !== undefined && !FP_RE.test(fp)) fp = undefined;
    const ip = hit ?? this.#ipOpen(s.clientIp, owner);
    let k = this.#keys.get(keyId);
    if (k === undefined || !this.#current(k) || !canTake(k, owner, model, fp)) {
      if (k) k.closed = true;
      k = new Accumulator('key', keyId, this.#at);
      this.#keys.set(keyId, k);
    }
    if (!k.logged || !ip.logged) {
      this.#log.push(k, ip);
      k.logged = ip.logged = true;
    }

    k.samples++;
    k.add(REQ, 1);
    const cls = s.status >= 200 && s.status < 600 ? Math.floor(s.status / 100) : 0;
    if (cls >= 2) k.add(S2XX + cls - 2, 1);
    if (s.status === 429) k.add(R429, 1);
    const prompt = int(s.promptTokens);
    k.add(PTOK, prompt);
    k.add(CTOK, int(s.completionTokens));
    if (s.estimated) k.add(EST, 1);
    k.add(RQB, int(s.requestBytes));
    k.add(RSB, int(s.responseBytes));
    if (s.ttfbMs !== null) {
      k.add(TTFB_SUM, int(s.ttfbMs));
      k.add(TTFB_N, 1);
    }
    k.add(DUR_SUM, int(s.durationMs));
    if (prompt > k.maxPromptTokens) k.maxPromptTokens = prompt;
    const last = Math.floor(atMs);
    if (k.samples === 1 || last > k.lastUsedMs) k.lastUsedMs = last;
    if (s.streamed) k.add(STREAMS, 1);
    if (s.cut) k.add(CUT, 1);
    if (s.upstreamError) k.add(UPERR, 1);
    k.ips!.add(owner);
    if (model) k.models!.add(model);
    if (fp) k.fingerprints!.set(fp, (k.fingerprints!.get(fp) ?? 0) + 1);

    ip.samples++;
    ip.add(IP_REQUESTS, 1);
  }

  /** A failed credential or login from `rawIp` (IP_FAILED_CREDENTIALS / IP_FAILED_LOGINS). */
  recordIp(rawIp: string, slot: number, atMs: number): void {
    this.#setNow(atMs);
    const hit = this.#ipHit(rawIp);
    const ip = hit ?? this.#ipOpen(rawIp, this.#normalise(rawIp));
    if (!ip.logged) {
      this.#log.push(null, ip);
      ip.logged = true;
    }
    ip.samples++;
    ip.add(slot, 1);
  }

  /**
   * Folds every accumulator into `pending` (bucket id → bucket, insertion order = creation
   * order) and starts over: the accumulators used since the previous fold are emptied and kept
   * for their owners, the others dropped. Returns the number of accumulators folded.
   */
  fold(pending: Map<string, PendingBucket>): number {
    const log = this.#log;
    if (log.length === 0 && this.#keys.size === 0 && this.#ips.size === 0) return 0;
    this.#log = [];
    let folded = 0;
    const at = (a: Accumulator, w: number): PendingBucket => {
      const window: WindowName = WINDOW_NAMES[w]!;
      const id = bucketId(a.kind, a.owner, window, a.buckets[w]!);
      let b = pending.get(id);
      if (!b) pending.set(id, (b = newBucket(a.kind, a.owner, window, a.buckets[w]!)));
      return b;
    };
    for (let i = 0; i < log.length; i += 2) {
      const k = log[i];
      const ip = log[i + 1]!;
      // The order a record created its buckets in: key then IP, window by window.
      if (k && !k.folded) folded++;
      if (!ip.folded) folded++;
      for (let w = 0; w < WINDOWS_N; w++) {
        if (k) {
          const b = at(k, w);
          if (!k.folded) mergeKey(b, k);
        }
        const b = at(ip, w);
        if (!ip.folded) mergeIp(b, ip);
      }
      if (k) k.folded = true;
      ip.folded = true;
    }
    this.#sweep(this.#keys);
    this.#sweep(this.#ips);
    return folded;
  }

  /** Empties the accumulators used since the last fold for reuse; drops idle and closed ones. */
  #sweep(map: Map<string, Accumulator>): void {
    const fold = ++this.#folds;
    for (const [name, a] of map) {
      if (a.sweptBy !== fold) {
        a.sweptBy = fold;
        a.kept = a.samples > 0 && !a.closed;
        if (a.kept) a.reset();
      }
      if (!a.kept) map.delete(name);
    }
  }
}

/** The accumulator can take these distinct values without exceeding a bucket's caps. */
function canTake(k: Accumulator, ip: string, model: string | undefined, fp: string | undefined): boolean {
  return hasRoom(k.ips!, ip) && (!model || hasRoom(k.models!, model)) && (!fp || hasRoom(k.fingerprints!, fp));
}

const int = (n: number): number => (Number.isFinite(n) && n > 0 ? Math.round(n) : 0);

function mergeKey(b: PendingBucket, a: Accumulator): void {
  for (const slot of a.order) addSum(b, KEY_SUMS[slot]!, a.sums[slot]!);
  addMax(b, USAGE_FIELDS.maxPromptTokens, a.maxPromptTokens);
  addMax(b, USAGE_FIELDS.lastUsedMs, a.lastUsedMs);
  for (const v of a.ips!) addDistinct(b.ips, v);
  for (const v of a.models!) addDistinct(b.models, v);
  for (const [fp, n] of a.fingerprints!) addFingerprint(b, fp, n);
  b.samples += a.samples;
}

function mergeIp(b: PendingBucket, a: Accumulator): void {
  for (const slot of a.order) addSum(b, IP_SUMS[slot]!, a.sums[slot]!);
  b.samples += a.samples;
}
