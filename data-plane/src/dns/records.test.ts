import { describe, expect, it } from 'vitest';
import { addressesIn, canonicalName, capTtl } from './records.js';

describe('canonicalName', () => {
  it('lower-cases, drops the trailing dot and refuses what is not a host name', () => {
    expect(canonicalName('Svc.Example.')).toBe('svc.example');
    expect(canonicalName('_dmarc.example')).toBe('_dmarc.example');
    expect(canonicalName('*.example')).toBe('*.example');
    expect(canonicalName('a')).toBe('a');
    for (const bad of [
      '',
      '.',
      'a..b',
      '-a.example',
      'a-.example',
      'sp ace.example',
      'x'.repeat(64) + '.example',
      `${'a.'.repeat(127)}a`,
      'a*.example',
      'ex\u00e4mple.com',
    ]) {
      expect(canonicalName(bad), bad).toBeNull();
    }
  });
});

describe('addressesIn', () => {
  it('follows the CNAME chain from the question name and ignores unrelated records', () => {
    const answers = [
      { name: 'www.example', type: 'CNAME' as const, ttl: 300, data: 'edge.cdn.example' },
      { name: 'edge.cdn.example', type: 'CNAME' as const, ttl: 60, data: 'POP1.cdn.example' },
      { name: 'pop1.cdn.example', type: 'A' as const, ttl: 20, data: '203.0.113.1' },
      { name: 'unrelated.example', type: 'A' as const, ttl: 20, data: '203.0.113.99' },
      { name: 'pop1.cdn.example', type: 'AAAA' as const, ttl: 20, data: '2001:db8::1' },
    ];
    expect(addressesIn(answers, 'WWW.example', 'A')).toEqual([{ address: '203.0.113.1', ttl: 20 }]);
    expect(addressesIn(answers, 'www.example', 'AAAA')).toEqual([{ address: '2001:db8::1', ttl: 20 }]);
    // A CNAME loop terminates.
    const loop = [
      { name: 'a.example', type: 'CNAME' as const, ttl: 1, data: 'b.example' },
      { name: 'b.example', type: 'CNAME' as const, ttl: 1, data: 'a.example' },
    ];
    expect(addressesIn(loop, 'a.example', 'A')).toEqual([]);
  });

  it('capTtl copies and caps without going negative', () => {
    const src = [{ name: 'x', type: 'A' as const, ttl: 300, data: '203.0.113.1' }];
    const out = capTtl(src, 42);
    expect(out[0]!.ttl).toBe(42);
    expect(src[0]!.ttl).toBe(300);
    expect(capTtl(src, -5)[0]!.ttl).toBe(0);
  });
});
