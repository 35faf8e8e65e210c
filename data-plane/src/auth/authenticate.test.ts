import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors.js';
import type { KeyRecord } from '../store/keys.js';
import { createAuthenticator, extractApiKey, type AuthFailureReason } from './authenticate.js';
import { KeyStoreUnavailableError, createKeyCache } from './key-cache.js';
import { describeKey, generateKey } from './key-format.js';

const headers = (h: Record<string, string>) => new Map(Object.entries(h));

function setup(records: Array<{ hash: string; record: KeyRecord }>, opts: { storeDown?: boolean } = {}) {
  const byHash = new Map(records.map((r) => [r.hash, r.record]));
  let lookups = 0;
  const cache = createKeyCache({
    lookup: async (hash) => {
      lookups++;
      if (opts.storeDown) throw new Error('ECONNREFUSED');
      return byHash.get(hash) ?? null;
    },
  });
  const failedIps: string[] = [];
  const reasons: AuthFailureReason[] = [];
  const used: string[] = [];
  const auth = createAuthenticator({
    cache,
    counters: { recordFailedCredential: (ip) => failedIps.push(ip) },
    metrics: { authFailures: { inc: ({ reason }) => reasons.push(reason) } },
    lastUsed: { mark: (id) => used.push(id) },
  });
  return { auth, failedIps, reasons, used, lookups: () => lookups };
}

const key = (status: KeyRecord['status']) => {
  const k = generateKey();
  return {
    k,
    entry: {
      hash: k.hash,
      record: {
        id: `id-${status}`,
        userId: 'u1',
        status,
        tier: 'pro',
        prefix: k.displayPrefix,
        ownerEmail: 'a@b.c',
        role: 'operator' as const,
      },
    },
  };
};

const codeOf = (r: unknown) => (r instanceof GatewayError ? r.code : 'principal');

describe('extractApiKey', () => {
  it('reads a Bearer token (any scheme case) or x-api-key, Authorization first', () => {
    expect(extractApiKey(headers({ authorization: 'Bearer abc' }))).toBe('abc');
    expect(extractApiKey(headers({ authorization: 'bearer   abc  ' }))).toBe('abc');
    expect(extractApiKey(headers({ 'x-api-key': ' xyz ' }))).toBe('xyz');
    expect(extractApiKey(headers({ authorization: 'Bearer abc', 'x-api-key': 'xyz' }))).toBe('abc');
    expect(extractApiKey(headers({ authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': 'xyz' }))).toBe('xyz');
    expect(extractApiKey(headers({ authorization: 'Basic dXNlcjpwYXNz' }))).toBeNull();
    expect(extractApiKey(headers({ authorization: 'Bearer ' }))).toBeNull();
    expect(extractApiKey(headers({}))).toBeNull();
  });
});

describe('authenticate', () => {
  it('resolves an active key to its principal and marks it used', async () => {
    const { k, entry } = key('active');
    const s = setup([entry]);
    const r = await s.auth({ headers: headers({ authorization: `Bearer ${k.secret}` }), remoteAddress: '10.0.0.1' });
    expect(r).toEqual({ keyId: 'id-active', userId: 'u1', tier: 'pro', prefix: k.displayPrefix, role: 'operator' });
    expect(s.used).toEqual(['id-active']);
    expect(s.reasons).toEqual([]);
  });

  it('maps each failure to its error code, metric reason and (for guesses only) a failed credential', async () => {
    const revoked = key('revoked');
    const suspended = key('suspended');
    const unknown = generateKey();
    const s = setup([revoked.entry, suspended.entry]);
    const ip = '192.0.2.7';
    const results = [
      await s.auth({ headers: headers({}), remoteAddress: ip }),
      await s.auth({ headers: headers({ 'x-api-key': 'sk-not-ours' }), remoteAddress: ip }),
      await s.auth({ headers: headers({ 'x-api-key': unknown.secret }), remoteAddress: ip }),
      await s.auth({ headers: headers({ 'x-api-key': revoked.k.secret }), remoteAddress: ip }),
      await s.auth({ headers: headers({ 'x-api-key': suspended.k.secret }), remoteAddress: ip }),
    ];
    expect(results.map(codeOf)).toEqual(['missing_api_key', 'invalid_api_key', 'invalid_api_key', 'key_revoked', 'key_suspended']);
    expect(results.map((r) => (r as GatewayError).status)).toEqual([401, 401, 401, 401, 403]);
    expect(s.reasons).toEqual(['missing', 'malformed', 'unknown', 'revoked', 'suspended']);
    expect(s.failedIps).toEqual([ip, ip]);
    expect(s.used).toEqual([]);
  });

  it('rejects malformed keys without any lookup', async () => {
    const s = setup([]);
    const good = generateKey().secret;
    for (const bad of [
      good.slice(0, -1),
      good + 'x',
      good.replace('fgk_', 'fgx_'),
      `${good.slice(0, -1)}${good.at(-1) === 'a' ? 'b' : 'a'}`,
    ]) {
      expect(codeOf(await s.auth({ headers: headers({ authorization: `Bearer ${bad}` }), remoteAddress: '::1' }))).toBe('invalid_api_key');
    }
    expect(s.lookups()).toBe(0);
  });

  it('check() answers missing and malformed keys synchronously, counted once, with no lookup', async () => {
    const { k, entry } = key('active');
    const s = setup([entry]);
    const ip = '192.0.2.8';
    const missing = s.auth.check({ headers: headers({}), remoteAddress: ip });
    const malformed = s.auth.check({ headers: headers({ authorization: 'Bearer not-a-key' }), remoteAddress: ip });
    expect([missing, malformed].map(codeOf)).toEqual(['missing_api_key', 'invalid_api_key']);
    expect(s.reasons).toEqual(['missing', 'malformed']);
    // Only a guess (the malformed key) counts against the IP, as in the combined path.
    expect(s.failedIps).toEqual([ip]);
    expect(s.lookups()).toBe(0);
    const checked = s.auth.check({ headers: headers({ 'x-api-key': k.secret }), remoteAddress: ip });
    expect(checked).toEqual({ hash: k.hash });
    if (checked instanceof GatewayError) throw checked;
    expect(await s.auth.lookup(checked, { headers: headers({}), remoteAddress: ip })).toMatchObject({
      keyId: 'id-active',
      role: 'operator',
    });
    expect(s.lookups()).toBe(1);
    expect(s.reasons).toEqual(['missing', 'malformed']);
  });

  it('answers 503 service_unavailable, not 401, when the store cannot answer', async () => {
    const s = setup([], { storeDown: true });
    const r = await s.auth({ headers: headers({ 'x-api-key': generateKey().secret }), remoteAddress: '::1' });
    expect(codeOf(r)).toBe('service_unavailable');
    expect((r as GatewayError).status).toBe(503);
    expect(s.reasons).toEqual(['store_unavailable']);
    expect(s.failedIps).toEqual([]);
  });

  it('a cache hit answers synchronously (no promise) and costs one SHA-256: the checksum is verified only for keys the replica does not know', async () => {
    const { k, entry } = key('active');
    // The same shape, a wrong checksum: refused as malformed while unknown, without a lookup.
    const last = k.secret.at(-1) === 'a' ? 'b' : 'a';
    const forged = k.secret.slice(0, -1) + last;
    const s = setup([entry, { hash: describeKey(forged).hash, record: { ...entry.record, id: 'id-forged' } }]);
    const req = (secret: string) => ({ headers: headers({ authorization: `Bearer ${secret}` }), remoteAddress: '10.0.0.1' });
    const forgedCheck = s.auth.check(req(forged));
    expect(codeOf(forgedCheck)).toBe('invalid_api_key');
    expect(s.reasons).toEqual(['malformed']);
    expect(s.lookups()).toBe(0);

    const presented = s.auth.check(req(k.secret));
    if (presented instanceof GatewayError) throw presented;
    const first = s.auth.lookup(presented, req(k.secret));
    expect(first).toBeInstanceOf(Promise); // a miss: the store is asked
    expect(codeOf(await first)).toBe('principal');
    const again = s.auth.check(req(k.secret));
    if (again instanceof GatewayError) throw again;
    const hit = s.auth.lookup(again, req(k.secret));
    expect(hit).not.toBeInstanceOf(Promise);
    expect((hit as { keyId: string }).keyId).toBe('id-active');
    expect(s.lookups()).toBe(1);
    expect(s.used).toEqual(['id-active', 'id-active']);
  });

  it('never throws: a cache that throws synchronously still yields a 503', async () => {
    const auth = createAuthenticator({
      cache: {
        get: () => {
          throw new KeyStoreUnavailableError('x');
        },
        cached: () => undefined,
        needsLookup: () => true,
        invalidate() {},
        block() {},
        expireAll() {},
        clear() {},
        stats: () => ({}) as never,
      },
    });
    const r = await auth({ headers: headers({ 'x-api-key': generateKey().secret }), remoteAddress: '::1' });
    expect(codeOf(r)).toBe('service_unavailable');
  });
});
