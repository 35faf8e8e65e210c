import { describe, expect, it } from 'vitest';
import type { RequestSnapshot } from '../http/types.js';
import { createCidrSet } from '../net/cidr-set.js';
import { clientAddress, resolveClient } from './client-ip.js';

const req = (remoteAddress: string, xff?: string): RequestSnapshot => ({
  method: 'GET',
  path: '/',
  query: '',
  headers: new Map(xff === undefined ? [] : [['x-forwarded-for', xff]]),
  remoteAddress,
  receivedAt: 0,
});

describe('client address behind trusted proxies', () => {
  const trusted = createCidrSet(['10.0.0.2']);
  it('ignores X-Forwarded-For from an untrusted peer', () => {
    expect(resolveClient(req('203.0.113.9', '1.2.3.4'), trusted)).toEqual({ client: '203.0.113.9', forwardedFor: undefined });
  });
  it('takes the rightmost untrusted hop from a trusted proxy', () => {
    expect(resolveClient(req('10.0.0.2', 'spoofed, 198.51.100.7'), trusted)).toEqual({
      client: '198.51.100.7',
      forwardedFor: '198.51.100.7, 10.0.0.2',
    });
  });
  it('falls back to the peer when the header is absent, and to the leftmost hop when all are trusted', () => {
    expect(clientAddress(req('10.0.0.2'), trusted)).toBe('10.0.0.2');
    expect(resolveClient(req('10.0.0.2', '10.0.0.2'), trusted)).toEqual({ client: '10.0.0.2', forwardedFor: '10.0.0.2, 10.0.0.2' });
    expect(clientAddress(req('10.0.0.2', ' , '), trusted)).toBe('10.0.0.2');
  });
});

describe('TRUSTED_PROXIES with CIDRs', () => {
  const trusted = createCidrSet(['10.0.0.0/8', 'fd00::/8']);
  it('trusts every address in the ranges, IPv4 and IPv6, and keeps the trusted chain after the client', () => {
    expect(resolveClient(req('10.1.2.3', '6.6.6.6, 198.51.100.7, 10.9.9.9'), trusted)).toEqual({
      client: '198.51.100.7',
      forwardedFor: '198.51.100.7, 10.9.9.9, 10.1.2.3',
    });
    expect(resolveClient(req('fd00::2', '2001:db8::7, fd12::1'), trusted)).toEqual({
      client: '2001:db8::7',
      forwardedFor: '2001:db8::7, fd12::1, fd00::2',
    });
    expect(clientAddress(req('11.0.0.1', '198.51.100.7'), trusted)).toBe('11.0.0.1');
  });
  it('stops at a hop that is not an address (a proxy never writes one): the client is the trusted hop right of it', () => {
    expect(resolveClient(req('10.0.0.2', '198.51.100.7, <script>, 10.0.0.5'), trusted)).toEqual({
      client: '10.0.0.5',
      forwardedFor: '10.0.0.5, 10.0.0.2',
    });
    expect(resolveClient(req('10.0.0.2', 'unknown'), trusted)).toEqual({ client: '10.0.0.2', forwardedFor: undefined });
  });
});
