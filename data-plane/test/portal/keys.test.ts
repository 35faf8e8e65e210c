import { redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { createKeyCache } from '../../src/auth/key-cache.js';
import { attachKeyCache } from '../../src/auth/key-events.js';
import { hashKey } from '../../src/auth/key-format.js';
import { findKeyByHash } from '../../src/store/keys.js';
import { waitUntil } from '../support/services.js';
import { bearer, cookieAuth, jsonBody, signUp, startPortal, type PortalHarness } from './support.js';

let h: PortalHarness;
beforeAll(async () => {
  h = await startPortal({ config: { maxKeysPerUser: 3 } });
});
afterAll(async () => {
  await h?.close();
});

const createKey = (token: string, name?: string) =>
  h.call('POST', '/portal/keys', { ...jsonBody(name === undefined ? {} : { name }), headers: bearer(token) });

describe('portal keys', () => {
  it('creates a key whose secret is shown once and never stored or listed', async () => {
    const s = await signUp(h.call, 'keys@example.com');
    const res = await createKey(s.token, 'laptop');
    expect(res.status).toBe(201);
    expect(res.readBodySync).toBe(true);
    expect(res.header('cache-control')).toBe('no-store');
    const { key, secret } = res.json;
    expect(secret).toMatch(/^fgk_[0-9A-Za-z]{49}$/);
    expect(key).toEqual({
      id: expect.any(String),
      name: 'laptop',
      prefix: secret.slice(0, 12),
      status: 'active',
      tier: 'free',
      createdAt: expect.any(String),
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(await findKeyByHash(h.db.sql, hashKey(secret))).toMatchObject({ id: key.id, userId: s.user.id });

    const list = await h.call('GET', '/portal/keys', { headers: bearer(s.token) });
    expect(list.status).toBe(200);
    expect(list.json.keys).toEqual([key]);
    expect(list.body).not.toContain(secret.slice(12));
    const rows = await h.db.sql`SELECT * FROM api_keys WHERE id = ${key.id}`;
    expect(JSON.stringify(rows)).not.toContain(secret.slice(12));
    const audit = await h.db.sql`SELECT action FROM audit_log WHERE key_id = ${key.id}`;
    expect(audit).toEqual([{ action: 'key.created' }]);
  });

  it('accepts an empty body (unnamed key) and refuses bad names', async () => {
    const s = await signUp(h.call, 'names@example.com');
    const unnamed = await h.call('POST', '/portal/keys', { headers: bearer(s.token) });
    expect(unnamed.status).toBe(201);
    expect(unnamed.json.key.name).toBe('');
    for (const name of ['x'.repeat(101), 'bell\u0007', 42]) {
      const res = await h.call('POST', '/portal/keys', { ...jsonBody({ name }), headers: bearer(s.token) });
      expect(res.status).toBe(400);
      expect(res.json.error.message).toMatch(/^name: /);
    }
    expect((await h.call('POST', '/portal/keys', { body: '{"name": "x"', headers: bearer(s.token) })).json.error.code).toBe('invalid_json');
    expect((await h.call('POST', '/portal/keys', { body: 'x'.repeat(20_000), headers: bearer(s.token) })).status).toBe(413);
  });

  it('stores a SQL-looking name as data', async () => {
    const s = await signUp(h.call, 'sqlname@example.com');
    const name = "x'); DELETE FROM api_keys; --";
    expect((await createKey(s.token, name)).json.key.name).toBe(name);
    expect((await h.call('GET', '/portal/keys', { headers: bearer(s.token) })).json.keys[0].name).toBe(name);
  });

  it('lists only the caller’s keys', async () => {
    const a = await signUp(h.call, 'owner-a@example.com');
    const b = await signUp(h.call, 'owner-b@example.com');
    const ka = (await createKey(a.token, 'a')).json.key.id;
    await createKey(b.token, 'b');
    const list = await h.call('GET', '/portal/keys', { headers: cookieAuth(a.cookie, false) });
    expect(list.json.keys.map((k: { id: string }) => k.id)).toEqual([ka]);
  });

  it('limits the number of active keys per account; revoking frees a slot', async () => {
    const s = await signUp(h.call, 'limit@example.com');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createKey(s.token, `k${i}`)).json.key.id);
    const over = await createKey(s.token, 'k3');
    expect(over.status).toBe(409);
    expect(over.json.error.code).toBe('key_limit_reached');
    await h.call('DELETE', `/portal/keys/${ids[0]}`, { headers: bearer(s.token) });
    expect((await createKey(s.token, 'k3')).status).toBe(201);
  });

  it('revokes the caller’s key, announces it (feed and pub/sub), and a replica’s key cache drops it within a second', async () => {
    const s = await signUp(h.call, 'revoke@example.com');
    const { key, secret } = (await createKey(s.token, 'doomed')).json;
    const cache = createKeyCache({ lookup: (hash) => findKeyByHash(h.db.sql, hash), ttlMs: 60_000 });
    const sub = await attachKeyCache(await h.tr.connect(), cache);
    try {
      const authenticate = createAuthenticator({ cache });
      const req = { headers: new Map([['authorization', `Bearer ${secret}`]]), remoteAddress: '127.0.0.1' };
      expect(await authenticate(req)).toMatchObject({ keyId: key.id });
      const res = await h.call('DELETE', `/portal/keys/${key.id}`, { headers: cookieAuth(s.cookie) });
      expect(res.status).toBe(200);
      expect(res.json.key).toMatchObject({ id: key.id, status: 'revoked', revokedAt: expect.any(String) });
      // Written to the revocation feed too, so a lost pub/sub message is repaired within a poll.
      expect(await h.tr.redis.zscore(redisKeys.revokedKeys(), `revoked:${key.id}`)).not.toBeNull();
      const started = performance.now();
      await waitUntil(async () => (await authenticate(req)) instanceof Error, {
        timeoutMs: 1000,
        message: 'revoked key still accepted by the cache',
      });
      expect(performance.now() - started).toBeLessThan(1000);
      // Idempotent: revoking again answers the same, still revoked.
      const again = await h.call('DELETE', `/portal/keys/${key.id}`, { headers: bearer(s.token) });
      expect(again.status).toBe(200);
      expect(again.json.key.status).toBe('revoked');
      const audit = await h.db.sql`SELECT action FROM audit_log WHERE key_id = ${key.id} ORDER BY id`;
      expect(audit).toEqual([{ action: 'key.created' }, { action: 'key.revoked' }]);
    } finally {
      await sub.close();
    }
  });

  it('answers 404 for another account’s key (IDOR) exactly as for a missing one, and leaves it alone', async () => {
    const victim = await signUp(h.call, 'victim@example.com');
    const attacker = await signUp(h.call, 'attacker@example.com');
    const { key } = (await createKey(victim.token, 'precious')).json;
    const idor = await h.call('DELETE', `/portal/keys/${key.id}`, { headers: bearer(attacker.token) });
    const missing = await h.call('DELETE', `/portal/keys/${crypto.randomUUID()}`, { headers: bearer(attacker.token) });
    const garbage = await h.call('DELETE', "/portal/keys/1'%20OR%20'1'='1", { headers: bearer(attacker.token) });
    for (const res of [idor, missing, garbage]) expect(res.status).toBe(404);
    expect(idor.body).toBe(missing.body);
    const [row] = await h.db.sql`SELECT status FROM api_keys WHERE id = ${key.id}`;
    expect(row?.status).toBe('active');
  });

  it('requires a session for every key route', async () => {
    for (const [method, path] of [
      ['GET', '/portal/keys'],
      ['POST', '/portal/keys'],
      ['DELETE', `/portal/keys/${crypto.randomUUID()}`],
    ] as const) {
      expect((await h.call(method, path)).status).toBe(401);
    }
  });
});
