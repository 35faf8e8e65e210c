import { DEFAULT_TIERS, type DetectorId, type TierLimits } from '@fluxgate/contracts';
import { describe, expect, it } from 'vitest';
import type { IpSnapshot, KeyCounters, KeyDetail, KeySnapshot, Snapshot } from '../collect/snapshot.js';
import { configWith } from '../config/load.js';
import { updateBaseline } from './baseline.js';
import { credentialStuffing, KEY_DETECTORS, type KeyContext } from './detectors.js';
import { decide, needsDetail, type PolicyContext } from './policy.js';
import { allowance, settingsFromConfig } from './settings.js';

const s = settingsFromConfig(configWith());
const free = DEFAULT_TIERS.free;
const pro = DEFAULT_TIERS.pro;

const key = (
  totals: Partial<KeyCounters>,
  detail: Partial<KeyDetail> | null = null,
  lastWindowRequests: number | null = null,
): KeySnapshot => ({
  keyId: 'k',
  totals: { requests: 0, status4xx: 0, rateLimited: 0, promptTokens: 0, completionTokens: 0, maxPromptTokens: 0, ...totals },
  lastWindowRequests,
  detail: detail ? { distinctIps: 1, distinctModels: 1, topPromptCount: 1, ...detail } : null,
});
const ctx = (tier: TierLimits = free, baseline: KeyContext['baseline'] = null): KeyContext => ({ tier, baseline });
const run = (id: DetectorId, k: KeySnapshot, c: KeyContext = ctx()) => KEY_DETECTORS.find(([d]) => d === id)![1](k, c, s);
const trips = (id: DetectorId, k: KeySnapshot, c?: KeyContext): boolean => run(id, k, c) !== null;

describe('thresholds scale with the tier', () => {
  it('free: 150k tokens and 40 requests over 30 s at most', () => {
    expect(allowance(free, 30)).toEqual({ tokens: 150_000, requests: 40, requestsPerS10: 10 });
    expect(allowance(pro, 30).tokens).toBe(3_000_000);
  });
});

describe('context flooding', () => {
  const flood = key({ requests: 10, promptTokens: 300_000, maxPromptTokens: 31_000 });
  it('trips on many huge prompts far beyond the tier, with the numbers and thresholds', () => {
    expect(run('context_flooding', flood)).toEqual({
      detector: 'context_flooding',
      evidence: { requests: 10, avgPromptTokens: 30_000, promptTokens: 300_000, maxPromptTokens: 31_000 },
      thresholds: { requests: 3, avgPromptTokens: 8000, promptTokens: 165_000 },
    });
  });
  it('benign: a long-context user within the tier, and the same traffic on a bigger tier', () => {
    expect(trips('context_flooding', key({ requests: 4, promptTokens: 120_000, maxPromptTokens: 32_000 }))).toBe(false);
    expect(trips('context_flooding', flood, ctx(pro))).toBe(false);
  });
  it('benign: many small prompts (that is volume, not flooding)', () => {
    expect(trips('context_flooding', key({ requests: 400, promptTokens: 400_000 }))).toBe(false);
  });
});

describe('token over-consumption', () => {
  it('trips beyond 1.5 × the allowance; benign steady heavy use just under the tier does not', () => {
    expect(trips('token_overconsumption', key({ requests: 40, promptTokens: 120_000, completionTokens: 120_000 }))).toBe(true);
    expect(trips('token_overconsumption', key({ requests: 40, promptTokens: 60_000, completionTokens: 80_000 }))).toBe(false);
  });
});

describe('rate spike against the key own baseline', () => {
  it('trips when the last window is 8× its baseline and above the tier rate', () => {
    const r = run('rate_spike', key({ requests: 60 }, null, 40), ctx(free, { ewma: 2, n: 40 }));
    expect(r?.evidence).toEqual({ windowRequests: 40, baselineRequests: 2 });
    expect(r?.thresholds.windowRequests).toBe(16);
  });
  it('benign: a batch job starting within its tier, a key without enough history, a steady heavy user', () => {
    expect(trips('rate_spike', key({ requests: 9 }, null, 9), ctx(free, { ewma: 0.5, n: 40 }))).toBe(false);
    expect(trips('rate_spike', key({ requests: 60 }, null, 40), ctx(free, { ewma: 2, n: 5 }))).toBe(false);
    expect(trips('rate_spike', key({ requests: 300 }, null, 100), ctx(pro, { ewma: 95, n: 40 }))).toBe(false);
    expect(trips('rate_spike', key({ requests: 60 }, null, null), ctx(free, { ewma: 2, n: 40 }))).toBe(false);
  });
  it('the baseline decays over idle windows and compares a window with what came before it', () => {
    let b = updateBaseline(undefined, 100, 10);
    for (let i = 101; i < 130; i++) b = updateBaseline(b, i, 10);
    expect(b.ewma).toBeCloseTo(10, 5);
    const spike = updateBaseline(b, 130, 100);
    expect(spike.before.ewma).toBeCloseTo(10, 5);
    expect(spike.ewma).toBeGreaterThan(10);
    const later = updateBaseline(b, 160, 0);
    expect(later.ewma).toBeLessThan(2);
    expect(later.n).toBe(b.n + 31);
  });
});

describe('hammering through 429s', () => {
  it('trips when most requests are refused and there are many', () => {
    expect(trips('hammering_429', key({ requests: 240, rateLimited: 200 }))).toBe(true);
  });
  it('benign: a client that backs off on Retry-After; a busy pro key with a few refusals', () => {
    expect(trips('hammering_429', key({ requests: 45, rateLimited: 5 }))).toBe(false);
    expect(trips('hammering_429', key({ requests: 700, rateLimited: 30 }), ctx(pro))).toBe(false);
  });
});

describe('output/input token-ratio spike', () => {
  it('trips on tiny prompts pulling huge completions in volume', () => {
    expect(run('token_ratio_spike', key({ requests: 8, promptTokens: 500, completionTokens: 60_000 }))?.evidence.outputInputRatio).toBe(
      120,
    );
  });
  it('benign: one long essay from a short prompt; a summariser (big in, small out)', () => {
    expect(trips('token_ratio_spike', key({ requests: 1, promptTokens: 20, completionTokens: 2_000 }))).toBe(false);
    expect(trips('token_ratio_spike', key({ requests: 30, promptTokens: 100_000, completionTokens: 10_000 }))).toBe(false);
  });
});

describe('repeated prompt', () => {
  it('trips when one fingerprint is most of many requests', () => {
    expect(trips('repeated_prompt', key({ requests: 35 }, { topPromptCount: 30 }))).toBe(true);
  });
  it('benign: varied prompts at high volume; a few retries of one prompt', () => {
    expect(trips('repeated_prompt', key({ requests: 40 }, { topPromptCount: 3 }))).toBe(false);
    expect(trips('repeated_prompt', key({ requests: 6 }, { topPromptCount: 5 }))).toBe(false);
    expect(trips('repeated_prompt', key({ requests: 35 }, null))).toBe(false);
  });
});

describe('model enumeration and leaked keys (count thresholds × tier scale)', () => {
  it('trips on many distinct models; not on a multi-model app, nor the same count on pro', () => {
    expect(trips('model_enumeration', key({ requests: 30, status4xx: 25 }, { distinctModels: 12 }))).toBe(true);
    expect(trips('model_enumeration', key({ requests: 300 }, { distinctModels: 3 }))).toBe(false);
    expect(trips('model_enumeration', key({ requests: 30 }, { distinctModels: 12 }), ctx(pro))).toBe(false);
  });
  it('trips on one key from 20 IPs; not on a service behind a few NAT addresses', () => {
    expect(run('leaked_key', key({ requests: 40 }, { distinctIps: 20 }))?.thresholds).toEqual({ distinctIps: 10 });
    expect(trips('leaked_key', key({ requests: 400 }, { distinctIps: 3 }))).toBe(false);
    expect(trips('leaked_key', key({ requests: 400 }, { distinctIps: 15 }), ctx(pro))).toBe(false);
  });
});

describe('credential stuffing per IP', () => {
  const ip = (failedCredentials: number, failedLogins = 0): IpSnapshot => ({
    ip: '203.0.113.7',
    failedCredentials,
    failedLogins,
    requests: failedCredentials,
  });
  it('trips on many failed keys or logins; not on a typo or two', () => {
    expect(credentialStuffing(ip(50), s)?.evidence.failures).toBe(50);
    expect(credentialStuffing(ip(5, 15), s)).not.toBeNull();
    expect(credentialStuffing(ip(3), s)).toBeNull();
  });
});

describe('policy', () => {
  const snapshot = (keys: KeySnapshot[], ips: IpSnapshot[] = []): Snapshot => ({
    at: 1,
    bucket: 1,
    lookbackBuckets: 3,
    lastCompleteBucket: 0,
    keys,
    ips,
  });
  const pctx = (modes: Partial<Record<DetectorId, 'enforce' | 'shadow'>> = {}): PolicyContext => ({
    tierOf: () => free,
    baselineOf: () => null,
    modeOf: (d) => modes[d] ?? 'enforce',
  });

  it('one decision per key: the first detector in precedence acts, the others are listed', () => {
    const flood = { ...key({ requests: 10, promptTokens: 300_000, maxPromptTokens: 31_000 }), keyId: 'flooder' };
    const [d, ...rest] = decide(
      snapshot([flood, { ...key({ requests: 30, promptTokens: 9000, completionTokens: 12_000 }), keyId: 'benign' }]),
      pctx(),
      s,
    );
    expect(rest).toEqual([]);
    expect(d).toMatchObject({
      subject: { kind: 'key', keyId: 'flooder', tierId: 'free' },
      mode: 'enforce',
      action: 'penalty',
      alsoTripped: ['token_overconsumption'],
    });
    expect(d!.trip.detector).toBe('context_flooding');
  });

  it('carries the mode and asks an IP block for credential stuffing', () => {
    const ds = decide(
      snapshot([], [{ ip: '203.0.113.7', failedCredentials: 40, failedLogins: 0, requests: 40 }]),
      pctx({ credential_stuffing: 'shadow' }),
      s,
    );
    expect(ds).toMatchObject([{ subject: { kind: 'ip', ip: '203.0.113.7' }, mode: 'shadow', action: 'ip_block' }]);
  });

  it('reads details only for keys with enough requests to trip a detector that needs them', () => {
    // The lowest of them on free is model enumeration's 8 distinct models; on pro 8 × 2.
    expect(needsDetail(key({ requests: 7 }).totals, free, s)).toBe(false);
    expect(needsDetail(key({ requests: 8 }).totals, free, s)).toBe(true);
    expect(needsDetail(key({ requests: 15 }).totals, pro, s)).toBe(false);
  });
});
