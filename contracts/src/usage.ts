import { z } from 'zod';

/**
 * Usage counters the data plane writes and the control plane's detectors read.
 * Windows are fixed buckets: bucket = floor(unixSeconds / seconds). Each bucket key
 * expires after `ttlSeconds`, so old windows disappear by TTL, never by a sweeper.
 */
export const WINDOWS = {
  /** Detector resolution: the guard reads the last few of these every poll. */
  s10: { seconds: 10, ttlSeconds: 15 * 60 },
  /** Charts over the last day(s). */
  m1: { seconds: 60, ttlSeconds: 48 * 3600 },
  /** Charts over weeks. */
  h1: { seconds: 3600, ttlSeconds: 35 * 24 * 3600 },
} as const;
export type WindowName = keyof typeof WINDOWS;
export const WINDOW_NAMES = Object.keys(WINDOWS) as WindowName[];

export const bucketOf = (window: WindowName, unixMs: number): number => Math.floor(unixMs / 1000 / WINDOWS[window].seconds);

/** Hash fields of a key's usage bucket. All integers; sums are HINCRBY, maxima are max-merged. */
export const USAGE_FIELDS = {
  requests: 'req',
  status2xx: 's2xx',
  status3xx: 's3xx',
  status4xx: 's4xx',
  status5xx: 's5xx',
  rateLimited: 'r429',
  promptTokens: 'ptok',
  completionTokens: 'ctok',
  /** 1 when the token counts of some request were estimated from bytes (no upstream usage). */
  estimatedRequests: 'est',
  requestBytes: 'rqb',
  responseBytes: 'rsb',
  ttfbMsSum: 'ttfb_sum',
  ttfbCount: 'ttfb_n',
  durationMsSum: 'dur_sum',
  /** Largest prompt (tokens) seen in the bucket: written with a max-merge script. */
  maxPromptTokens: 'ptok_max',
  streams: 'streams',
  cutStreams: 'cut',
  upstreamErrors: 'uperr',
  lastUsedMs: 'last',
} as const;
export type UsageField = keyof typeof USAGE_FIELDS;

/** Fields merged with max() instead of sum. */
export const MAX_MERGED_FIELDS: readonly UsageField[] = ['maxPromptTokens', 'lastUsedMs'];

/** Hash fields of per-IP counters. */
export const IP_FIELDS = {
  failedCredentials: 'badkey',
  failedLogins: 'badlogin',
  requests: 'req',
} as const;

/** Length of the prompt fingerprint (hex chars of SHA-256 over the normalised prompt). */
export const PROMPT_FINGERPRINT_HEX = 12;

const count = z.coerce.number().int().nonnegative().default(0);
export const usageBucketSchema = z.object(
  Object.fromEntries(Object.values(USAGE_FIELDS).map((f) => [f, count])) as Record<(typeof USAGE_FIELDS)[UsageField], typeof count>,
);
export type UsageBucket = z.infer<typeof usageBucketSchema>;
