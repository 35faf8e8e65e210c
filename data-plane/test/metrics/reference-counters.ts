import { IP_FIELDS, PROMPT_FINGERPRINT_HEX, USAGE_FIELDS, WINDOW_NAMES, bucketOf, type WindowName } from '@fluxgate/contracts';
import {
  addDistinct,
  addFingerprint,
  addMax,
  addSum,
  bucketId,
  isExpired,
  mergeBucket,
  newBucket,
  type PendingBucket,
} from '../../src/metrics/buckets.js';
import { defineReferenceScripts, writeBucketsPerField } from './reference-writer.js';
import { normaliseIp, type Counters, type CountersOptions, type FlushResult, type UsageSample } from '../../src/metrics/counters.js';

const int = (n: number): number => (Number.isFinite(n) && n > 0 ? Math.round(n) : 0);
const FP_RE = /^[0-9a-f]+$/;

/**
 * The usage counters as they were before the accumulators (issue 17): every request updated the
 * per-window buckets themselves (six bucket ids, ~60 map operations). Kept unchanged as the
 * reference the folded counters must match in Redis content (fold-equivalence.test.ts; it writes
 * with the per-field writer of before, reference-writer.ts).
 */
export function createReferenceCounters(opts: CountersOptions): Counters {
  const { redis, logger, metrics } = opts;
  const intervalMs = opts.intervalMs ?? 1000;
  const maxPending = opts.maxPendingBuckets ?? 100_000;
  const now = opts.now ?? Date.now;
  defineReferenceScripts(redis);

  let pending = new Map<string, PendingBucket>();
  let droppedSamples = 0;
  let flushes = 0;
  let flushFailures = 0;
  let failing = false;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let flushing = false;

  const drop = (b: PendingBucket): void => {
    droppedSamples += b.samples;
    metrics?.counterDroppedSamples.inc(b.samples);
  };

  const enforceCap = (): void => {
    while (pending.size > maxPending) {
      const [id, b] = pending.entries().next().value!;
      pending.delete(id);
      drop(b);
    }
  };

  const bucketFor = (kind: 'key' | 'ip', owner: string, window: WindowName, atMs: number): PendingBucket => {
    const bucket = bucketOf(window, atMs);
    const id = bucketId(kind, owner, window, bucket);
    let b = pending.get(id);
    if (!b) {
      pending.set(id, (b = newBucket(kind, owner, window, bucket)));
      enforceCap();
    }
    b.samples++;
    return b;
  };

  const recordIp = (ip: string, field: string, atMs: number): void => {
    const owner = normaliseIp(ip);
    for (const w of WINDOW_NAMES) addSum(bucketFor('ip', owner, w, atMs), field, 1);
  };

  metrics?.observePendingBuckets(() => pending.size);

  function record(keyId: string, s: UsageSample, atMs = now()): void {
    const ip = normaliseIp(s.clientIp);
    const fp = s.promptFingerprint?.toLowerCase().slice(0, PROMPT_FINGERPRINT_HEX);
    const model = s.model?.slice(0, 128);
    const cls = s.status >= 200 && s.status < 600 ? Math.floor(s.status / 100) : 0;
    for (const w of WINDOW_NAMES) {
      const b = bucketFor('key', keyId, w, atMs);
      addSum(b, USAGE_FIELDS.requests, 1);
      if (cls === 2) addSum(b, USAGE_FIELDS.status2xx, 1);
      else if (cls === 3) addSum(b, USAGE_FIELDS.status3xx, 1);
      else if (cls === 4) addSum(b, USAGE_FIELDS.status4xx, 1);
      else if (cls === 5) addSum(b, USAGE_FIELDS.status5xx, 1);
      if (s.status === 429) addSum(b, USAGE_FIELDS.rateLimited, 1);
      addSum(b, USAGE_FIELDS.promptTokens, int(s.promptTokens));
      addSum(b, USAGE_FIELDS.completionTokens, int(s.completionTokens));
      if (s.estimated) addSum(b, USAGE_FIELDS.estimatedRequests, 1);
      addSum(b, USAGE_FIELDS.requestBytes, int(s.requestBytes));
      addSum(b, USAGE_FIELDS.responseBytes, int(s.responseBytes));
      if (s.ttfbMs !== null) {
        addSum(b, USAGE_FIELDS.ttfbMsSum, int(s.ttfbMs));
        addSum(b, USAGE_FIELDS.ttfbCount, 1);
      }
      addSum(b, USAGE_FIELDS.durationMsSum, int(s.durationMs));
      addMax(b, USAGE_FIELDS.maxPromptTokens, int(s.promptTokens));
      addMax(b, USAGE_FIELDS.lastUsedMs, Math.floor(atMs));
      if (s.streamed) addSum(b, USAGE_FIELDS.streams, 1);
      if (s.cut) addSum(b, USAGE_FIELDS.cutStreams, 1);
      if (s.upstreamError) addSum(b, USAGE_FIELDS.upstreamErrors, 1);
      addDistinct(b.ips, ip);
      if (model) addDistinct(b.models, model);
      if (fp && FP_RE.test(fp)) addFingerprint(b, fp);
      addSum(bucketFor('ip', ip, w, atMs), IP_FIELDS.requests, 1);
    }
  }

  /** Puts unwritten buckets back in front of what arrived meanwhile (they are older). */
  function requeue(buckets: PendingBucket[]): number {
    const t = now();
    const merged = new Map<string, PendingBucket>();
    for (const b of buckets) {
      if (isExpired(b, t)) drop(b);
      else merged.set(bucketId(b.kind, b.owner, b.window, b.bucket), b);
    }
    const kept = merged.size;
    for (const [id, b] of pending) {
      const old = merged.get(id);
      if (old) mergeBucket(old, b);
      else merged.set(id, b);
    }
    pending = merged;
    enforceCap();
    return kept;
  }

  function failed(error: string, buckets: PendingBucket[], commands: number): FlushResult {
    flushFailures++;
    metrics?.counterFlushFailures.inc();
    if (!failing) logger?.warn({ error, buckets: buckets.length }, 'usage counter flush failed; keeping aggregates');
    failing = true;
    return { ok: false, written: 0, requeued: requeue(buckets), commands, error };
  }

  async function doFlush(): Promise<FlushResult> {
    if (pending.size === 0 && !opts.extraWrites) return { ok: true, written: 0, requeued: 0, commands: 0 };
    if (pending.size === 0 && redis.status !== 'ready')
      return { ok: false, written: 0, requeued: 0, commands: 0, error: `redis ${redis.status}` };
    const buckets = [...pending.values()];
    pending = new Map();
    flushes++;
    if (redis.status !== 'ready') return failed(`redis ${redis.status}`, buckets, 0);

    let outcome;
    try {
      outcome = await writeBucketsPerField(redis, buckets, opts.extraWrites);
    } catch (err) {
      return failed(err instanceof Error ? err.message : String(err), buckets, 0);
    }
    const { retry, partial, commands, error } = outcome;
    if (partial > 0) logger?.error({ buckets: partial, error }, 'usage counter buckets partly written');
    if (retry.length > 0) {
      const r = failed(error ?? 'commands failed', retry, commands);
      return { ...r, written: buckets.length - retry.length };
    }
    if (failing) logger?.info('usage counter flushes recovered');
    failing = false;
    return { ok: true, written: buckets.length, requeued: 0, commands };
  }

  function flush(): Promise<FlushResult> {
    const run = chain.then(async () => {
      flushing = true;
      try {
        return await doFlush();
      } finally {
        flushing = false;
      }
    });
    chain = run.catch(() => undefined);
    return run;
  }

  return {
    record(keyId, sample, atMs) {
      try {
        record(keyId, sample, atMs);
      } catch (err) {
        logger?.error({ err }, 'usage sample not recorded');
      }
    },
    recordFailedCredential: (ip, atMs = now()) => recordIp(ip, IP_FIELDS.failedCredentials, atMs),
    recordFailedLogin: (ip, atMs = now()) => recordIp(ip, IP_FIELDS.failedLogins, atMs),
    flush,
    start() {
      timer ??= setInterval(() => {
        if (!flushing) void flush();
      }, intervalMs).unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      return flush();
    },
    pendingBuckets: () => pending.size,
    stats: () => ({ pendingBuckets: pending.size, droppedSamples, flushes, flushFailures, failing }),
  };
}
