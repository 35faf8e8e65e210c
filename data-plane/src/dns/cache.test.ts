import { describe, expect, it } from 'vitest';
import { cacheTtl, DEFAULT_CACHE, DnsCache } from './cache.js';
import type { RecordSet } from './records.js';

const a = (ttl: number): RecordSet => ({
  rcode: 'NOERROR',
  answers: [{ name: 'x.example', type: 'A', ttl, data: '203.0.113.1' }],
  authority: [],
});
const soa = (ttl: number, minimum: number) => ({ name: 'example', type: 'SOA', ttl, data: { mname: 'ns', rname: 'h', minimum } }) as const;
const nx = (ttl: number, minimum: number): RecordSet => ({ rcode: 'NXDOMAIN', answers: [], authority: [soa(ttl, minimum)] });

describe('cacheTtl', () => {
  const o = { ...DEFAULT_CACHE, minTtlSec: 5, maxTtlSec: 100, negativeMinTtlSec: 2, negativeMaxTtlSec: 50 };
  it('positive: smallest answer TTL, clamped', () => {
    expect(cacheTtl(a(30), 'A', o)).toBe(30);
    expect(cacheTtl(a(0), 'A', o)).toBe(5);
    expect(cacheTtl(a(9999), 'A', o)).toBe(100);
  });
  it('negative: min(SOA TTL, MINIMUM) clamped; CNAME-then-NODATA counts the chain; no SOA → not cached', () => {
    expect(cacheTtl(nx(60, 20), 'A', o)).toBe(20);
    expect(cacheTtl(nx(10, 900), 'A', o)).toBe(10);
    expect(cacheTtl(nx(1000, 1000), 'A', o)).toBe(50);
    expect(cacheTtl(nx(0, 0), 'A', o)).toBe(2);
    const chainNodata: RecordSet = {
      rcode: 'NOERROR',
      answers: [{ name: 'x', type: 'CNAME', ttl: 7, data: 'y' }],
      authority: [soa(60, 60)],
    };
    expect(cacheTtl(chainNodata, 'AAAA', o)).toBe(7);
    expect(cacheTtl({ rcode: 'NXDOMAIN', answers: [], authority: [] }, 'A', o)).toBeNull();
  });
});

describe('DnsCache', () => {
  it('serves fresh, then stale with the stale TTL (refresh due), then forgets after maxStale', () => {
    let now = 0;
    const c = new DnsCache({ staleTtlSec: 30, maxStaleSec: 100, failureRecheckSec: 10 }, () => now);
    c.put('k', a(60), 60, 50);
    now = 59_500;
    expect(c.get('k')).toMatchObject({ stale: false, ttl: 1, refresh: false });
    now = 60_000;
    expect(c.get('k')).toMatchObject({ stale: true, ttl: 30, refresh: true });
    c.refreshFailed('k');
    now = 69_000;
    expect(c.get('k')).toMatchObject({ stale: true, refresh: false });
    now = 70_000;
    expect(c.get('k')).toMatchObject({ stale: true, refresh: true });
    now = 160_000;
    expect(c.get('k')).toBeNull();
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
  });

  it('is bounded by entries and by bytes, evicting the least recently used', () => {
    const c = new DnsCache({ maxEntries: 3, maxBytes: 1000 }, () => 0);
    c.put('a', a(60), 60, 100);
    c.put('b', a(60), 60, 100);
    c.put('c', a(60), 60, 100);
    c.get('a'); // a is now the most recent
    c.put('d', a(60), 60, 100);
    expect([c.get('a'), c.get('b'), c.get('c'), c.get('d')].map((h) => h !== null)).toEqual([true, false, true, true]);
    c.put('big', a(60), 60, 900);
    expect(c.bytes).toBeLessThanOrEqual(1000);
    expect(c.get('big')).not.toBeNull();
    c.put('huge', a(60), 60, 5000);
    expect(c.get('huge')).toBeNull();
    // Replacing an entry does not double-count its bytes.
    const d = new DnsCache({}, () => 0);
    d.put('x', a(60), 60, 10);
    d.put('x', a(60), 60, 20);
    expect(d.bytes).toBe(20);
    expect(d.size).toBe(1);
  });
});
