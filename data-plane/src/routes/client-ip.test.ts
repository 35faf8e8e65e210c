import { describe, expect, it } from 'vitest';
import type { RequestSnapshot } from '../http/types.js';
import { clientAddress } from './client-ip.js';

const req = (remoteAddress: string, xff?: string): RequestSnapshot => ({
  method: 'GET',
  path: '/',
  query: '',
  headers: new Map(xff === undefined ? [] : [['x-forwarded-for', xff]]),
  remoteAddress,
  receivedAt: 0,
});

describe('client address behind trusted proxies', () => {
  const trusted = new Set(['10.0.0.2']);
  it('ignores X-Forwarded-For from an untrusted peer', () => {
    expect(clientAddress(req('203.0.113.9', '1.2.3.4'), trusted)).toBe('203.0.113.9');
  });
  it('takes the rightmost untrusted hop from a trusted proxy', () => {
    expect(clientAddress(req('10.0.0.2', 'spoofed, 198.51.100.7'), trusted)).toBe('198.51.100.7');
  });
  it('falls back to the peer when the header is absent or all hops are trusted', () => {
    expect(clientAddress(req('10.0.0.2'), trusted)).toBe('10.0.0.2');
    expect(clientAddress(req('10.0.0.2', '10.0.0.2'), trusted)).toBe('10.0.0.2');
  });
});
