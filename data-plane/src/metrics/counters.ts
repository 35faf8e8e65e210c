import { WINDOW_NAMES } from '@fluxgate/contracts';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import type { GatewayMetrics } from './registry.js';
import { AccumulatorTable, IP_FAILED_CREDENTIALS, IP_FAILED_LOGINS } from './accumulators.js';
import { bucketId, isExpired, mergeBucket, type PendingBucket } from './buckets.js';
import { defineCounterScripts, writeBuckets } from './counter-writer.js';

/** One finished request, as the proxy reports it. */
export interface UsageSample {
  /** HTTP status sent; 0 when the client went away before any. */
  status: number;
  promptTokens: number;
  completionTokens: number;
  /** Token counts were estimated from bytes (the upstream sent no usage). */
  estimated: boolean;
  requestBytes: number;
  responseBytes: number;
  /** Null when no body byte was sent. */
  ttfbMs: number | null;
  durationMs: number;
  clientIp: string;
  model: string | null;
  /** Hex fingerprint of the normalised prompt (PROMPT_FINGERPRINT_HEX chars used). */
  promptFingerprint: string | null;
  streamed: boolean;
  /** Stopped mid-stream by the token limit. */
  cut: boolean;
  upstreamError: boolean;
}

export interface CountersOptions {
  /**
   * A hot-path client created with `enableOfflineQueue: false`, so a flush fails at once while
   * Redis is away instead of queueing behind a reconnect.
   */
  redis: Redis;
  intervalMs?: number;
  /** Buckets kept in memory at most; beyond it the oldest are dropped (and counted). */
  maxPendingBuckets?: number;
  metrics?: Pick<GatewayMetrics, 'counterFlushFailures' | 'counterDroppedSamples' | 'observePendingBuckets'>;
  logger?: Logger;
  now?: () => number;
  /**
   * Appends more commands to every flush's pipeline, even a flush with no bucket to write: the
   * replica's own records (metrics/replica-records.ts), so they cost no round trip of their own.
   */
  extraWrites?: (p: ChainableCommander) => void;
}

export interface FlushResult {
  ok: boolean;
  /** Buckets written. */
  written: number;
  /** Buckets kept for the next flush. */
  requeued: number;
  commands: number;
  error?: string;
}

export interface CountersStats {
  pendingBuckets: number;
  droppedSamples: number;
  flushes: number;
  flushFailures: number;
  failing: boolean;
}

export interface Counters {
  /** Hot path: aggregates in memory, no I/O, never throws. */
  record(keyId: string, sample: UsageSample, atMs?: number): void;
  recordFailedCredential(ip: string, atMs?: number): void;
  recordFailedLogin(ip: string, atMs?: number): void;
  /** Writes everything pending in one pipeline; failed buckets are kept and merged into the next. */
  flush(): Promise<FlushResult>;
  start(): void;
  /** Stops the timer and makes a last flush (shutdown). */
  stop(): Promise<FlushResult>;
  pendingBuckets(): number;
  stats(): CountersStats;
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client (IPv4-mapped IPv6, RFC 4291 §2.5.5.2). */
export function normaliseIp(ip: string): string {
  const s = ip.trim().toLowerCase();
  if (s === '') return 'unknown';
  const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  return (v4?.[1] ?? s).slice(0, 64);
}

/**
 * Per-key, per-window usage counters (contracts/src/usage.ts), aggregated in memory and written
 * to Redis in one pipeline per interval. While Redis is unavailable the aggregates are kept and
 * merged into the next flush, up to `maxPendingBuckets`; requests are never blocked or failed.
 */
export function createCounters(opts: CountersOptions): Counters {
  const { redis, logger, metrics } = opts;
  const intervalMs = opts.intervalMs ?? 1000;
  const maxPending = opts.maxPendingBuckets ?? 100_000;
  const now = opts.now ?? Date.now;
  defineCounterScripts(redis);

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

  // The hot path adds to one accumulator per key (and per client IP) and s10 bucket; they are
  // folded into `pending` (the per-window buckets the flush writes) when the buckets are needed:
  // at each flush, when the pending count is read, and when too many accumulators are open.
  const table = new AccumulatorTable(normaliseIp);
  const foldAt = Math.max(1, Math.ceil(maxPending / WINDOW_NAMES.length));
  const fold = (): void => {
    if (table.fold(pending) > 0) enforceCap();
  };
  const folded = (): Map<string, PendingBucket> => {
    fold();
    return pending;
  };
  const afterRecord = (): void => {
    if (table.opened >= foldAt) fold();
  };

  metrics?.observePendingBuckets(() => folded().size);

  function record(keyId: string, s: UsageSample, atMs = now()): void {
    table.record(keyId, s, atMs);
    afterRecord();
  }

  const recordIp = (ip: string, slot: number, atMs: number): void => {
    table.recordIp(ip, slot, atMs);
    afterRecord();
  };

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
    fold();
    if (pending.size === 0 && !opts.extraWrites) return { ok: true, written: 0, requeued: 0, commands: 0 };
    if (pending.size === 0 && redis.status !== 'ready')
      return { ok: false, written: 0, requeued: 0, commands: 0, error: `redis ${redis.status}` };
    const buckets = [...pending.values()];
    pending = new Map();
    flushes++;
    if (redis.status !== 'ready') return failed(`redis ${redis.status}`, buckets, 0);

    let outcome;
    try {
      outcome = await writeBuckets(redis, buckets, opts.extraWrites);
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
    recordFailedCredential: (ip, atMs = now()) => recordIp(ip, IP_FAILED_CREDENTIALS, atMs),
    recordFailedLogin: (ip, atMs = now()) => recordIp(ip, IP_FAILED_LOGINS, atMs),
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
    pendingBuckets: () => folded().size,
    stats: () => ({ pendingBuckets: folded().size, droppedSamples, flushes, flushFailures, failing }),
  };
}
