import { createHmac, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { clearedSessionCookie, createSessionTokens, extractSessionToken, readCookie, sessionCookie, type SessionUser } from './session.js';

const SECRET = 'unit-test-secret-0123456789abcdef0123';
const user: SessionUser = { id: randomUUID(), email: 'ada@example.com', tier: 'free', role: 'user' };
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('session tokens', () => {
  it('round-trips the claims of a token it issued', async () => {
    const tokens = createSessionTokens({ secret: SECRET, ttlSeconds: 600, now: () => 1_700_000_000_000 });
    const { token, claims } = await tokens.issue(user);
    expect(claims).toMatchObject({ ...user, iat: 1_700_000_000, exp: 1_700_000_600 });
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(await tokens.verify(token)).toEqual(claims);
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as unknown;
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
  });

  it('gives each token its own jti', async () => {
    const tokens = createSessionTokens({ secret: SECRET });
    const a = await tokens.issue(user);
    const b = await tokens.issue(user);
    expect(a.claims.jti).not.toBe(b.claims.jti);
  });

  it('refuses alg none, even with otherwise perfect claims', async () => {
    const tokens = createSessionTokens({ secret: SECRET });
    const { claims } = await tokens.issue(user);
    const payload = {
      sub: user.id,
      email: user.email,
      tier: user.tier,
      role: 'admin',
      iss: 'fluxgate',
      aud: 'fluxgate-portal',
      iat: claims.iat,
      exp: claims.exp,
      jti: claims.jti,
    };
    expect(await tokens.verify(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`)).toBeNull();
    expect(await tokens.verify(`${b64({ alg: 'none' })}.${b64(payload)}`)).toBeNull();
  });

  it('refuses another algorithm with the same secret, a wrong key, and a tampered payload', async () => {
    const tokens = createSessionTokens({ secret: SECRET });
    const now = Math.floor(Date.now() / 1000);
    const claims = { email: user.email, tier: user.tier, role: user.role };
    const hs512 = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS512', typ: 'JWT' })
      .setSubject(user.id)
      .setIssuer('fluxgate')
      .setAudience('fluxgate-portal')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti('a'.repeat(22))
      .sign(new TextEncoder().encode(SECRET));
    expect(await tokens.verify(hs512)).toBeNull();

    const other = createSessionTokens({ secret: 'another-secret-0123456789abcdef012345' });
    const { token } = await other.issue(user);
    expect(await tokens.verify(token)).toBeNull();

    const good = (await tokens.issue(user)).token;
    const [h, , s] = good.split('.');
    const forged = `${h}.${b64({ sub: user.id, email: user.email, tier: 'enterprise', role: 'admin', iss: 'fluxgate', aud: 'fluxgate-portal', iat: now, exp: now + 60, jti: 'b'.repeat(22) })}.${s}`;
    expect(await tokens.verify(forged)).toBeNull();
    // Re-signed by hand with the right key but without typ: refused too (RFC 8725 §3.11).
    const body = `${b64({ alg: 'HS256' })}.${forged.split('.')[1]}`;
    const sig = createHmac('sha256', SECRET).update(body).digest('base64url');
    expect(await tokens.verify(`${body}.${sig}`)).toBeNull();
  });

  it('refuses expired tokens (fake clock), tokens from the future, and wrong issuer or audience', async () => {
    let now = 1_700_000_000_000;
    const tokens = createSessionTokens({ secret: SECRET, ttlSeconds: 60, now: () => now });
    const { token } = await tokens.issue(user);
    now += 59_000;
    expect(await tokens.verify(token)).not.toBeNull();
    now += 1_000;
    expect(await tokens.verify(token)).toBeNull();

    const early = createSessionTokens({ secret: SECRET, ttlSeconds: 60, now: () => 1_700_000_000_000 + 3600_000 });
    expect(await createSessionTokens({ secret: SECRET, now: () => 1_700_000_000_000 }).verify((await early.issue(user)).token)).toBeNull();

    const foreign = createSessionTokens({ secret: SECRET, issuer: 'someone-else' });
    expect(await createSessionTokens({ secret: SECRET }).verify((await foreign.issue(user)).token)).toBeNull();
    const otherAud = createSessionTokens({ secret: SECRET, audience: 'another-app' });
    expect(await createSessionTokens({ secret: SECRET }).verify((await otherAud.issue(user)).token)).toBeNull();
  });

  it('applies a shortened lifetime to tokens issued under the longer one', async () => {
    const t0 = 1_700_000_000_000;
    const long = createSessionTokens({ secret: SECRET, ttlSeconds: 3600, now: () => t0 });
    const { token } = await long.issue(user);
    const short = createSessionTokens({ secret: SECRET, ttlSeconds: 600, now: () => t0 + 601_000 });
    expect(await short.verify(token)).toBeNull();
  });

  it('refuses garbage without throwing', async () => {
    const tokens = createSessionTokens({ secret: SECRET });
    for (const t of ['', 'a.b.c', 'x'.repeat(5000), '...', 'eyJ.eyJ.eyJ']) expect(await tokens.verify(t)).toBeNull();
  });

  it('requires a secret of at least 32 bytes', () => {
    expect(() => createSessionTokens({ secret: 'short-secret' })).toThrow(/32 bytes/);
    expect(() => createSessionTokens({ secret: 'é'.repeat(16) })).not.toThrow();
  });
});

describe('session transport', () => {
  it('takes a Bearer token over the cookie, and the cookie otherwise', () => {
    expect(
      extractSessionToken(
        new Map([
          ['authorization', 'Bearer abc'],
          ['cookie', 'fluxgate_session=xyz'],
        ]),
      ),
    ).toEqual({ token: 'abc', via: 'bearer' });
    expect(extractSessionToken(new Map([['cookie', 'theme=dark; fluxgate_session=xyz; other=1']]))).toEqual({
      token: 'xyz',
      via: 'cookie',
    });
    expect(extractSessionToken(new Map([['authorization', 'Basic Zm9vOmJhcg==']]))).toBeNull();
    expect(extractSessionToken(new Map([['cookie', 'fluxgate_session=']]))).toBeNull();
    expect(extractSessionToken(new Map())).toBeNull();
    expect(readCookie('a=1;b=2', 'b')).toBe('2');
    expect(readCookie('xfluxgate_session=1', 'fluxgate_session')).toBeNull();
  });

  it('sets and clears the cookie with HttpOnly, Secure, SameSite=Strict, Path=/ and Max-Age', () => {
    expect(sessionCookie('tok', 3600)).toBe('fluxgate_session=tok; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600');
    expect(clearedSessionCookie()).toBe('fluxgate_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0');
  });
});
