import { describe, expect, it } from 'vitest';
import type { TierLimits } from '@fluxgate/contracts';
import { AccountState } from './account-state.js';
import { bucketLimitsOf } from './bucket.js';
import { KeyState } from './key-state.js';

const tier = { id: 't', requestsPerWindow: 1000, tokensPerWindow: 100_000, windowSeconds: 1, concurrentStreams: 2, burst: 100 };
const policy = { ttlMs: 2000, fraction: 0.1 };
const level = { requests: 50, tokens: 50_000 };
const grant = (requests: number, tokens: number) => ({ ok: true, granted: { requests, tokens }, level, accountLevel: level });
const account = (t: TierLimits = tier) => new AccountState('acct', t, bucketLimitsOf(t));
const keyState = (acct = account()) => new KeyState(tier, bucketLimitsOf(tier), acct, 0);

describe('KeyState leases (fake clock)', () => {
  it('starts with no lease wish, doubles it while the key comes back quickly, capped at the fraction', () => {
    const st = keyState();
    st.lastTokens = 100;
    st.grow(0, policy);
    expect(st.extra).toEqual({ requests: 0, tokens: 0 });
    st.absorb(grant(1, 100), 0, policy);
    const seen: number[] = [];
    for (let t = 10; t < 100; t += 10) {
      st.grow(t, policy);
      st.absorb(grant(1, 100), t, policy);
      seen.push(st.extra.requests);
    }
    expect(seen).toEqual([1, 2, 4, 8, 10, 10, 10, 10, 10]);
    expect(st.extra.tokens).toBe(10_000);
  });

  it('does not grow for a key that comes back after half a ttl', () => {
    const st = keyState();
    st.absorb(grant(1, 1), 0, policy);
    st.grow(1000, policy);
    expect(st.extra.requests).toBe(0);
  });

  it('spends the lease and asks for a top-up once less than half is left', () => {
    const st = keyState();
    st.extra.requests = 4;
    st.extra.tokens = 400;
    st.lastTokens = 100;
    st.absorb(grant(4, 400), 0, policy);
    expect(st.tryLease(100)).toBe(true);
    expect(st.tryLease(100)).toBe(true);
    expect(st.wantsTopUp(10, policy)).toBe(false);
    expect(st.tryLease(100)).toBe(true);
    expect(st.wantsTopUp(10, policy)).toBe(true);
    expect(st.tryLease(500)).toBe(false);
    // An old lease is no reason to top up: the key is not busy.
    expect(st.wantsTopUp(2000, policy)).toBe(false);
  });

  it('gives an expired lease back and halves the wish when more than half was unused', () => {
    const st = keyState();
    st.extra.requests = 4;
    st.extra.tokens = 400;
    st.absorb(grant(4, 400), 0, policy);
    expect(st.tryLease(100)).toBe(true);
    st.expire(1999);
    expect(st.lease.requests).toBe(3);
    st.expire(2000);
    expect(st.lease).toEqual({ requests: 0, tokens: 0 });
    expect(st.pending).toEqual({ requests: 3, tokens: 300 });
    expect(st.extra).toEqual({ requests: 2, tokens: 200 });
    expect(st.takePending()).toEqual({ requests: 3, tokens: 300 });
    expect(st.hasPending()).toBe(false);
  });

  it('projects the shared level by the refill since the last reply, and reports OpenAI views', () => {
    const st = keyState();
    const empty = { requests: 0, tokens: 0 };
    st.absorb({ ok: false, granted: empty, level: empty, accountLevel: empty }, 0, policy);
    expect(st.projected(50)).toEqual({ requests: 50, tokens: 5000 });
    const v = st.views(50, false);
    // The limit is the bucket's capacity (burst 100), not the per-window rate (1000).
    expect(v.requests).toEqual({ limit: 100, remaining: 50, resetMs: 50 });
    expect(v.tokens).toEqual({ limit: 100_000, remaining: 5000, resetMs: 950 });
  });

  it('a tier change hands the lease back and starts over', () => {
    const st = keyState();
    st.extra.requests = 8;
    st.absorb(grant(8, 800), 0, policy);
    const penalty = { ...tier, id: 'p', burst: 1, requestsPerWindow: 1 };
    st.rebind(penalty, bucketLimitsOf(penalty));
    expect(st.lease).toEqual({ requests: 0, tokens: 0 });
    expect(st.pending).toEqual({ requests: 8, tokens: 800 });
    expect(st.extra.requests).toBe(0);
    expect(st.limits.tierId).toBe('p');
  });
});

describe('KeyState and its account (fake clock)', () => {
  const empty = { requests: 0, tokens: 0 };
  it("a reply updates the account's level for every key of it in this process", () => {
    const acct = account();
    const [a, b] = [keyState(acct), keyState(acct)];
    expect(acct.keys).toBe(2);
    a.absorb({ ok: false, granted: empty, level: { requests: 80, tokens: 90_000 }, accountLevel: empty }, 0, policy);
    // b never asked Redis, yet knows its account is dry: refused locally, and told why.
    expect(b.shortfall(10, 0, false)).toEqual({ reason: 'requests', scope: 'account', waitMs: 1 });
    expect(acct.refusedAt).toBe(0);
  });

  it('headers report the tighter of the key and the account, per dimension', () => {
    const wide: TierLimits = { ...tier, id: 'wide', burst: 1000, tokensPerWindow: 1_000_000 };
    const st = keyState(account(wide));
    st.absorb(
      { ok: true, granted: empty, level: { requests: 90, tokens: 10_000 }, accountLevel: { requests: 20, tokens: 900_000 } },
      0,
      policy,
    );
    const v = st.views(0, false);
    // Requests: the account (20 of 1000) binds before the key (90 of 100).
    expect(v.requests).toMatchObject({ limit: 1000, remaining: 20 });
    // Tokens: the key (10k of 100k) binds before the account (900k of 1M).
    expect(v.tokens).toMatchObject({ limit: 100_000, remaining: 10_000 });
    expect(st.available(0, false)).toEqual({ requests: 20, tokens: 10_000 });
    expect(st.shortfall(20_000, 0, false)).toMatchObject({ reason: 'tokens', scope: 'key' });
  });

  it("moving to another account bucket (the key's own tier changed) hands the lease back and moves the count", () => {
    const [old, next] = [account(), account()];
    const st = keyState(old);
    st.absorb(grant(4, 400), 0, policy);
    st.rebind(tier, bucketLimitsOf(tier), next);
    expect([old.keys, next.keys]).toEqual([0, 1]);
    expect(st.pending).toEqual({ requests: 4, tokens: 400 });
    st.detach();
    expect(next.keys).toBe(0);
    expect(next.idle(0)).toBe(true);
  });
});
