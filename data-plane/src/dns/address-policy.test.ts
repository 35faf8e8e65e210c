import { describe, expect, it } from 'vitest';
import { createAddressPolicy, parseCidr } from './address-policy.js';
import { embeddedIpv4 } from './embedded-ipv4.js';

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
    for (const a of ['1.1.1.1', '203.0.113.5', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])
      expect(strict.blocked(a), a).toBeNull();
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
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/', '::/129', '1.2.3.4/8/9'])
      expect(() => parseCidr(bad), bad).toThrow(/not an IP address or CIDR/);
    expect(parseCidr('fd00::/8')).toEqual({ network: 'fd00::', prefix: 8, family: 'ipv6' });
  });

  describe('IPv4 carried in IPv6 is judged as that IPv4', () => {
    it('NAT64 (64:ff9b::/96), 6to4 (2002::/16), IPv4-mapped and IPv4-compatible forms of guarded addresses', () => {
      const cases: Array<[string, string]> = [
        ['64:ff9b::a9fe:a9fe', 'metadata'], // 169.254.169.254
        ['64:ff9b::169.254.169.254', 'metadata'],
        ['64:ff9b::7f00:1', 'loopback'],
        ['64:ff9b::a00:1', 'private'], // 10.0.0.1
        ['64:ff9b::c0a8:101', 'private'], // 192.168.1.1
        ['64:ff9b::6464:6464', 'cgnat'], // 100.100.100.100
        ['64:ff9b::6464:64c8', 'metadata'], // 100.100.100.200 (Alibaba Cloud)
        ['2002:7f00:0001::', 'loopback'], // 127.0.0.1
        ['2002:7f00:1::1', 'loopback'],
        ['2002:a9fe:a9fe::1', 'metadata'],
        ['2002:ac10:0001:1::1', 'private'], // 172.16.0.1
        ['::ffff:7f00:1', 'loopback'],
        ['::ffff:169.254.170.2', 'metadata'],
        ['::7f00:1', 'loopback'], // IPv4-compatible 127.0.0.1
        ['::a9fe:a9fe', 'metadata'],
        ['::808:808', 'reserved'], // IPv4-compatible is deprecated even for a public IPv4
      ];
      for (const [address, range] of cases) expect(strict.blocked(address), address).toBe(range);
    });

    it('Teredo (2001::/32): the obfuscated client address and the server address', () => {
      // Client 127.0.0.1 (each bit inverted: 80ff:fffe), server 203.0.113.1.
      expect(strict.blocked('2001:0:cb00:7101:8000:ffff:80ff:fffe')).toBe('loopback');
      // Client 169.254.169.254 → 5601:5601.
      expect(strict.blocked('2001:0:cb00:7101::5601:5601')).toBe('metadata');
      // Server in private space, public client.
      expect(strict.blocked('2001:0:a00:1:8000:63bf:3fff:fdd2')).toBe('private');
      // RFC 4380 §4's example decodes as documented: server 65.54.227.120, client 192.0.2.45.
      expect(embeddedIpv4('2001:0:4136:e378:8000:63bf:3fff:fdd2')).toEqual({ form: 'teredo', ipv4: ['192.0.2.45', '65.54.227.120'] });
    });

    it('local-use NAT64 (64:ff9b:1::/48) is private space, and metadata in any RFC 6052 layout', () => {
      expect(strict.blocked('64:ff9b:1::808:808')).toBe('private');
      expect(strict.blocked('64:ff9b:1::a9fe:a9fe')).toBe('metadata'); // /96 layout
      expect(strict.blocked('64:ff9b:1:a9fe:a9:fe00::')).toBe('metadata'); // /48 layout (u octet skipped)
      const lax = createAddressPolicy({ allowPrivate: true });
      expect(lax.blocked('64:ff9b:1::808:808')).toBeNull();
      expect(lax.blocked('64:ff9b:1::a9fe:a9fe')).toBe('metadata');
    });

    it('lets the same forms of public addresses through', () => {
      // Teredo: server 65.54.227.120, client 8.8.8.8 (f7f7:f7f7 inverted).
      for (const a of [
        '64:ff9b::808:808',
        '64:ff9b::1.1.1.1',
        '2002:0808:0808::1',
        '2002:cb00:7101::',
        '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
        '::ffff:1.1.1.1',
      ]) {
        expect(strict.blocked(a), a).toBeNull();
      }
      // :: and ::1 keep their own classes; ordinary IPv6 is untouched.
      expect(strict.blocked('::')).toBe('unspecified');
      expect(strict.blocked('::1')).toBe('loopback');
      expect(strict.blocked('2606:4700:4700::1111')).toBeNull();
    });

    it('DNS_ALLOW_PRIVATE and the allow-list apply to the carried IPv4; metadata stays closed', () => {
      const lax = createAddressPolicy({ allowPrivate: true });
      expect(lax.blocked('64:ff9b::a00:1')).toBeNull();
      expect(lax.blocked('2002:7f00:1::')).toBeNull();
      expect(lax.blocked('::7f00:1')).toBeNull();
      expect(lax.blocked('64:ff9b::a9fe:a9fe')).toBe('metadata');
      expect(lax.blocked('2002:a9fe:a9fe::')).toBe('metadata');
      expect(lax.blocked('2001:0:cb00:7101::5601:5601')).toBe('metadata');

      const listed = createAddressPolicy({ allow: ['10.20.0.0/16', '64:ff9b::a15:0/112'] });
      expect(listed.blocked('64:ff9b::a14:1')).toBeNull(); // 10.20.0.1, allowed as IPv4
      expect(listed.blocked('2002:a14:1::')).toBeNull();
      expect(listed.blocked('64:ff9b::a15:1')).toBeNull(); // 10.21.0.1, allowed as IPv6
      expect(listed.blocked('64:ff9b::a16:1')).toBe('private'); // 10.22.0.1
    });
  });
});
