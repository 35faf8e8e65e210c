import type { DetectorId, TierLimits } from '@fluxgate/contracts';
import type { IpSnapshot, KeySnapshot } from '../collect/snapshot.js';
import { allowance, tierScale, type DetectorSettings } from './settings.js';

/**
 * The detectors: pure functions of one key's (or IP's) numbers over the lookback, its own tier
 * and baseline, and the settings. Each answers null, or what it saw and the thresholds it crossed
 * (numbers only: no prompt text ever reaches a detector). Every threshold below must be crossed
 * at once; the second condition of each is what keeps honest heavy users out (see policy.test.ts).
 */
export interface Trip {
  detector: DetectorId;
  evidence: Record<string, number>;
  thresholds: Record<string, number>;
}

export interface KeyContext {
  tier: TierLimits;
  /** The key's baseline as it was before its last complete window (null: none yet). */
  baseline: { ewma: number; n: number } | null;
}

type KeyDetector = (k: KeySnapshot, ctx: KeyContext, s: DetectorSettings) => Trip | null;

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Huge prompts, many of them: average prompt size and prompt volume far beyond the tier. */
export const contextFlooding: KeyDetector = (k, ctx, s) => {
  const { requests, promptTokens, maxPromptTokens } = k.totals;
  const avg = promptTokens / Math.max(1, requests);
  const limit = s.flood.tierFactor * allowance(ctx.tier, s.lookbackSeconds).tokens;
  if (requests < s.flood.minRequests || avg < s.flood.avgPromptTokens || promptTokens < limit) return null;
  return {
    detector: 'context_flooding',
    evidence: { requests, avgPromptTokens: round(avg), promptTokens, maxPromptTokens },
    thresholds: { requests: s.flood.minRequests, avgPromptTokens: s.flood.avgPromptTokens, promptTokens: round(limit) },
  };
};

/** Tokens asked for (prompt + completion) well beyond what the tier admits over the lookback. */
export const tokenOverconsumption: KeyDetector = (k, ctx, s) => {
  const tokens = k.totals.promptTokens + k.totals.completionTokens;
  const limit = s.overuse.tierFactor * allowance(ctx.tier, s.lookbackSeconds).tokens;
  if (tokens < limit) return null;
  return {
    detector: 'token_overconsumption',
    evidence: { tokens, promptTokens: k.totals.promptTokens, completionTokens: k.totals.completionTokens },
    thresholds: { tokens: round(limit) },
  };
};

/**
 * Requests in the last complete window against the key's own baseline — and at least the tier's
 * sustained rate, so a batch job that starts within its tier is not a spike worth acting on.
 */
export const rateSpike: KeyDetector = (k, ctx, s) => {
  const sample = k.lastWindowRequests;
  const b = ctx.baseline;
  if (sample === null || !b || b.n < s.spike.warmupBuckets) return null;
  const vsBaseline = s.spike.factor * Math.max(1, b.ewma);
  const tierFloor = s.spike.tierFactor * allowance(ctx.tier, s.lookbackSeconds).requestsPerS10;
  if (sample < vsBaseline || sample < tierFloor) return null;
  return {
    detector: 'rate_spike',
    evidence: { windowRequests: sample, baselineRequests: round(b.ewma) },
    thresholds: { windowRequests: round(Math.max(vsBaseline, tierFloor)), spikeFactor: s.spike.factor },
  };
};

/** Keeps sending through 429s: many refusals, and most of its requests refused. */
export const hammering429: KeyDetector = (k, ctx, s) => {
  const { rateLimited, requests } = k.totals;
  const min = Math.max(s.hammer.min, s.hammer.tierFactor * allowance(ctx.tier, s.lookbackSeconds).requests);
  const share = rateLimited / Math.max(1, requests);
  if (rateLimited < min || share < s.hammer.ratio) return null;
  return {
    detector: 'hammering_429',
    evidence: { rateLimited, requests, rateLimitedShare: round(share, 3) },
    thresholds: { rateLimited: round(min), rateLimitedShare: s.hammer.ratio },
  };
};

/** Completion tokens out of all proportion to the prompts, in volume. */
export const tokenRatioSpike: KeyDetector = (k, ctx, s) => {
  const { completionTokens, promptTokens } = k.totals;
  const ratio = completionTokens / Math.max(1, promptTokens);
  const volume = s.ratio.tierFactor * allowance(ctx.tier, s.lookbackSeconds).tokens;
  if (ratio < s.ratio.max || completionTokens < volume) return null;
  return {
    detector: 'token_ratio_spike',
    evidence: { outputInputRatio: round(ratio), completionTokens, promptTokens },
    thresholds: { outputInputRatio: s.ratio.max, completionTokens: round(volume) },
  };
};

/** The same prompt again and again (scraping, eval farming): its count and its share of the key's requests. */
export const repeatedPrompt: KeyDetector = (k, ctx, s) => {
  if (!k.detail) return null;
  const top = k.detail.topPromptCount;
  const min = repeatMin(ctx.tier, s);
  const share = top / Math.max(1, k.totals.requests);
  if (top < min || share < s.repeat.share) return null;
  return {
    detector: 'repeated_prompt',
    evidence: { topPromptCount: top, requests: k.totals.requests, topPromptShare: round(share, 3) },
    thresholds: { topPromptCount: round(min), topPromptShare: s.repeat.share },
  };
};

/** Many distinct model names asked for (probing what the gateway serves). */
export const modelEnumeration: KeyDetector = (k, ctx, s) => {
  if (!k.detail) return null;
  const min = s.enumeration.models * tierScale(s, ctx.tier.id);
  if (k.detail.distinctModels < min) return null;
  return {
    detector: 'model_enumeration',
    evidence: { distinctModels: k.detail.distinctModels, requests: k.totals.requests, status4xx: k.totals.status4xx },
    thresholds: { distinctModels: min },
  };
};

/** One key from many client IPs: a leaked key. */
export const leakedKey: KeyDetector = (k, ctx, s) => {
  if (!k.detail) return null;
  const min = s.leak.ips * tierScale(s, ctx.tier.id);
  if (k.detail.distinctIps < min) return null;
  return {
    detector: 'leaked_key',
    evidence: { distinctIps: k.detail.distinctIps, requests: k.totals.requests },
    thresholds: { distinctIps: min },
  };
};

/** Failed API keys and logins from one IP (credential stuffing, key guessing). */
export function credentialStuffing(ip: IpSnapshot, s: DetectorSettings): Trip | null {
  const failures = ip.failedCredentials + ip.failedLogins;
  if (failures < s.stuffing.failures) return null;
  return {
    detector: 'credential_stuffing',
    evidence: { failures, failedCredentials: ip.failedCredentials, failedLogins: ip.failedLogins, requests: ip.requests },
    thresholds: { failures: s.stuffing.failures },
  };
}

export const repeatMin = (tier: TierLimits, s: DetectorSettings): number =>
  Math.max(s.repeat.min, s.repeat.tierFactor * allowance(tier, s.lookbackSeconds).requests);

/**
 * Key detectors in precedence order: when several trip for one key in one cycle, the first is
 * the episode that acts (the others are counted in metrics but open no incident of their own —
 * a flood also over-consumes tokens; one abuse, one incident).
 */
export const KEY_DETECTORS: ReadonlyArray<readonly [DetectorId, KeyDetector]> = [
  ['leaked_key', leakedKey],
  ['context_flooding', contextFlooding],
  ['repeated_prompt', repeatedPrompt],
  ['model_enumeration', modelEnumeration],
  ['token_ratio_spike', tokenRatioSpike],
  ['hammering_429', hammering429],
  ['token_overconsumption', tokenOverconsumption],
  ['rate_spike', rateSpike],
];
