#!/usr/bin/env node
/**
 * Rate-limiter micro-benchmark (not part of the test suite): run `npx tsc -b` first, then
 *   node data-plane/test/limits/bench.mjs
 * against the Redis at FLUXGATE_TEST_REDIS_URL (default redis://127.0.0.1:6379), keys under a
 * private prefix. Admits/s in process (admit + settle), and this process's CPU time per admit
 * (user + system, which a machine shared with other work disturbs less than wall-clock), for:
 *   1. one hot key with a warm lease (the common case: synchronous, no Redis);
 *   2. one key, leases off (LIMITS_LEASE_FRACTION=0): one Redis round trip per admit, sequential;
 *   3. 256 keys in flight at once, leases off (round trips overlap, still one per admit);
 *   4. 256 keys in flight at once, leases on;
 *   5. 256 keys of ONE account in flight at once, leases on (each lease drawn from the key's
 *      and the shared account bucket);
 *   6. Redis round trips per request for one enterprise key paced at its sustained rate
 *      (6000/min = 100/s) for 3 s — what leases save at a realistic rate.
 * Every key counts against an account too (issue 12): in 1–4 and 6 each key is its account's
 * only key, the common case.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

const dist = (p) => new URL(`../../dist/${p}`, import.meta.url).href;
const { createRateLimiter } = await import(dist('limits/rate-limiter.js'));

const url = process.env.FLUXGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `fgbench:${randomBytes(4).toString('hex')}:`;
const huge = { id: 'bench', requestsPerWindow: 1e9, tokensPerWindow: 1e12, windowSeconds: 1, concurrentStreams: 1, burst: 1e9 };
const clients = [];
const client = () => {
  const c = new Redis(url, { keyPrefix: prefix, enableOfflineQueue: false });
  clients.push(c);
  return new Promise((resolve) => c.once('ready', () => resolve(c)));
};

async function run(name, leaseFraction, keys, inFlight, { ms = 2000, oneAccount = false } = {}) {
  const limiter = createRateLimiter({ redis: await client(), leaseFraction });
  let n = 0;
  const end = performance.now() + ms;
  const worker = async (w) => {
    const keyId = `k${w % keys}`;
    const account = { id: oneAccount ? 'a0' : `a${w % keys}`, tier: huge };
    while (performance.now() < end) {
      let a = limiter.admit(keyId, huge, 100, account);
      if (a instanceof Promise) a = await a;
      if (!a.ok) throw new Error(`refused: ${a.reason}`);
      limiter.settle(a.reservation, 100);
      n++;
      // Yield now and then so timers (sweep) and I/O run even on the all-synchronous path.
      if (n % 1000 === 0) await new Promise(setImmediate);
    }
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)));
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const s = limiter.stats();
  await limiter.close();
  const cpuPerAdmit = ((cpu.user + cpu.system) / n).toFixed(2);
  console.log(
    `${name.padEnd(44)} ${Math.round(n / secs)
      .toLocaleString('en')
      .padStart(
        12,
      )} admits/s ${cpuPerAdmit.padStart(8)} µs CPU/admit   redis calls ${s.redisCalls.toLocaleString('en')} for ${n.toLocaleString('en')} admits`,
  );
}

await run('1 key, warm lease (sync path)', 0.1, 1, 1);
await run('1 key, no leases, sequential', 0, 1, 1);
await run('256 keys in flight, no leases', 0, 256, 256);
await run('256 keys in flight, leases', 0.1, 256, 256);
await run('256 keys of one account in flight, leases', 0.1, 256, 256, { oneAccount: true });
{
  const enterprise = {
    id: 'enterprise',
    requestsPerWindow: 6000,
    tokensPerWindow: 20_000_000,
    windowSeconds: 60,
    concurrentStreams: 256,
    burst: 1000,
  };
  const limiter = createRateLimiter({ redis: await client() });
  let ok = 0;
  let sync = 0;
  const t0 = performance.now();
  for (let i = 0; i < 300; i++) {
    // 100 requests per second, each reserving 500 prompt + 1000 completion tokens, using 800.
    while (performance.now() - t0 < i * 10) await new Promise((r) => setTimeout(r, 1));
    let a = limiter.admit('ent', enterprise, { promptTokens: 500, completionTokens: 1000 }, { id: 'ent-account', tier: enterprise });
    if (!(a instanceof Promise)) sync++;
    a = await a;
    if (a.ok) {
      ok++;
      limiter.settle(a.reservation, 800);
    }
  }
  const s = limiter.stats();
  await limiter.close();
  console.log(
    `enterprise key at 100 req/s for 3 s: ${ok}/300 admitted, ${sync} synchronously, ${s.redisCalls} Redis calls (incl. give-backs)`,
  );
}
const admin = new Redis(url);
for await (const keys of admin.scanStream({ match: `${prefix}*`, count: 1000 })) if (keys.length) await admin.unlink(...keys);
admin.disconnect();
for (const c of clients) c.disconnect();
