import { describe, expect, it } from 'vitest';
import { checkCsrf } from './csrf.js';

const req = (method: string, headers: Record<string, string> = {}) => ({ method, headers: new Map(Object.entries(headers)) });

describe('checkCsrf', () => {
  it('lets safe methods through whatever the credential', () => {
    expect(checkCsrf(req('GET'), 'cookie')).toBe('ok');
    expect(checkCsrf(req('HEAD', { 'sec-fetch-site': 'cross-site' }), 'cookie')).toBe('ok');
  });

  it('requires the custom header for cookie-authenticated state changes', () => {
    expect(checkCsrf(req('POST'), 'cookie')).toBe('missing_header');
    expect(checkCsrf(req('DELETE', { 'x-fluxgate-csrf': '0' }), 'cookie')).toBe('missing_header');
    expect(checkCsrf(req('POST', { 'x-fluxgate-csrf': '1' }), 'cookie')).toBe('ok');
  });

  it('exempts Bearer sessions and unauthenticated routes from the header', () => {
    expect(checkCsrf(req('POST'), 'bearer')).toBe('ok');
    expect(checkCsrf(req('POST'), null)).toBe('ok');
  });

  it('refuses state changes a browser labels cross-site, even with the header or a bearer token', () => {
    expect(checkCsrf(req('POST', { 'sec-fetch-site': 'cross-site', 'x-fluxgate-csrf': '1' }), 'cookie')).toBe('cross_site');
    expect(checkCsrf(req('POST', { 'sec-fetch-site': 'cross-site' }), null)).toBe('cross_site');
    expect(checkCsrf(req('POST', { 'sec-fetch-site': 'same-origin' }), null)).toBe('ok');
  });
});
