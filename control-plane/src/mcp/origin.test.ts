import { describe, expect, it } from 'vitest';
import { createOriginPolicy, hostnameOf } from './origin.js';

describe('Host and Origin policy (DNS-rebinding protection)', () => {
  const policy = createOriginPolicy({
    listenHost: '127.0.0.1',
    allowedHosts: ['mcp.example.com'],
    allowedOrigins: ['https://console.example.com'],
  });
  it('accepts loopback names on any port and the listed hosts; nothing else', () => {
    for (const h of ['127.0.0.1:8000', 'localhost:8000', 'LOCALHOST', '[::1]:8000', 'mcp.example.com', 'mcp.example.com:443'])
      expect(policy.hostAllowed(h)).toBe(true);
    for (const h of [
      undefined,
      '',
      'evil.example:8000',
      'localhost.evil.example',
      '127.0.0.1.nip.io:8000',
      '[::2]:8000',
      'localhost:80:80',
    ])
      expect(policy.hostAllowed(h)).toBe(false);
  });
  it('accepts no Origin (not a browser), loopback origins and the listed ones', () => {
    for (const o of [undefined, 'http://localhost:6274', 'http://127.0.0.1:3000', 'http://[::1]:6274', 'https://console.example.com'])
      expect(policy.originAllowed(o)).toBe(true);
    for (const o of [
      'null',
      'https://evil.example',
      'http://localhost.evil.example',
      'https://console.example.com.evil.example',
      'file://',
      'chrome-extension://abc',
    ])
      expect(policy.originAllowed(o)).toBe(false);
  });
  it('adds a concrete listen address, never a wildcard', () => {
    expect(createOriginPolicy({ listenHost: '10.1.2.3', allowedHosts: [], allowedOrigins: [] }).hostAllowed('10.1.2.3:8000')).toBe(true);
    expect(createOriginPolicy({ listenHost: '0.0.0.0', allowedHosts: [], allowedOrigins: [] }).hostAllowed('0.0.0.0:8000')).toBe(false);
    expect(createOriginPolicy({ listenHost: '::1', allowedHosts: [], allowedOrigins: [] }).hostAllowed('[::1]:8000')).toBe(true);
    expect(hostnameOf('[2001:db8::1]:8000')).toBe('[2001:db8::1]');
  });
});
