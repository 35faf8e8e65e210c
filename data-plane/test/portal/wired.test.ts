/**
 * The portal routes bound onto a real uWS app with http/bind.ts, exactly as app.ts will bind
 * them, and driven over loopback HTTP with undici: proves the body reader starts in time, the
 * `:id` pattern, multiple response headers and the 413 path through the real server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { bind } from '../../src/http/bind.js';
import { closeAll, createPlainApp, listen, loadUws, type Listening, type TemplatedApp } from '../../src/http/uws.js';
import { STRONG_PASSWORD, startPortal, type PortalHarness } from './support.js';

let h: PortalHarness;
let app: TemplatedApp;
let listening: Listening;
let base: string;
beforeAll(async () => {
  h = await startPortal();
  app = createPlainApp(loadUws());
  for (const r of h.routes) bind(app, r.method, r.pattern, r.handler, h.log);
  listening = await listen(app, '127.0.0.1', 0);
  base = `http://127.0.0.1:${listening.port}`;
});
afterAll(async () => {
  listening?.close();
  if (app) closeAll(app);
  await h?.close();
});

const send = async (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await request(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined };
};

describe('portal over a real uWS listener', () => {
  it('register → login (cookie) → create key → list → revoke → logout', async () => {
    expect((await send('POST', '/portal/register', { email: 'wired@example.com', password: STRONG_PASSWORD })).status).toBe(201);
    const login = await send('POST', '/portal/login', { email: 'wired@example.com', password: STRONG_PASSWORD });
    expect(login.status).toBe(200);
    const setCookie = String(login.headers['set-cookie']);
    expect(setCookie).toMatch(/^fluxgate_session=[\w.-]+; HttpOnly; Secure; SameSite=Strict; Path=\/; Max-Age=3600$/);
    const cookie = setCookie.split(';')[0]!;
    const auth = { cookie, 'x-fluxgate-csrf': '1' };

    const created = await send('POST', '/portal/keys', { name: 'wired' }, auth);
    expect(created.status).toBe(201);
    expect((await send('GET', '/portal/keys', undefined, { cookie })).json.keys).toHaveLength(1);
    const revoked = await send('DELETE', `/portal/keys/${created.json.key.id}`, undefined, auth);
    expect(revoked.json.key.status).toBe('revoked');

    const out = await send('POST', '/portal/logout', undefined, auth);
    expect(out.status).toBe(200);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await send('GET', '/portal/me', undefined, { cookie })).status).toBe(401);
  });

  it('answers 413, 400 and 415 from the real body reader', async () => {
    const big = await send('POST', '/portal/register', { email: 'big@example.com', password: 'x'.repeat(20_000) });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('payload_too_large');
    const bad = await send('POST', '/portal/login', '{"email":');
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('invalid_json');
    // A body a cross-site form could send (text/plain needs no CORS preflight) is refused.
    const plain = await send('POST', '/portal/login', JSON.stringify({ email: 'wired@example.com', password: STRONG_PASSWORD }), {
      'content-type': 'text/plain',
    });
    expect(plain.status).toBe(415);
    expect(plain.json.error.code).toBe('unsupported_media_type');
    expect(plain.headers['set-cookie']).toBeUndefined();
  });
});
