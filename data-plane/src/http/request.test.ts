import { describe, expect, it } from 'vitest';
import { framingError, normaliseAddress } from './request.js';

describe('normaliseAddress', () => {
  it('keeps IPv4 and gives IPv6 in RFC 5952 form', () => {
    expect(normaliseAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(normaliseAddress('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(normaliseAddress('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('::1');
  });

  it('turns IPv4-mapped IPv6 (a dual-stack listener) into dotted IPv4', () => {
    expect(normaliseAddress('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('127.0.0.1');
    expect(normaliseAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
  });

  it('passes through what it cannot parse', () => {
    expect(normaliseAddress('')).toBe('');
    expect(normaliseAddress('not:an:address')).toBe('not:an:address');
  });
});

describe('framingError (RFC 9112 §3.2, §6)', () => {
  const h = (entries: Array<[string, string]>) => new Map(entries);
  it('accepts one length, one chunked coding, or neither', () => {
    expect(framingError(h([['content-length', '12']]), false)).toBeNull();
    expect(framingError(h([['transfer-encoding', 'chunked']]), false)).toBeNull();
    expect(framingError(h([['transfer-encoding', ' Chunked ']]), false)).toBeNull();
    expect(framingError(h([]), false)).toBeNull();
  });
  it('refuses conflicting lengths, length with chunked, other codings and non-numeric lengths', () => {
    expect(framingError(h([['content-length', '5']]), true)).toMatch(/two different Content-Length/);
    expect(
      framingError(
        h([
          ['content-length', '5'],
          ['transfer-encoding', 'chunked'],
        ]),
        false,
      ),
    ).toMatch(/both/);
    expect(framingError(h([['transfer-encoding', 'gzip']]), false)).toMatch(/other than chunked/);
    expect(framingError(h([['transfer-encoding', 'gzip, chunked']]), false)).toMatch(/other than chunked/);
    expect(framingError(h([['transfer-encoding', 'chunked, chunked']]), false)).toMatch(/other than chunked/);
    expect(framingError(h([['content-length', '5, 5']]), false)).toMatch(/not a number/);
    expect(framingError(h([['content-length', '+5']]), false)).toMatch(/not a number/);
    expect(framingError(h([['host', 'a.example, b.example']]), false)).toMatch(/more than one Host/);
    for (const te of ['chunked, gzip', 'identity', ''])
      expect(framingError(h([['transfer-encoding', te]]), false), te).toMatch(/other than chunked/);
  });
});
