import type { DetectorId, DetectorMode, TierLimits } from '@fluxgate/contracts';
import type { KeyCounters, Snapshot } from '../collect/snapshot.js';
import { credentialStuffing, KEY_DETECTORS, repeatMin, type Trip } from './detectors.js';
import { tierScale, type DetectorSettings } from './settings.js';

/**
 * Snapshot → decisions, pure: which subjects tripped which detector, in which mode, asking for
 * which kind of action. How hard to act (the level, from the key's offences), and whether the
 * allowlist or a grace keeps it from acting, is apply.ts's part: those need Redis and Postgres.
 */
export type Subject = { kind: 'key'; keyId: string; tierId: string } | { kind: 'ip'; ip: string };

export interface Decision {
  subject: Subject;
  trip: Trip;
  mode: DetectorMode;
  /** What enforcing means for this detector. */
  action: 'penalty' | 'ip_block';
  /** Detectors that also tripped for this subject this cycle (counted, not acted on separately). */
  alsoTripped: DetectorId[];
}

export interface PolicyContext {
  /** The key's own tier (not a penalty level): thresholds scale with it. */
  tierOf(keyId: string): TierLimits;
  baselineOf(keyId: string): { ewma: number; n: number } | null;
  modeOf(detector: DetectorId): DetectorMode;
}

export function decide(snapshot: Snapshot, ctx: PolicyContext, s: DetectorSettings): Decision[] {
  const out: Decision[] = [];
  for (const ip of snapshot.ips) {
    const trip = credentialStuffing(ip, s);
    if (trip) out.push({ subject: { kind: 'ip', ip: ip.ip }, trip, mode: ctx.modeOf(trip.detector), action: 'ip_block', alsoTripped: [] });
  }
  for (const k of snapshot.keys) {
    const tier = ctx.tierOf(k.keyId);
    const kctx = { tier, baseline: ctx.baselineOf(k.keyId) };
    let first: Trip | null = null;
    const also: DetectorId[] = [];
    for (const [id, detect] of KEY_DETECTORS) {
      const trip = detect(k, kctx, s);
      if (!trip) continue;
      if (first) also.push(id);
      else first = trip;
    }
    if (first)
      out.push({
        subject: { kind: 'key', keyId: k.keyId, tierId: tier.id },
        trip: first,
        mode: ctx.modeOf(first.detector),
        action: 'penalty',
        alsoTripped: also,
      });
  }
  return out;
}

/**
 * Whether a key sent enough requests over the lookback that a detector needing the extra reads
 * (distinct IPs and models, fingerprints) could trip: each of those counts is at most the number
 * of requests.
 */
export function needsDetail(totals: KeyCounters, tier: TierLimits, s: DetectorSettings): boolean {
  const scale = tierScale(s, tier.id);
  return totals.requests >= Math.min(repeatMin(tier, s), s.enumeration.models * scale, s.leak.ips * scale);
}
