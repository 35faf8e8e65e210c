import type { TierLimits } from '@fluxgate/contracts';
import type { ControlPlaneConfig } from '../config/schema.js';

/**
 * Detector thresholds (config GUARD_*), and how they scale with a key's own tier:
 * - volume thresholds are multiples of what the tier admits over the lookback (`allowance`): the
 *   token bucket's capacity (one window of tokens) plus its refill over the lookback, and the
 *   request bucket's burst + 1 plus its refill. A key cannot exceed its allowance with admitted
 *   traffic, so "1.5 × allowance" means it kept asking far beyond its tier;
 * - count thresholds (distinct IPs, distinct models) are multiplied by the tier's factor in
 *   GUARD_TIER_SCALE (default free 1, pro 2, enterprise 4; other tiers 1).
 */
export interface DetectorSettings {
  lookbackSeconds: number;
  flood: { avgPromptTokens: number; tierFactor: number; minRequests: number };
  overuse: { tierFactor: number };
  stuffing: { failures: number };
  spike: { factor: number; tierFactor: number; warmupBuckets: number };
  hammer: { tierFactor: number; min: number; ratio: number };
  ratio: { max: number; tierFactor: number };
  repeat: { min: number; share: number; tierFactor: number };
  enumeration: { models: number };
  leak: { ips: number };
  tierScale: ReadonlyMap<string, number>;
}

export function settingsFromConfig(c: ControlPlaneConfig): DetectorSettings {
  return {
    lookbackSeconds: c.GUARD_LOOKBACK_SECONDS,
    flood: {
      avgPromptTokens: c.GUARD_FLOOD_AVG_PROMPT_TOKENS,
      tierFactor: c.GUARD_FLOOD_TIER_FACTOR,
      minRequests: c.GUARD_FLOOD_MIN_REQUESTS,
    },
    overuse: { tierFactor: c.GUARD_OVERUSE_TIER_FACTOR },
    stuffing: { failures: c.GUARD_STUFFING_FAILURES },
    spike: { factor: c.GUARD_SPIKE_FACTOR, tierFactor: c.GUARD_SPIKE_TIER_FACTOR, warmupBuckets: c.GUARD_SPIKE_WARMUP_BUCKETS },
    hammer: { tierFactor: c.GUARD_HAMMER_TIER_FACTOR, min: c.GUARD_HAMMER_MIN, ratio: c.GUARD_HAMMER_RATIO },
    ratio: { max: c.GUARD_RATIO_MAX, tierFactor: c.GUARD_RATIO_TIER_FACTOR },
    repeat: { min: c.GUARD_REPEAT_MIN, share: c.GUARD_REPEAT_SHARE, tierFactor: c.GUARD_REPEAT_TIER_FACTOR },
    enumeration: { models: c.GUARD_ENUM_MODELS },
    leak: { ips: c.GUARD_LEAK_IPS },
    tierScale: c.GUARD_TIER_SCALE,
  };
}

export interface Allowance {
  requests: number;
  tokens: number;
  /** The tier's sustained requests per 10 s window. */
  requestsPerS10: number;
}

// Detectors ask for a tier's allowance once per key per cycle: memoised per tier object.
const memo = new WeakMap<TierLimits, Map<number, Allowance>>();

/** What a tier admits over `seconds` at most (full buckets at the start, refilled throughout). */
export function allowance(tier: TierLimits, seconds: number): Allowance {
  let bySeconds = memo.get(tier);
  if (!bySeconds) memo.set(tier, (bySeconds = new Map()));
  let a = bySeconds.get(seconds);
  if (!a) bySeconds.set(seconds, (a = computeAllowance(tier, seconds)));
  return a;
}

function computeAllowance(tier: TierLimits, seconds: number): Allowance {
  const reqRate = tier.requestsPerWindow / tier.windowSeconds;
  const tokRate = tier.tokensPerWindow / tier.windowSeconds;
  return {
    // The request bucket holds `burst` (issue 12's meaning of the column: the most admitted at
    // once; before it, nginx's burst + 1 — one request apart, immaterial for these thresholds).
    requests: tier.burst + reqRate * seconds,
    tokens: tier.tokensPerWindow + tokRate * seconds,
    requestsPerS10: reqRate * 10,
  };
}

export const tierScale = (s: DetectorSettings, tierId: string): number => s.tierScale.get(tierId) ?? 1;
