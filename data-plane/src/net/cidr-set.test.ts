import { describe, expect, it } from 'vitest';
import { createCidrSet, isCidr } from './cidr-set.js';

describe('createCidrSet', () => {
  it('matches exact addresses and IPv4/IPv6 ranges', () => {
    const set = createCidrSet(['10.0.0.2', '172.16.0.0/12', 'fd00::/8', '2001:db8::7']);
    expect(set.size).toBe(4);
    expect(set.has('10.0.0.2')).toBe(true);
    expect(set.has('10.0.0.3')).toBe(false);
    expect(set.has('172.31.255.1')).toBe(true);
    expect(set.has('172.32.0.1')).toBe(false);
    expect(set.has('fd12:3456::1')).toBe(true);
    expect(set.has('fe80::1')).toBe(false);
    // Any spelling of the same IPv6 address.
    expect(set.has('2001:0db8:0000:0000:0000:0000:0000:0007')).toBe(true);
  });

  it('matches IPv4-mapped IPv6 against IPv4 ranges', () => {
    expect(createCidrSet(['10.0.0.0/8']).has('::ffff:10.9.8.7')).toBe(true);
  });

  it('is empty without entries and never matches what is not an address', () => {
    expect(createCidrSet([]).has('10.0.0.2')).toBe(false);
    const set = createCidrSet(['0.0.0.0/0', '::/0']);
    expect(set.has('garbage')).toBe(false);
    expect(set.has('')).toBe(false);
    expect(set.has('10.0.0.1:8080')).toBe(false);
  });

  it('refuses entries that are not addresses or CIDRs', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0.0/', '10.0.0/8', '1.2.3.4/8/9', '']) {
      expect(isCidr(bad), bad).toBe(false);
      expect(() => createCidrSet([bad]), bad).toThrow(/not an IP address or CIDR/);
    }
    expect(isCidr('10.0.0.0/8')).toBe(true);
    expect(isCidr('::1')).toBe(true);
  });
});
