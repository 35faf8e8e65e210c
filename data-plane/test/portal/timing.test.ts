import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher, type PasswordHasher } from '../../src/auth/password.js';
import { STRONG_PASSWORD, jsonBody, startPortal, type PortalHarness } from './support.js';

let h: PortalHarness;
/** Argon2 verifications the login handler asked for, by kind. */
const verifications = { real: 0, dummy: 0 };
beforeAll(async () => {
  const argon = createPasswordHasher();
  const counting: PasswordHasher = {
    ...argon,
    verify: (stored, password) => (verifications.real++, argon.verify(stored, password)),
    verifyDummy: (password) => (verifications.dummy++, argon.verifyDummy(password)),
  };
  // Limits out of the way: this file measures cost, not throttling.
  h = await startPortal({ config: { loginFreeFailures: 10_000, loginMaxPerIp: 10_000 }, passwords: counting });
  await h.call('POST', '/portal/register', jsonBody({ email: 'timing@example.com', password: STRONG_PASSWORD }));
});
afterAll(async () => {
  await h?.close();
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function timedLogin(email: string, password: string): Promise<number> {
  const t = performance.now();
  const res = await h.call('POST', '/portal/login', jsonBody({ email, password }));
  const ms = performance.now() - t;
  if (res.status !== 401) throw new Error(`expected 401, got ${res.status}`);
  return ms;
}

describe('login cost', () => {
  it('an unknown email costs one Argon2 verification, as a wrong password does', async ({ annotate }) => {
    // Warm-up: the dummy hash is ready and both paths have run once.
    await timedLogin('nobody@example.com', 'wrong-password-0000');
    await timedLogin('timing@example.com', 'wrong-password-0000');
    const unknown: number[] = [];
    const wrong: number[] = [];
    // Interleaved, so drift in machine load affects both series alike.
    for (let i = 0; i < 20; i++) {
      unknown.push(await timedLogin(`nobody-${i}@example.com`, 'wrong-password-0000'));
      wrong.push(await timedLogin('timing@example.com', `wrong-password-${i}`));
    }
    const [u, w] = [median(unknown), median(wrong)];
    await annotate(`median login: unknown email ${u.toFixed(1)} ms, wrong password ${w.toFixed(1)} ms`);
    // Structural, not a race against the clock: every attempt paid exactly one verification, a
    // real one against the stored hash or one against the dummy hash of the same parameters
    // (auth/password.ts), 21 of each including the warm-up.
    expect(verifications).toEqual({ real: 21, dummy: 21 });
    // And both really ran Argon2 (a shortcut would be well under a millisecond; load only adds).
    expect(Math.min(u, w)).toBeGreaterThan(5);
  });

  it('measures Argon2id ms per hash and successful logins per second with 2 concurrent clients', async ({ annotate }) => {
    const hasher = createPasswordHasher();
    const hashMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      await hasher.hash(`measure-password-${i}`);
      hashMs.push(performance.now() - t);
    }
    const perHash = median(hashMs);

    const total = 40;
    let done = 0;
    const started = performance.now();
    const worker = async () => {
      while (done < total) {
        done++;
        const res = await h.call('POST', '/portal/login', jsonBody({ email: 'timing@example.com', password: STRONG_PASSWORD }));
        if (res.status !== 200) throw new Error(`login ${res.status}`);
      }
    };
    await Promise.all([worker(), worker()]);
    const perSecond = total / ((performance.now() - started) / 1000);
    await annotate(
      `Argon2id m=19456 t=2 p=1: ${perHash.toFixed(1)} ms/hash (median of 10); logins: ${perSecond.toFixed(1)}/s with 2 concurrent`,
    );
    expect(perHash).toBeGreaterThan(5);
    expect(perSecond).toBeGreaterThan(5);
  });
});
