/**
 * Fuzzing the rate limiter's Lua script (limits/lease-script.ts) on the real Redis: random
 * tiers, random lease calls from several replicas (each its own connection) sent concurrently so
 * Redis orders them as it pleases, and give-backs of what a replica holds (plus token debts, as a
 * stream that ran past its reservation owes). Invariants, after every batch:
 * - never more granted than the bucket holds: granted − given back ≤ capacity + refill;
 * - each reply keeps its promise: ok ⇒ at least `need`, at most max(need, demand) + extra;
 *   refused ⇒ nothing granted;
 * - the stored levels stay within [−capacity, capacity].
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

const limitsArb = fc.record({ requests: fc.integer({ min: 1, max: 60 }), tokens: fc.integer({ min: 1, max: 200_000 }) }).map(
  ({ requests, tokens }): BucketLimits => ({
    tierId: 'fuzz',
    // A day-long window: refill during a run is tiny, and the bound below still counts it.
    requests: { capacity: requests, ratePerMs: requests / DAY_MS, limit: requests },
    tokens: { capacity: tokens, ratePerMs: tokens / DAY_MS, limit: tokens },
  }),
);

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
  limits: limitsArb,
  batches: fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 }),
});

let run = 0;

describe('rate-limit Lua script under random interleavings', () => {
  it('never grants more than the bucket holds, whatever the order of concurrent calls', async ({ annotate }) => {
    let calls = 0;
    let scenarios = 0;
    let granted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ limits, batches }) => {
        scenarios++;
        const key = `fuzz-lease:${process.pid}:${++run}`;
        const held = [0, 0, 0, 0].map(() => ({ r: 0, t: 0 }));
        const total = { grantedR: 0, grantedT: 0, givenR: 0, givenT: 0 };
        const started = Date.now();
        for (const batch of batches) {
          const pending: Array<Promise<{ reply: LeaseReply; op: (typeof batch)[number]; needR: number; needT: number; demandR: number; demandT: number; extraT: number }>> = [];
          for (const op of batch) {
            const h = held[op.replica]!;
            // What a replica gives back it takes from its own holdings at once, as a lease does.
            const giveR = Math.floor(h.r * op.giveBack);
            const giveT = Math.floor(h.t * op.giveBack);
            h.r -= giveR;
            h.t -= giveT;
            total.givenR += giveR;
            total.givenT += giveT;
            const needR = op.needR;
            const cap = limits.tokens.capacity;
            const needT = Math.floor(op.needT * cap);
            const demandR = needR + op.moreR;
            const demandT = needT + Math.floor(op.moreT * cap);
            const extraT = Math.floor(op.extraT * cap);
            const debt = Math.floor(op.debt * cap);
            calls++;
            pending.push(
              callLease(replicas[op.replica]!, key, {
                limits,
                give: { requests: giveR, tokens: giveT - debt },
                need: { requests: needR, tokens: needT },
                demand: { requests: demandR, tokens: demandT },
                extra: { requests: op.extraR, tokens: extraT },
                share: op.share,
              }).then((reply) => ({ reply, op, needR, needT, demandR, demandT, extraT })),
            );
          }
          for (const { reply, op, needR, needT, demandR, demandT, extraT } of await Promise.all(pending)) {
            const where = JSON.stringify({ limits, op, reply });
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
            held[op.replica]!.r += reply.granted.requests;
            held[op.replica]!.t += reply.granted.tokens;
            total.grantedR += reply.granted.requests;
            total.grantedT += reply.granted.tokens;
          }
          // Redis's clock ran at most this long since the first call: refill is bounded by it.
          const elapsed = Date.now() - started + 1_000;
          const where = JSON.stringify({ limits, total, batches: batches.length });
          expect(total.grantedR - total.givenR, where).toBeLessThanOrEqual(limits.requests.capacity + limits.requests.ratePerMs * elapsed);
          expect(total.grantedT - total.givenT, where).toBeLessThanOrEqual(limits.tokens.capacity + limits.tokens.ratePerMs * elapsed);
        }
        const [r, t] = await tr.redis.hmget(key, 'r', 't');
        if (r !== null && t !== null) {
          expect(Math.abs(Number(r))).toBeLessThanOrEqual(limits.requests.capacity);
          expect(Math.abs(Number(t))).toBeLessThanOrEqual(limits.tokens.capacity);
        }
        await tr.redis.del(key);
      }),
      fuzzParams(5, 100),
    );
    await annotate(`lease script: ${scenarios} scenarios, ${calls} calls (${granted} granted, ${refused} refused)`);
  }, fuzzTimeout(60_000));
});
