import { describe, expect, it } from 'vitest';
import { ipCountingKey } from './ip-key.js';

describe('ipCountingKey', () => {
  it('keeps IPv4 exact', () => {
    expect(ipCountingKey('203.0.113.7')).toBe('203.0.113.7');
    expect(ipCountingKey('203.0.113.8')).toBe('203.0.113.8');
  });

  it('groups IPv6 by /64, whatever the spelling', () => {
    const key = '2001:db8:aa:1::/64';
    for (const a of [
      '2001:db8:aa:1::1',
      '2001:db8:aa:1:ffff:ffff:ffff:fffe',
      '2001:0DB8:00AA:0001:0000:0000:0000:0001',
      '2001:db8:aa:1:1234:5678:9abc:def0',
      'fe80::1%eth0'.replace('fe80::', '2001:db8:aa:1::'),
    ]) {
      expect(ipCountingKey(a), a).toBe(key);
    }
    expect(ipCountingKey('2001:db8:aa:2::1')).toBe('2001:db8:aa:2::/64');
    expect(ipCountingKey('::1')).toBe('0:0:0:0::/64');
    expect(ipCountingKey('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(ipCountingKey('::ffff:1:2:3:4')).toBe('0:0:0:ffff::/64');
  });

  it('counts an IPv4-mapped address as the IPv4 client, in either spelling', () => {
    expect(ipCountingKey('::ffff:198.51.100.4')).toBe('198.51.100.4');
    expect(ipCountingKey('::ffff:c633:6404')).toBe('198.51.100.4');
  });

  it('counts unparsable text as itself, bounded', () => {
    expect(ipCountingKey('unknown')).toBe('unknown');
    expect(ipCountingKey('x'.repeat(200))).toHaveLength(64);
  });
});
