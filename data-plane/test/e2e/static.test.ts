/**
 * Issue 15: the SPA on the public TLS listener (standalone mode), through the real gateway.
 * A fixture build stands in for frontend/dist (SPA_DIR), so this file does not depend on the
 * frontend build; the Chromium tests (frontend/test/e2e) use the real one.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPA_CSP } from '../../src/static/headers.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { rawExchange } from '../support/raw-tls.js';
import { waitUntil } from '../support/services.js';

const INDEX =
  '<!doctype html><html lang="en"><head><title>Fluxgate</title><script type="module" src="/assets/index-AbC123.js"></script></head><body></body></html>';
// Big and repetitive enough that both encodings pay off.
const SCRIPT = `export const words = ${JSON.stringify(Array.from({ length: 400 }, (_, i) => `word-${i % 37}`))};\n`;
const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

let mock: MockUpstream;
let gw: InProcessGateway;
let bare: InProcessGateway;
let dist: string;
let empty: string;

beforeAll(async () => {
  dist = await mkdtemp(join(tmpdir(), 'fg-spa-'));
  empty = await mkdtemp(join(tmpdir(), 'fg-nospa-'));
  await mkdir(join(dist, 'assets'));
  await writeFile(join(dist, 'index.html'), INDEX);
  await writeFile(join(dist, 'assets', 'index-AbC123.js'), SCRIPT);
  await writeFile(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(dist, '.env'), 'SECRET=never-served');
  mock = await startMockUpstream();
  [gw, bare] = await Promise.all([
    startInProcessGateway({ upstreams: mock.url, env: { SPA_DIR: dist } }),
    startInProcessGateway({ upstreams: mock.url, env: { SPA_DIR: empty } }),
  ]);
});
afterAll(async () => {
  await Promise.all([gw?.stop(), bare?.stop()]);
  await mock?.close();
  await Promise.all([rm(dist, { recursive: true, force: true }), rm(empty, { recursive: true, force: true })]);
});

async function get(g: InProcessGateway, path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'POST' = 'GET') {
  const res = await request(`${g.url}${path}`, { method, headers, dispatcher: g.dispatcher });
  const body = Buffer.from(await res.body.arrayBuffer());
  const h = (name: string) => {
    const v = res.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  return { status: res.statusCode, h, body, text: body.toString('utf8') };
}

describe('the SPA on the public listener', () => {
  it('GET / answers index.html, never cached, with a strict CSP and the security headers', async () => {
    const r = await get(gw, '/', HTML);
    expect(r.status).toBe(200);
    expect(r.h('content-type')).toBe('text/html; charset=utf-8');
    expect(r.text).toBe(INDEX);
    expect(r.h('cache-control')).toBe('no-store');
    expect(r.h('content-security-policy')).toBe(SPA_CSP);
    expect(SPA_CSP).toContain("script-src 'self'");
    expect(SPA_CSP).toContain("frame-ancestors 'none'");
    expect(SPA_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(r.h('x-content-type-options')).toBe('nosniff');
    expect(r.h('referrer-policy')).toBe('no-referrer');
    expect(r.h('x-frame-options')).toBe('DENY');
    expect(r.h('permissions-policy')).toContain('camera=()');
    expect(r.h('cross-origin-opener-policy')).toBe('same-origin');
  });

  it('serves hashed assets as immutable, compressed when the client accepts it, with 304 on a matching ETag', async () => {
    const plain = await get(gw, '/assets/index-AbC123.js');
    expect(plain.status).toBe(200);
    expect(plain.h('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.h('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(plain.h('content-encoding')).toBeUndefined();
    expect(plain.h('vary')).toBe('accept-encoding');
    expect(plain.text).toBe(SCRIPT);

    // The encodings are made off the event loop after the first request for the file.
    const br = await waitUntil(
      async () => {
        const r = await get(gw, '/assets/index-AbC123.js', { 'accept-encoding': 'gzip, deflate, br' });
        return r.h('content-encoding') === 'br' ? r : null;
      },
      { message: 'brotli-encoded answer' },
    );
    expect(br.body.length).toBeLessThan(SCRIPT.length);
    expect(brotliDecompressSync(br.body).toString()).toBe(SCRIPT);

    const gz = await get(gw, '/assets/index-AbC123.js', { 'accept-encoding': 'br;q=0, gzip' });
    expect(gz.h('content-encoding')).toBe('gzip');
    expect(gunzipSync(gz.body).toString()).toBe(SCRIPT);

    const etag = plain.h('etag')!;
    expect(etag).toMatch(/^W\/"[\w-]{22}"$/);
    const cached = await get(gw, '/assets/index-AbC123.js', { 'if-none-match': etag });
    expect(cached.status).toBe(304);
    expect(cached.body.length).toBe(0);
    expect(cached.h('etag')).toBe(etag);
  });

  it('answers client-side routes with index.html when the browser asks for a page', async () => {
    for (const path of ['/login', '/keys', '/operator/incidents', '/playground/']) {
      const r = await get(gw, path, HTML);
      expect(r.status, path).toBe(200);
      expect(r.text, path).toBe(INDEX);
      expect(r.h('cache-control'), path).toBe('no-store');
    }
    // A script or SDK calling a wrong path reads a JSON 404, not a page.
    const api = await get(gw, '/keys', { accept: 'application/json' });
    expect(api.status).toBe(404);
    expect(JSON.parse(api.text)).toEqual({ error: { message: 'Not found.', type: 'invalid_request_error', code: 'not_found' } });
  });

  it('leaves the API paths their own answers, even for a browser asking for HTML', async () => {
    const json404 = { error: { message: 'Not found.', type: 'invalid_request_error', code: 'not_found' } };
    for (const path of ['/v1', '/api', '/portal', '/portal/nope', '/dns-query/x', '/healthcheck', '/assets/missing-123.js', '/assets']) {
      const r = await get(gw, path, HTML);
      expect(r.status, path).toBe(404);
      expect(JSON.parse(r.text), path).toEqual(json404);
      expect(r.h('content-security-policy'), path).toBeUndefined();
    }
    const models = await get(gw, '/v1/models', HTML);
    expect(models.status).toBe(401);
    expect(JSON.parse(models.text).error.code).toBe('missing_api_key');
    const me = await get(gw, '/portal/me', HTML);
    expect(me.status).toBe(401);
    expect((await get(gw, '/healthz', HTML)).text).toBe('{"status":"ok"}');
    expect((await get(gw, '/health', HTML)).text).toBe('{"status":"ok"}');
    expect(JSON.parse((await get(gw, '/readyz', HTML)).text)).toHaveProperty('checks');
    const dns = await get(gw, '/dns-query', HTML);
    expect(dns.status).toBe(400);
  });

  it('serves only the files of the build: no dotfiles, no traversal, no other names', async () => {
    for (const path of ['/.env', '/index.html.bak', '/favicon.svg/x']) {
      const r = await get(gw, path, HTML);
      expect(r.status, path).toBe(404);
      expect(r.text, path).not.toContain('SECRET');
    }
    // Dot segments, plain or encoded, sent as they are (undici would resolve them before sending).
    for (const path of ['/assets/../index.html', '/../.env', '/%2e%2e/etc/passwd', '/assets/%2e%2e/index.html']) {
      const answer = await rawExchange(
        gw.publicPort,
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n`,
      );
      expect(answer, path).toMatch(/^HTTP\/1\.1 404 /);
      expect(answer, path).not.toContain('SECRET');
    }
    const icon = await get(gw, '/favicon.svg');
    expect(icon.status).toBe(200);
    expect(icon.h('content-type')).toBe('image/svg+xml');
    expect(icon.h('cache-control')).toBe('public, max-age=3600');
  });

  it('HEAD gets the headers only; other methods on a file are 405, elsewhere 404', async () => {
    const head = await get(gw, '/', HTML, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.h('content-length')).toBe(String(INDEX.length));
    expect(head.body.length).toBe(0);
    const post = await get(gw, '/', { 'content-type': 'application/json' }, 'POST');
    expect(post.status).toBe(405);
    expect(post.h('allow')).toBe('GET, HEAD');
    expect((await get(gw, '/keys', HTML, 'POST')).status).toBe(404);
  });

  it('without a build, / stays the JSON 404 it was', async () => {
    const r = await get(bare, '/', HTML);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text).error.code).toBe('not_found');
  });
});
