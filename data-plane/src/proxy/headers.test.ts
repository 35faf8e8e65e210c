import { describe, expect, it } from 'vitest';
import { bearer, filterRequestHeaders, filterResponseHeaders, withCredential } from './headers.js';

const pairs = (flat: string[]): Array<[string, string]> => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
};

describe('request headers', () => {
  const client = new Map([
    ['host', 'gw'],
    ['authorization', 'Bearer client'],
    ['x-api-key', 'client'],
    ['cookie', 'a=b'],
    ['connection', 'Keep-Alive , X-Named,,'],
    ['x-named', '1'],
    ['keep-alive', 'timeout=5'],
    ['proxy-connection', 'keep-alive'],
    ['te', 'trailers'],
    ['trailer', 'x'],
    ['transfer-encoding', 'chunked'],
    ['upgrade', 'websocket'],
    ['proxy-authorization', 'Basic x'],
    ['content-length', '10'],
    ['expect', '100-continue'],
    ['accept-encoding', 'gzip'],
    ['content-type', 'application/json'],
    ['user-agent', 'OpenAI/Python 1.0'],
    ['x-request-id', 'from-client'],
  ]);

  it('drops hop-by-hop, Connection-named, credentials, Host and framing; keeps the rest', () => {
    expect(pairs(filterRequestHeaders(client))).toEqual([
      ['content-type', 'application/json'],
      ['user-agent', 'OpenAI/Python 1.0'],
      ['accept-encoding', 'identity'],
      ['x-request-id', 'from-client'],
    ]);
  });

  it("states the client hop itself: the client's forwarding claims never pass, X-Forwarded-For is the gateway's", () => {
    const h = new Map([
      ['x-forwarded-for', '198.51.100.1, 127.0.0.1'],
      ['forwarded', 'for=127.0.0.1;proto=https;host=internal'],
      ['x-real-ip', '127.0.0.1'],
      ['x-forwarded-host', 'internal.example'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-port', '80'],
      ['x-forwarded-prefix', '/admin'],
      ['true-client-ip', '127.0.0.1'],
      ['x-original-url', '/api/delete'],
      ['x-http-method-override', 'DELETE'],
      ['x-forwardedness', 'kept: not in the family'],
    ]);
    expect(pairs(filterRequestHeaders(h, { forwardedFor: '203.0.113.9', requestId: 'r1' }))).toEqual([
      ['x-forwardedness', 'kept: not in the family'],
      ['accept-encoding', 'identity'],
      ['x-forwarded-for', '203.0.113.9'],
      ['x-forwarded-proto', 'https'],
      ['x-request-id', 'r1'],
    ]);
    // Behind trusted proxies the caller passes the resolved chain; it is sent as given.
    expect(pairs(filterRequestHeaders(h, { forwardedFor: '198.51.100.1, 10.0.0.2' }))).toContainEqual([
      'x-forwarded-for',
      '198.51.100.1, 10.0.0.2',
    ]);
  });

  it('injects the upstream credential without mutating the shared list', () => {
    const base = filterRequestHeaders(client);
    const withAuth = withCredential(base, bearer('sk-up'));
    expect(pairs(withAuth)).toContainEqual(['authorization', 'Bearer sk-up']);
    expect(base).not.toContain('authorization');
    expect(withCredential(base, bearer(null))).toEqual(base);
  });
});

describe('response headers', () => {
  it('drops hop-by-hop, Connection-named, Set-Cookie, Alt-Svc and framing; reports the length', () => {
    const out = filterResponseHeaders({
      connection: 'close, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'content-length': '42',
      'set-cookie': ['a=1', 'b=2'],
      'alt-svc': 'h3=":443"',
      'proxy-authenticate': 'Basic',
      'content-type': 'application/json',
      'x-multi': ['origin', 'accept'],
    });
    expect(out.headers).toEqual([
      ['content-type', 'application/json'],
      ['x-multi', 'origin'],
      ['x-multi', 'accept'],
    ]);
    expect(out.contentLength).toBe(42);
  });

  it('content length is null when absent or not a number', () => {
    expect(filterResponseHeaders({}).contentLength).toBeNull();
    expect(filterResponseHeaders({ 'content-length': '1e3' }).contentLength).toBeNull();
  });
});
