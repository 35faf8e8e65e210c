import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors.js';
import { abortError, CLIENT_CLOSED, countsAgainstUpstream, mapUpstreamError } from './failure.js';

const withCode = (code: string, message = 'irrelevant wording'): Error => Object.assign(new Error(message), { code });

describe('mapUpstreamError', () => {
  it('maps by code, never by message', () => {
    const table: Array<[string, string]> = [
      ['UND_ERR_CONNECT_TIMEOUT', 'upstream_connect_timeout'],
      ['UND_ERR_HEADERS_TIMEOUT', 'upstream_headers_timeout'],
      ['UND_ERR_BODY_TIMEOUT', 'upstream_idle_timeout'],
      ['ECONNREFUSED', 'upstream_unavailable'],
      ['ENOTFOUND', 'upstream_unavailable'],
      ['ECONNRESET', 'upstream_failed'],
      ['UND_ERR_SOCKET', 'upstream_failed'],
      ['HPE_INVALID_CONSTANT', 'upstream_bad_response'],
      ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'upstream_bad_response'],
      ['ERR_TLS_CERT_ALTNAME_INVALID', 'upstream_unavailable'],
      ['SOMETHING_NEW', 'upstream_failed'],
    ];
    for (const [code, mapped] of table) expect(mapUpstreamError(withCode(code, 'Connect Timeout Error')).code, code).toBe(mapped);
    expect(mapUpstreamError(new Error('ECONNREFUSED headers timeout')).code).toBe('upstream_failed');
    const g = new GatewayError('rate_limit_exceeded');
    expect(mapUpstreamError(g)).toBe(g);
  });

  it('abort reasons: GatewayError kept, TimeoutError is the total timeout', () => {
    expect(abortError(new GatewayError('rate_limit_exceeded')).code).toBe('rate_limit_exceeded');
    expect(abortError(new DOMException('t', 'TimeoutError')).code).toBe('upstream_total_timeout');
    const client = abortError(new DOMException('a', 'AbortError'));
    expect(client).toMatchObject({ code: 'client_closed_request', status: 499, message: CLIENT_CLOSED });
    expect(countsAgainstUpstream(client)).toBe(false);
    expect(countsAgainstUpstream(new GatewayError('upstream_idle_timeout'))).toBe(true);
  });
});
