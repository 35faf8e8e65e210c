import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, hashKey } from '../../src/auth/key-format.js';
import { issueKey, issueKeyForUser } from '../../src/auth/issue.js';
import { recordAudit } from '../../src/store/audit.js';
import { createSql } from '../../src/store/db.js';
import {
  StoreError,
  createKey,
  findKeyByHash,
  getKey,
  listKeys,
  setKeyStatus,
  setKeyTier,
  setUserTier,
  touchLastUsed,
} from '../../src/store/keys.js';
import { createLastUsedTracker } from '../../src/store/last-used.js';
import { createTestDatabase, startTcpProxy, type TestDatabase } from '../support/services.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const storeError = (code: StoreError['code']) => expect.objectContaining({ name: 'StoreError', code });

describe('createKey / issueKey', () => {
  it('creates the user (no password, free tier) and a key whose hash resolves', async () => {
    const issued = await issueKey(db.sql, { email: ' New.User@Example.com ', name: 'ci' });
    expect(issued.userCreated).toBe(true);
    expect(issued.key).toMatchObject({
      ownerEmail: 'new.user@example.com',
      name: 'ci',
      status: 'active',
      tier: 'free',
      tierOverride: null,
    });
    const [user] = await db.sql`SELECT password_hash, tier, role FROM users WHERE id = ${issued.key.userId}`;
    expect(user).toEqual({ password_hash: null, tier: 'free', role: 'user' });
    const found = await findKeyByHash(db.sql, hashKey(issued.secret));
    expect(found).toEqual({
      id: issued.key.id,
      userId: issued.key.userId,
      status: 'active',
      tier: 'free',
      prefix: issued.secret.slice(0, 12),
      ownerEmail: 'new.user@example.com',
      role: 'user',
    });
  });

  it('reuses the user whatever the email case, and never stores the secret', async () => {
    const a = await issueKey(db.sql, { email: 'same@example.com' });
    const b = await issueKey(db.sql, { email: 'SAME@example.COM', name: 'second' });
    expect(b.userCreated).toBe(false);
    expect(b.key.userId).toBe(a.key.userId);
    const rows = await db.sql`SELECT * FROM api_keys WHERE user_id = ${a.key.userId}`;
    expect(JSON.stringify(rows)).not.toContain(a.secret.slice(12));
    expect(JSON.stringify(rows)).not.toContain(b.secret.slice(12));
  });

  it('gives a new user the requested tier, and an existing user a per-key override', async () => {
    const first = await issueKey(db.sql, { email: 'tiers@example.com', tier: 'pro' });
    expect(first.key).toMatchObject({ tier: 'pro', tierOverride: null });
    const same = await issueKey(db.sql, { email: 'tiers@example.com', tier: 'pro' });
    expect(same.key).toMatchObject({ tier: 'pro', tierOverride: null });
    const other = await issueKey(db.sql, { email: 'tiers@example.com', tier: 'enterprise' });
    expect(other.key).toMatchObject({ tier: 'enterprise', tierOverride: 'enterprise' });
    expect((await findKeyByHash(db.sql, hashKey(other.secret)))?.tier).toBe('enterprise');
  });

  it('refuses unknown and penalty tiers and bad emails, writing nothing', async () => {
    await expect(issueKey(db.sql, { email: 'nope@example.com', tier: 'platinum' })).rejects.toEqual(storeError('unknown_tier'));
    await expect(issueKey(db.sql, { email: 'nope@example.com', tier: 'penalty-2' })).rejects.toEqual(storeError('penalty_tier'));
    await expect(issueKey(db.sql, { email: 'not-an-email' })).rejects.toEqual(storeError('invalid_email'));
    const [n] = await db.sql`SELECT count(*)::int AS n FROM users WHERE email = 'nope@example.com'`;
    expect(n?.n).toBe(0);
  });

  it('issues keys for an existing user id only (the portal path)', async () => {
    const owner = await issueKey(db.sql, { email: 'portal@example.com' });
    const k = await issueKeyForUser(db.sql, { userId: owner.key.userId, name: 'from portal' });
    expect(k?.key).toMatchObject({ userId: owner.key.userId, name: 'from portal' });
    expect(await issueKeyForUser(db.sql, { userId: '00000000-0000-4000-8000-000000000000' })).toBeNull();
    expect(await issueKeyForUser(db.sql, { userId: 'not-a-uuid' })).toBeNull();
  });

  it('rejects a duplicate hash (unique constraint)', async () => {
    const material = generateKey();
    await createKey(db.sql, { email: 'dup@example.com', key: material });
    await expect(createKey(db.sql, { email: 'dup@example.com', key: material })).rejects.toThrow(/api_keys_key_hash_key/);
  });
});

describe('findKeyByHash', () => {
  it('returns null for an unknown hash', async () => {
    expect(await findKeyByHash(db.sql, 'f'.repeat(64))).toBeNull();
  });

  it('reports an active key of a disabled account as suspended', async () => {
    const k = await issueKey(db.sql, { email: 'disabled@example.com' });
    await db.sql`UPDATE users SET disabled_at = now() WHERE id = ${k.key.userId}`;
    expect((await findKeyByHash(db.sql, hashKey(k.secret)))?.status).toBe('suspended');
    expect((await getKey(db.sql, k.key.id))?.status).toBe('suspended');
  });

  it("carries the owner's role, for the proxy's model-management check", async () => {
    const k = await issueKey(db.sql, { email: 'ops@example.com' });
    expect((await findKeyByHash(db.sql, hashKey(k.secret)))?.role).toBe('user');
    await db.sql`UPDATE users SET role = 'operator' WHERE id = ${k.key.userId}`;
    expect((await findKeyByHash(db.sql, hashKey(k.secret)))?.role).toBe('operator');
  });
});

describe('listKeys', () => {
  it('lists by owner, newest first, without secrets or hashes', async () => {
    const a = await issueKey(db.sql, { email: 'lister@example.com', name: 'one' });
    const b = await issueKey(db.sql, { email: 'lister@example.com', name: 'two' });
    const list = await listKeys(db.sql, { email: 'LISTER@example.com' });
    expect(list.map((k) => k.id)).toEqual([b.key.id, a.key.id]);
    for (const k of list)
      expect(Object.keys(k).sort()).toEqual([
        'createdAt',
        'id',
        'lastUsedAt',
        'name',
        'ownerEmail',
        'prefix',
        'revokedAt',
        'status',
        'tier',
        'tierOverride',
        'userId',
      ]);
    expect(await listKeys(db.sql, { userId: a.key.userId })).toHaveLength(2);
    expect(await listKeys(db.sql, { email: 'nobody@example.com' })).toEqual([]);
    expect((await listKeys(db.sql)).length).toBeGreaterThanOrEqual(2);
  });
});

describe('setKeyStatus', () => {
  it('suspends, re-activates and revokes; revocation is final and stamped', async () => {
    const k = await issueKey(db.sql, { email: 'status@example.com' });
    const hash = hashKey(k.secret);
    const s = await setKeyStatus(db.sql, k.key.id, 'suspended');
    expect(s).toMatchObject({ changed: true, keyHash: hash, key: { status: 'suspended', revokedAt: null } });
    expect((await setKeyStatus(db.sql, k.key.id, 'suspended')).changed).toBe(false);
    expect((await setKeyStatus(db.sql, k.key.id, 'active')).key.status).toBe('active');
    const r = await setKeyStatus(db.sql, k.key.id, 'revoked');
    expect(r.key.status).toBe('revoked');
    expect(r.key.revokedAt).toBeInstanceOf(Date);
    await expect(setKeyStatus(db.sql, k.key.id, 'active')).rejects.toEqual(storeError('revoked_is_final'));
    await expect(setKeyStatus(db.sql, k.key.id, 'suspended')).rejects.toEqual(storeError('revoked_is_final'));
    expect((await findKeyByHash(db.sql, hash))?.status).toBe('revoked');
  });

  it('scopes to an owner when asked, and treats junk ids as not found', async () => {
    const mine = await issueKey(db.sql, { email: 'owner1@example.com' });
    const theirs = await issueKey(db.sql, { email: 'owner2@example.com' });
    await expect(setKeyStatus(db.sql, theirs.key.id, 'revoked', { userId: mine.key.userId })).rejects.toEqual(storeError('not_found'));
    expect((await getKey(db.sql, theirs.key.id))?.status).toBe('active');
    await expect(setKeyStatus(db.sql, "1'; DROP TABLE api_keys; --", 'revoked')).rejects.toEqual(storeError('not_found'));
    await expect(setKeyStatus(db.sql, '00000000-0000-4000-8000-000000000000', 'revoked')).rejects.toEqual(storeError('not_found'));
  });
});

describe('tiers', () => {
  it('sets and clears a key override; re-tiers a user and returns every key hash', async () => {
    const k = await issueKey(db.sql, { email: 'retier@example.com' });
    const k2 = await issueKey(db.sql, { email: 'retier@example.com' });
    expect((await setKeyTier(db.sql, k.key.id, 'pro')).key).toMatchObject({ tier: 'pro', tierOverride: 'pro' });
    expect((await setKeyTier(db.sql, k.key.id, null)).key).toMatchObject({ tier: 'free', tierOverride: null });
    await expect(setKeyTier(db.sql, k.key.id, 'penalty-1')).rejects.toEqual(storeError('penalty_tier'));
    const affected = await setUserTier(db.sql, k.key.userId, 'enterprise');
    expect(affected.map((a) => a.id).sort()).toEqual([k.key.id, k2.key.id].sort());
    expect(affected.find((a) => a.id === k.key.id)?.keyHash).toBe(hashKey(k.secret));
    expect((await findKeyByHash(db.sql, hashKey(k2.secret)))?.tier).toBe('enterprise');
  });
});

describe('last_used_at', () => {
  it('touchLastUsed updates a whole batch in one statement and ignores junk ids', async () => {
    const keys = await Promise.all([1, 2, 3].map((i) => issueKey(db.sql, { email: `used${i}@example.com` })));
    const n = await touchLastUsed(db.sql, [...keys.map((k) => k.key.id), keys[0]!.key.id, 'junk']);
    expect(n).toBe(3);
    for (const k of keys) expect((await getKey(db.sql, k.key.id))?.lastUsedAt).toBeInstanceOf(Date);
    expect(await touchLastUsed(db.sql, [])).toBe(0);
  });

  it('the tracker batches marks and keeps them while Postgres is unreachable', async () => {
    const k = await issueKey(db.sql, { email: 'tracker@example.com' });
    const url = new URL(db.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(proxy.port);
    const viaProxy = createSql(url.toString(), { max: 1, connectTimeoutSeconds: 1 });
    try {
      const tracker = createLastUsedTracker(viaProxy);
      await proxy.stop();
      for (let i = 0; i < 100; i++) tracker.mark(k.key.id);
      expect(tracker.pending()).toBe(1);
      await tracker.flush();
      expect(tracker.pending()).toBe(1);
      expect((await getKey(db.sql, k.key.id))?.lastUsedAt).toBeNull();
      await proxy.start();
      await tracker.stop();
      expect(tracker.pending()).toBe(0);
      expect((await getKey(db.sql, k.key.id))?.lastUsedAt).toBeInstanceOf(Date);
    } finally {
      await viaProxy.end({ timeout: 1 });
      await proxy.stop();
    }
  });
});

describe('audit_log', () => {
  it('records an entry with detail as JSON', async () => {
    const k = await issueKey(db.sql, { email: 'audit@example.com' });
    await recordAudit(db.sql, { actor: 'cli', action: 'key.created', userId: k.key.userId, keyId: k.key.id, detail: { tier: 'free' } });
    const [row] = await db.sql`SELECT actor, action, detail FROM audit_log WHERE key_id = ${k.key.id}`;
    expect(row).toEqual({ actor: 'cli', action: 'key.created', detail: { tier: 'free' } });
  });
});
