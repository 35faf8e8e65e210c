import { describe, expect, it } from 'vitest';
import { createAddressPolicy, parseCidr } from './address-policy.js';

describe('address policy (SSRF guard)', () => {
  const strict = createAddressPolicy();

  it('blocks loopback, private, link-local, CGNAT, unspecified and metadata, v4 and v6', () => {
    const cases: Array<[string, string]> = [
      ['127.0.0.1', 'loopback'],
      ['10.1.2.3', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.0.1', 'private'],
      ['100.64.0.1', 'cgnat'],
      ['169.254.1.1', 'link-local'],
      ['169.254.169.254', 'metadata'],
      ['100.100.100.200', 'metadata'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['::1', 'loopback'],
      ['fd12:3456::1', 'private'],
      ['fc00::1', 'private'],
      ['fd00:ec2::254', 'metadata'],
      ['fe80::1', 'link-local'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:a9fe:a9fe', 'metadata'],
      ['224.0.0.1', 'multicast'],
      ['255.255.255.255', 'reserved'],
      ['not-an-ip', 'reserved'],
    ];
    for (const [address, range] of cases) expect(strict.blocked(address), address).toBe(range);
  });

  it('lets public addresses through', () => {
    for (const a of ['1.1.1.1', '203.0.113.5', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) expect(strict.blocked(a), a).toBeNull();
  });

  it('allowPrivate opens private space but never metadata; an allow-list entry opens anything it covers', () => {
    const lax = createAddressPolicy({ allowPrivate: true });
    expect(lax.blocked('10.0.0.1')).toBeNull();
    expect(lax.blocked('127.0.0.1')).toBeNull();
    expect(lax.blocked('fd00::1')).toBeNull();
    expect(lax.blocked('169.254.169.254')).toBe('metadata');
    expect(lax.blocked('fd00:ec2::254')).toBe('metadata');

    const listed = createAddressPolicy({ allow: ['10.20.0.0/16', '169.254.169.254', 'fd00::/8'] });
    expect(listed.blocked('10.20.9.9')).toBeNull();
    expect(listed.blocked('10.21.0.1')).toBe('private');
    expect(listed.blocked('169.254.169.254')).toBeNull();
    expect(listed.blocked('fd00:ec2::254')).toBeNull();
    expect(listed.blocked('fc00::1')).toBe('private');
  });

  it('rejects malformed allow-list entries at construction', () => {
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/', '::/129', '1.2.3.4/8/9']) expect(() => parseCidr(bad), bad).toThrow(/not an IP address or CIDR/);
    expect(parseCidr('fd00::/8')).toEqual({ network: 'fd00::', prefix: 8, family: 'ipv6' });
  });
});
