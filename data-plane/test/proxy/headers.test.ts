import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstreamPool, type ManagedUpstreamPool } from '../../src/proxy/pool.js';
import { parseUpstreamsJson } from '../../src/proxy/upstreams.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { forward, header } from './helpers.js';

describe('header filtering on the wire', () => {
  let mock: MockUpstream;
  let pool: ManagedUpstreamPool;

  beforeAll(async () => {
    mock = await startMockUpstream();
    // A base path: the client's path is appended to it.
    pool = createUpstreamPool(parseUpstreamsJson([{ name: 'up', url: `${mock.url}/base/`, credential: 'upstream-secret' }]), {
      probe: false,
    });
  });
  afterAll(async () => {
    await pool.close();
    await mock.close();
  });

  it('the client credential never reaches the upstream, the injected one does; hop-by-hop fields stay behind', async () => {
    const headers = new Map([
      ['host', 'gateway.example'],
      ['authorization', 'Bearer fg_client_key'],
      ['x-api-key', 'fg_client_key'],
      ['cookie', 'fg_session=abc'],
      ['connection', 'keep-alive, x-per-hop'],
      ['x-per-hop', 'secret-hop'],
      ['keep-alive', 'timeout=5'],
      ['te', 'trailers'],
      ['trailer', 'x-trailer'],
      ['proxy-authorization', 'Basic cHJveHk6cHc='],
      ['proxy-connection', 'keep-alive'],
      ['content-length', '999'],
      ['expect', '100-continue'],
      ['accept-encoding', 'gzip, br'],
      ['x-forwarded-for', '203.0.113.9'],
      ['content-type', 'application/vnd.custom+json'],
      ['x-custom', 'kept'],
    ]);
    const body = Buffer.from('{"hello":"world"}');
    const out = await forward(pool, {
      method: 'PATCH',
      path: '/echo/things',
      query: 'a=1&b=%20x&a=2',
      headers,
      body,
      model: null,
      remoteAddress: '10.0.0.7',
      requestId: 'req-123',
    }).done;
    expect(out.error).toBeNull();
    const seen = mock.requests[0];
    expect(seen?.method).toBe('PATCH');
    expect(seen?.path).toBe('/base/echo/things');
    expect(seen?.query).toBe('a=1&b=%20x&a=2');
    expect(seen?.body.equals(body)).toBe(true);
    const h = seen?.headers ?? {};
    expect(h['authorization']).toBe('Bearer upstream-secret');
    expect(JSON.stringify(h)).not.toContain('fg_client_key');
    expect(JSON.stringify(h)).not.toContain('fg_session');
    for (const name of [
      'x-api-key',
      'cookie',
      'x-per-hop',
      'keep-alive',
      'te',
      'trailer',
      'proxy-authorization',
      'proxy-connection',
      'expect',
    ]) {
      expect(h[name], name).toBeUndefined();
    }
    expect(h['host']).toBe(`127.0.0.1:${mock.port}`);
    expect(h['content-length']).toBe(String(body.length));
    expect(h['content-type']).toBe('application/vnd.custom+json');
    expect(h['accept-encoding']).toBe('identity');
    // The client's own X-Forwarded-For is replaced by what the gateway knows (issue 12).
    expect(h['x-forwarded-for']).toBe('10.0.0.7');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-request-id']).toBe('req-123');
    expect(h['x-custom']).toBe('kept');
  });

  it('response: hop-by-hop, Connection-named, Set-Cookie and framing fields are dropped', async () => {
    const out = await forward(pool, { method: 'GET', path: '/echo', body: null, model: null }).done;
    expect(out.status).toBe(200);
    const names = out.headers.map(([n]) => n);
    for (const name of [
      'connection',
      'keep-alive',
      'x-hop-named',
      'set-cookie',
      'proxy-authenticate',
      'content-length',
      'transfer-encoding',
    ]) {
      expect(names, name).not.toContain(name);
    }
    expect(header(out.headers, 'x-upstream-header')).toEqual(['passes']);
    expect(header(out.headers, 'content-type')).toEqual(['application/json']);
    expect(out.contentLength).toBe(out.body.length);
  });
});
