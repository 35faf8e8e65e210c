import { describe, expect, it } from 'vitest';
import { clientKey, ClientRateLimiter } from './rate-limit.js';

describe('ClientRateLimiter', () => {
  it('allows the burst, then refuses with a Retry-After, and refills at the rate', () => {
    let now = 0;
    const l = new ClientRateLimiter({ ratePerSec: 2, burst: 3, now: () => now });
    expect([1, 2, 3].map(() => l.take('198.51.100.1').ok)).toEqual([true, true, true]);
    expect(l.take('198.51.100.1')).toEqual({ ok: false, retryAfterSec: 1 });
    expect(l.take('198.51.100.2').ok).toBe(true); // another client has its own bucket
    now = 500; // +1 token
    expect(l.take('198.51.100.1').ok).toBe(true);
    expect(l.take('198.51.100.1').ok).toBe(false);
  });

  it('buckets IPv6 clients by /64 and forgets the least recently seen client first', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::')).toBe('fe80:0:0:0::/64');
    const l = new ClientRateLimiter({ ratePerSec: 1, burst: 1, maxClients: 2, now: () => 0 });
    expect(l.take('2001:db8:1:2::1').ok).toBe(true);
    expect(l.take('2001:db8:1:2::2').ok).toBe(false);
    l.take('198.51.100.1');
    l.take('198.51.100.2');
    expect(l.size).toBe(2);
    expect(l.take('2001:db8:1:2::3').ok).toBe(true); // evicted, so it starts over
  });
});
