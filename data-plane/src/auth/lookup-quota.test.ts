import { describe, expect, it } from 'vitest';
import { createLookupQuota } from './lookup-quota.js';

describe('lookup quota', () => {
  it('allows the burst, then one lookup per 1/rate, with the wait in whole seconds', () => {
    let t = 0;
    const q = createLookupQuota({ perSecond: 0.5, burst: 3, now: () => t });
    expect([q.take('a'), q.take('a'), q.take('a')]).toEqual([0, 0, 0]);
    expect(q.take('a')).toBe(2);
    t += 1999;
    expect(q.take('a')).toBe(1);
    t += 1;
    expect(q.take('a')).toBe(0);
    expect(q.take('b')).toBe(0);
  });

  it('never holds more than the burst after a long pause', () => {
    let t = 0;
    const q = createLookupQuota({ perSecond: 10, burst: 2, now: () => t });
    q.take('a');
    t += 3_600_000;
    expect([q.take('a'), q.take('a'), q.take('a')]).toEqual([0, 0, 1]);
  });

  it('tracks at most maxClients, forgetting the least recently used', () => {
    const q = createLookupQuota({ perSecond: 1, burst: 1, maxClients: 2, now: () => 0 });
    q.take('a');
    q.take('b');
    q.take('a');
    q.take('c');
    expect(q.trackedClients).toBe(2);
    // 'a' was used after 'b', so 'b' went; 'a' is still spent.
    expect(q.take('a')).toBeGreaterThan(0);
    expect(q.take('b')).toBe(0);
  });
});
