import { WINDOWS, type WindowName } from '@fluxgate/contracts';

/**
 * In-memory aggregate of one Redis bucket between flushes. Sums and maxima are keyed by the
 * Redis hash field names of contracts/src/usage.ts (USAGE_FIELDS / IP_FIELDS values).
 */
export interface PendingBucket {
  kind: 'key' | 'ip';
  /** Key id or client IP. */
  owner: string;
  window: WindowName;
  bucket: number;
  sums: Map<string, number>;
  maxes: Map<string, number>;
  ips: Set<string>;
  models: Set<string>;
  fingerprints: Map<string, number>;
  /** Samples merged into this bucket (what is lost if it is dropped). */
  samples: number;
}

/** Distinct IPs, models and prompt fingerprints kept per bucket between two flushes. */
export const MAX_DISTINCT_PER_BUCKET = 1024;

export const bucketId = (kind: 'key' | 'ip', owner: string, window: WindowName, bucket: number): string =>
  `${kind}\u0000${owner}\u0000${window}\u0000${bucket}`;

export function newBucket(kind: 'key' | 'ip', owner: string, window: WindowName, bucket: number): PendingBucket {
  return {
    kind,
    owner,
    window,
    bucket,
    sums: new Map(),
    maxes: new Map(),
    ips: new Set(),
    models: new Set(),
    fingerprints: new Map(),
    samples: 0,
  };
}

export function addSum(b: PendingBucket, field: string, n: number): void {
  if (n !== 0) b.sums.set(field, (b.sums.get(field) ?? 0) + n);
}

export function addMax(b: PendingBucket, field: string, n: number): void {
  const cur = b.maxes.get(field);
  if (cur === undefined || n > cur) b.maxes.set(field, n);
}

export function addDistinct(set: Set<string>, value: string): void {
  if (set.size < MAX_DISTINCT_PER_BUCKET || set.has(value)) set.add(value);
}

export function addFingerprint(b: PendingBucket, fp: string, n = 1): void {
  const cur = b.fingerprints.get(fp);
  if (cur !== undefined) b.fingerprints.set(fp, cur + n);
  else if (b.fingerprints.size < MAX_DISTINCT_PER_BUCKET) b.fingerprints.set(fp, n);
}

/** Merges `src` into `dst` (same bucket id): sums add, maxima max, sets union. */
export function mergeBucket(dst: PendingBucket, src: PendingBucket): void {
  for (const [f, n] of src.sums) addSum(dst, f, n);
  for (const [f, n] of src.maxes) addMax(dst, f, n);
  for (const v of src.ips) addDistinct(dst.ips, v);
  for (const v of src.models) addDistinct(dst.models, v);
  for (const [fp, n] of src.fingerprints) addFingerprint(dst, fp, n);
  dst.samples += src.samples;
}

/** True once a bucket's Redis key would already have expired: writing it now is pointless. */
export function isExpired(b: PendingBucket, nowMs: number): boolean {
  const w = WINDOWS[b.window];
  return ((b.bucket + 1) * w.seconds + w.ttlSeconds) * 1000 <= nowMs;
}
