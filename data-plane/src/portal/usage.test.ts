import { describe, expect, it } from 'vitest';
import { PortalError } from './errors.js';
import { MAX_BUCKETS, parseUsageQuery } from './usage.js';

const NOW = Date.UTC(2025, 0, 15, 12, 30, 45);
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof PortalError ? e.code : 'other';
  }
  return 'none';
};

describe('parseUsageQuery', () => {
  it('defaults to the last hour of minute buckets, snapped to bucket edges', () => {
    const q = parseUsageQuery('', NOW);
    expect(q).toMatchObject({ window: 'm1', buckets: 61, keyId: null });
    expect(q.since % 60_000).toBe(0);
    expect(q.until + 1).toBe(q.since + 61 * 60_000);
    expect(q.until).toBeGreaterThanOrEqual(NOW);
  });

  it('accepts unix ms and ISO 8601, and clamps until to now', () => {
    const q = parseUsageQuery(`window=h1&since=${encodeURIComponent('2025-01-14T12:00:00Z')}&until=${NOW + 10 * 3600_000}`, NOW);
    expect(q).toMatchObject({ window: 'h1', since: Date.UTC(2025, 0, 14, 12), buckets: 25 });
    expect(parseUsageQuery(`since=${NOW - 120_000}`, NOW).buckets).toBe(3);
  });

  it('bounds the range per window', () => {
    expect(parseUsageQuery(`since=${NOW - (MAX_BUCKETS.m1 - 1) * 60_000}`, NOW).buckets).toBe(MAX_BUCKETS.m1);
    expect(code(() => parseUsageQuery(`since=${NOW - MAX_BUCKETS.m1 * 60_000}`, NOW))).toBe('bad_request');
    expect(code(() => parseUsageQuery(`window=h1&since=0`, NOW))).toBe('bad_request');
  });

  it('refuses unknown windows, bad times and reversed ranges', () => {
    expect(code(() => parseUsageQuery('window=s10', NOW))).toBe('bad_request');
    expect(code(() => parseUsageQuery('since=yesterday', NOW))).toBe('bad_request');
    expect(code(() => parseUsageQuery(`since=${NOW - 1000}&until=${NOW - 60_000}`, NOW))).toBe('bad_request');
    expect(code(() => parseUsageQuery("key=1' OR '1'='1", NOW))).toBe('not_found');
  });
});
