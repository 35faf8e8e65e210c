import { DEFAULT_TIERS } from '@fluxgate/contracts';
import { describe, expect, it } from 'vitest';
import { bucketLimitsOf, LocalBuckets, msUntil, sameLimits } from './bucket.js';
import { reservationFor, Reservation } from './reservation.js';

const tier = { id: 't', requestsPerWindow: 60, tokensPerWindow: 6000, windowSeconds: 60, concurrentStreams: 2, burst: 4 };

describe('bucketLimitsOf', () => {
  it('requests: exactly burst at once (the capacity the header reports), refilled at the tier rate; tokens: one window', () => {
    const l = bucketLimitsOf(tier);
    expect(l.requests).toEqual({ capacity: 4, ratePerMs: 60 / 60_000 });
    expect(l.tokens).toEqual({ capacity: 6000, ratePerMs: 6000 / 60_000 });
  });

  it('splits the tier between assumed replicas but keeps at least one unit', () => {
    const l = bucketLimitsOf(tier, 4);
    expect(l.requests.capacity).toBe(1);
    expect(l.requests.ratePerMs).toBeCloseTo(60 / 60_000 / 4);
    expect(l.tokens.capacity).toBe(1500);
    expect(bucketLimitsOf(DEFAULT_TIERS['penalty-3'], 8).tokens.capacity).toBe(1);
  });

  it('sameLimits compares numbers, not identity', () => {
    expect(sameLimits(bucketLimitsOf(tier), bucketLimitsOf({ ...tier }))).toBe(true);
    expect(sameLimits(bucketLimitsOf(tier), bucketLimitsOf({ ...tier, burst: 5 }))).toBe(false);
  });

  it('msUntil is Infinity beyond capacity', () => {
    const l = bucketLimitsOf(tier);
    expect(msUntil(l.tokens, 0, 6001)).toBe(Infinity);
    expect(msUntil(l.tokens, 0, 100)).toBe(1000);
  });
});

describe('LocalBuckets (fake clock)', () => {
  it('admits the burst, then one request per emission interval', () => {
    let now = 1_000_000;
    const b = new LocalBuckets(bucketLimitsOf(tier), now);
    const takeIfThere = () => {
      const short = b.shortfall(now, 10);
      if (!short) b.take(now, 10);
      return short;
    };
    for (let i = 0; i < 4; i++) expect(takeIfThere()).toBeNull();
    expect(takeIfThere()).toEqual({ waitMs: 1000, reason: 'requests' });
    now += 999;
    expect(takeIfThere()).not.toBeNull();
    now += 1;
    expect(takeIfThere()).toBeNull();
  });

  it('refuses on tokens with the wait until they refill', () => {
    const now = 0;
    const b = new LocalBuckets(bucketLimitsOf(tier), now, { requests: 4, tokens: 50 });
    expect(b.shortfall(now, 150)).toEqual({ waitMs: 1000, reason: 'tokens' });
  });

  it('gives back up to capacity and charges down to minus capacity', () => {
    const b = new LocalBuckets(bucketLimitsOf(tier), 0);
    b.adjust(0, 10, 10_000);
    expect(b.levels(0)).toEqual({ requests: 4, tokens: 6000 });
    b.adjust(0, 0, -20_000);
    expect(b.levels(0).tokens).toBe(-6000);
    expect(b.isFull(0)).toBe(false);
    expect(b.isFull(120_000)).toBe(true);
  });
});

describe('reservations', () => {
  it('reserves the prompt estimate plus max_tokens, or the default when absent', () => {
    expect(reservationFor(120.2, 256, 1024)).toEqual({ promptTokens: 121, completionTokens: 256 });
    expect(reservationFor(120, undefined, 1024)).toEqual({ promptTokens: 120, completionTokens: 1024 });
    expect(reservationFor(120, null, 1024)).toEqual({ promptTokens: 120, completionTokens: 1024 });
    expect(reservationFor(-4, 0, 64)).toEqual({ promptTokens: 0, completionTokens: 64 });
  });

  it('closes exactly once, whichever of settle and refund comes first', () => {
    const r = new Reservation('k', bucketLimitsOf(tier), bucketLimitsOf(tier), 10, 20, 'redis');
    expect(r.tokens).toBe(30);
    expect(r.close('settled')).toBe(true);
    expect(r.close('refunded')).toBe(false);
    expect(r.state).toBe('settled');
  });
});
