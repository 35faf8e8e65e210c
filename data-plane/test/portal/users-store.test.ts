import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueKey } from '../../src/auth/issue.js';
import { setKeyStatus } from '../../src/store/keys.js';
import {
  countActiveKeys,
  createUserWithPassword,
  findUserByEmail,
  findUserById,
  recordLogin,
  setUserRole,
  type UserRole,
} from '../../src/store/users.js';
import { createTestDatabase, type TestDatabase } from '../support/services.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

describe('store/users', () => {
  it('creates an account once per email, case-insensitively, with an audit row', async () => {
    const u = await createUserWithPassword(db.sql, { email: 'store@example.com', passwordHash: HASH });
    expect(u).toMatchObject({ email: 'store@example.com', tier: 'free', role: 'user', disabled: false, lastLoginAt: null });
    expect(await createUserWithPassword(db.sql, { email: 'STORE@example.com', passwordHash: HASH })).toBeNull();
    expect((await db.sql`SELECT count(*)::int AS n FROM users WHERE lower(email) = 'store@example.com'`)[0]?.n).toBe(1);
    expect((await db.sql`SELECT count(*)::int AS n FROM audit_log WHERE action = 'user.registered'`)[0]?.n).toBe(1);
  });

  it('finds by email in any case (with the hash) and by id (without it)', async () => {
    const byEmail = await findUserByEmail(db.sql, '  Store@Example.COM ');
    expect(byEmail?.passwordHash).toBe(HASH);
    const byId = await findUserById(db.sql, byEmail!.id);
    const { passwordHash: _hash, ...withoutHash } = byEmail!;
    expect(byId).toEqual(withoutHash);
    expect(byId).not.toHaveProperty('passwordHash');
    expect(await findUserById(db.sql, "1' OR '1'='1")).toBeNull();
    expect(await findUserByEmail(db.sql, "' OR 1=1 --")).toBeNull();
  });

  it('stamps last_login_at and replaces an outdated hash', async () => {
    const u = await findUserByEmail(db.sql, 'store@example.com');
    await recordLogin(db.sql, u!.id);
    const after = await findUserByEmail(db.sql, 'store@example.com');
    expect(after?.lastLoginAt).toBeInstanceOf(Date);
    expect(after?.passwordHash).toBe(HASH);
    await recordLogin(db.sql, u!.id, `${HASH}x`);
    expect((await findUserByEmail(db.sql, 'store@example.com'))?.passwordHash).toBe(`${HASH}x`);
  });

  it('setUserRole promotes and demotes by email, audits changes only, and knows missing accounts', async () => {
    const promoted = await setUserRole(db.sql, 'Store@Example.com', 'operator');
    expect(promoted).toMatchObject({ previousRole: 'user', changed: true, user: { email: 'store@example.com', role: 'operator' } });
    expect((await setUserRole(db.sql, 'store@example.com', 'operator'))?.changed).toBe(false);
    expect((await setUserRole(db.sql, 'store@example.com', 'admin', { actor: 'operator:x' }))?.previousRole).toBe('operator');
    expect((await findUserByEmail(db.sql, 'store@example.com'))?.role).toBe('admin');
    const audit = await db.sql`SELECT actor, detail FROM audit_log WHERE action = 'user.role_changed' ORDER BY id`;
    expect(audit).toEqual([
      { actor: 'cli', detail: { from: 'user', to: 'operator' } },
      { actor: 'operator:x', detail: { from: 'operator', to: 'admin' } },
    ]);
    expect(await setUserRole(db.sql, 'nobody@example.com', 'admin')).toBeNull();
    await expect(setUserRole(db.sql, 'store@example.com', 'root' as UserRole)).rejects.toThrow(RangeError);
  });

  it('counts active keys only', async () => {
    const a = await issueKey(db.sql, { email: 'counted@example.com' });
    await issueKey(db.sql, { email: 'counted@example.com' });
    expect(await countActiveKeys(db.sql, a.key.userId)).toBe(2);
    await setKeyStatus(db.sql, a.key.id, 'revoked');
    expect(await countActiveKeys(db.sql, a.key.userId)).toBe(1);
    expect(await countActiveKeys(db.sql, 'not-a-uuid')).toBe(0);
  });
});
