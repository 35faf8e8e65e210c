/**
 * Fuzzing the rate limiter's Lua script (limits/lease-script.ts) on the real Redis: random
 * tiers, random lease calls for two keys of one account from several replicas (each its own connection) sent concurrently so
 * Redis orders them as it pleases, and give-backs of what a replica holds (plus token debts, as a
 * stream that ran past its reservation owes). Invariants, after every batch:
 * - never more granted than the bucket holds: granted − given back ≤ capacity + refill;
 * - each reply keeps its promise: ok ⇒ at least `need`, at most max(need, demand) + extra;
 *   refused ⇒ nothing granted;
 * - the stored levels stay within [−capacity, capacity];
 * - with two keys of one account, the sum over both never passes the account's bucket.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BucketLimits } from '../../src/limits/bucket.js';
import { callLease, defineLeaseCommand, type LeaseReply } from '../../src/limits/lease-script.js';
import { connectTestRedis, type TestRedis } from '../support/services.js';
import { fuzzParams, fuzzTimeout } from './support.js';

let tr: TestRedis;
const replicas: Redis[] = [];

beforeAll(async () => {
  tr = await connectTestRedis();
  // Hot-path clients as main.ts makes them: no offline queue.
  for (let i = 0; i < 4; i++) {
    const r = await tr.connect({ enableOfflineQueue: false });
    defineLeaseCommand(r);
    replicas.push(r);
  }
});
afterAll(async () => {
  await tr?.close();
});

const DAY_MS = 86_400_000;

const limitsArb = fc
  .record({ requests: fc.integer({ min: 1, max: 60 }), tokens: fc.integer({ min: 1, max: 200_000 }) })
  .map(({ requests, tokens }): BucketLimits => ({
    tierId: 'fuzz',
    // A day-long window: refill during a run is tiny, and the bound below still counts it.
    requests: { capacity: requests, ratePerMs: requests / DAY_MS, limit: requests },
    tokens: { capacity: tokens, ratePerMs: tokens / DAY_MS, limit: tokens },
  }));

const opArb = fc.record({
  replica: fc.integer({ min: 0, max: 3 }),
  needR: fc.integer({ min: 0, max: 3 }),
  moreR: fc.integer({ min: 0, max: 10 }),
  extraR: fc.integer({ min: 0, max: 20 }),
  // Token amounts as fractions of the bucket, so calls both fit and overflow whatever its size.
  needT: fc.double({ min: 0, max: 0.25, noNaN: true }),
  moreT: fc.double({ min: 0, max: 0.25, noNaN: true }),
  extraT: fc.double({ min: 0, max: 0.5, noNaN: true }),
  share: fc.constantFrom(0, 0.25, 0.5, 1),
  /** Fraction of what this replica holds that it gives back before asking. */
  giveBack: fc.constantFrom(0, 0, 0.5, 1),
  /** Tokens owed by a stream that used more than it reserved. */
  debt: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.double({ min: 0, max: 0.2, noNaN: true })),
});

const scenarioArb = fc.record({
  // Two keys of one account, each with its own tier, and the account's own bucket.
  keyLimits: fc.tuple(limitsArb, limitsArb),
  accountLimits: limitsArb,
  batches: fc.array(fc.array(fc.record({ key: fc.integer({ min: 0, max: 1 }), op: opArb }), { minLength: 1, maxLength: 6 }), {
    minLength: 1,
    maxLength: 12,
  }),
});

let run = 0;

type Totals = { grantedR: number; grantedT: number; givenR: number; givenT: number };
const totals = (): Totals => ({ grantedR: 0, grantedT: 0, givenR: 0, givenT: 0 });

/** granted − given back ≤ capacity + what refilled meanwhile, for one bucket. */
function expectWithin(total: Totals, limits: BucketLimits, elapsedMs: number, where: string): void {
  expect(total.grantedR - total.givenR, where).toBeLessThanOrEqual(limits.requests.capacity + limits.requests.ratePerMs * elapsedMs);
  expect(total.grantedT - total.givenT, where).toBeLessThanOrEqual(limits.tokens.capacity + limits.tokens.ratePerMs * elapsedMs);
}

describe('rate-limit Lua script under random interleavings', () => {
  it(
    'never grants more than the key or its account holds, whatever the order of concurrent calls',
    async ({ annotate }) => {
      let calls = 0;
      let scenarios = 0;
      let granted = 0;
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(scenarioArb, async ({ keyLimits, accountLimits, batches }) => {
          scenarios++;
          const id = `fuzz-lease:${process.pid}:${++run}`;
          const keys = [`${id}:k0`, `${id}:k1`] as const;
          const account = `${id}:acct`;
          // What each replica holds of each key's lease.
          const held = [0, 1, 2, 3].map(() => [0, 1].map(() => ({ r: 0, t: 0 })));
          const perKey = [totals(), totals()];
          const perAccount = totals();
          const started = Date.now();
          for (const batch of batches) {
            const pending: Array<
              Promise<{
                reply: LeaseReply;
                k: number;
                op: (typeof batch)[number]['op'];
                needR: number;
                needT: number;
                demandR: number;
                demandT: number;
                extraT: number;
              }>
            > = [];
            for (const { key: k, op } of batch) {
              const limits = keyLimits[k]!;
              const h = held[op.replica]![k]!;
              // What a replica gives back it takes from its own holdings at once, as a lease does.
              const giveR = Math.floor(h.r * op.giveBack);
              const giveT = Math.floor(h.t * op.giveBack);
              h.r -= giveR;
              h.t -= giveT;
              for (const t of [perKey[k]!, perAccount]) {
                t.givenR += giveR;
                t.givenT += giveT;
              }
              const needR = op.needR;
              const cap = limits.tokens.capacity;
              const needT = Math.floor(op.needT * cap);
              const demandR = needR + op.moreR;
              const demandT = needT + Math.floor(op.moreT * cap);
              const extraT = Math.floor(op.extraT * cap);
              const debt = Math.floor(op.debt * cap);
              calls++;
              pending.push(
                callLease(replicas[op.replica]!, keys[k]!, account, {
                  limits,
                  accountLimits,
                  give: { requests: giveR, tokens: giveT - debt },
                  need: { requests: needR, tokens: needT },
                  demand: { requests: demandR, tokens: demandT },
                  extra: { requests: op.extraR, tokens: extraT },
                  share: op.share,
                }).then((reply) => ({ reply, k, op, needR, needT, demandR, demandT, extraT })),
              );
            }
            for (const { reply, k, op, needR, needT, demandR, demandT, extraT } of await Promise.all(pending)) {
              const limits = keyLimits[k]!;
              const where = JSON.stringify({ limits, accountLimits, op, reply });
              if (reply.ok) {
                granted++;
                expect(reply.granted.requests, where).toBeGreaterThanOrEqual(needR);
                expect(reply.granted.tokens, where).toBeGreaterThanOrEqual(needT);
                expect(reply.granted.requests, where).toBeLessThanOrEqual(Math.max(needR, demandR) + op.extraR);
                expect(reply.granted.tokens, where).toBeLessThanOrEqual(Math.max(needT, demandT) + extraT);
              } else {
                refused++;
                expect(reply.granted, where).toEqual({ requests: 0, tokens: 0 });
              }
              expect(Math.abs(reply.level.requests), where).toBeLessThanOrEqual(limits.requests.capacity);
              expect(Math.abs(reply.level.tokens), where).toBeLessThanOrEqual(limits.tokens.capacity);
              expect(Math.abs(reply.accountLevel.requests), where).toBeLessThanOrEqual(accountLimits.requests.capacity);
              expect(Math.abs(reply.accountLevel.tokens), where).toBeLessThanOrEqual(accountLimits.tokens.capacity);
              held[op.replica]![k]!.r += reply.granted.requests;
              held[op.replica]![k]!.t += reply.granted.tokens;
              for (const t of [perKey[k]!, perAccount]) {
                t.grantedR += reply.granted.requests;
                t.grantedT += reply.granted.tokens;
              }
            }
            // Redis's clock ran at most this long since the first call: refill is bounded by it.
            const elapsed = Date.now() - started + 1_000;
            const where = JSON.stringify({ keyLimits, accountLimits, perKey, perAccount, batches: batches.length });
            expectWithin(perKey[0]!, keyLimits[0], elapsed, where);
            expectWithin(perKey[1]!, keyLimits[1], elapsed, where);
            // The sum over the account's keys never passes the account's own bucket (issue 12 item 6).
            expectWithin(perAccount, accountLimits, elapsed, where);
          }
          for (const [bucket, limits] of [
            [keys[0], keyLimits[0]],
            [keys[1], keyLimits[1]],
            [account, accountLimits],
          ] as const) {
            const [r, t] = await tr.redis.hmget(bucket, 'r', 't');
            if (r !== null && t !== null) {
              expect(Math.abs(Number(r))).toBeLessThanOrEqual(limits.requests.capacity);
              expect(Math.abs(Number(t))).toBeLessThanOrEqual(limits.tokens.capacity);
            }
          }
          await tr.redis.del(keys[0], keys[1], account);
        }),
        fuzzParams(5, 100),
      );
      await annotate(`lease script: ${scenarios} scenarios, ${calls} calls (${granted} granted, ${refused} refused)`);
    },
    fuzzTimeout(60_000),
  );
});
