#!/usr/bin/env node
/**
 * Guard collect benchmark: seeds N active keys (each with three s10 windows, like a key busy for
 * 30 s) and N/10 active IPs in a private redis-server, then times the collector:
 *   cold   — a new leader's first cycle: all three lookback windows read;
 *   cycle  — the usual cycle: collect the current window (older ones are final and kept in
 *            memory), then run every detector over every key (pro tier, no key trips).
 * 1 % of keys are heavy enough for the detail reads (distinct IPs/models, fingerprints).
 * Usage: npm run bench:guard [-- 10000 100000]   (needs redis-server on PATH, else REDIS_URL)
 * The windows are seeded as the data plane writes them: each key's own hash and the packed shards
 * (contracts packed-windows.ts). BENCH_GUARD_FORMAT=legacy seeds the own hashes only, as a data
 * plane from before packing did (the collector then reads them one HMGET per key).
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { Redis } from 'ioredis';
import { encodePacked, packedShardOf, redisKeys } from '@fluxgate/contracts';
import { createBulkReader } from '../dist/collect/bulk-reader.js';
import { createCollector } from '../dist/collect/collector.js';
import { configWith } from '../dist/config/load.js';
import { decide } from '../dist/guard/policy.js';
import { settingsFromConfig } from '../dist/guard/settings.js';
import { DEFAULT_TIERS } from '@fluxgate/contracts';

const packed = process.env.BENCH_GUARD_FORMAT !== 'legacy';

// Seeding runs in a child process, so the RSS measured here is the collector's alone.
if (process.argv[2] === '--seed') {
  const [url, prefix, n, t] = process.argv.slice(3);
  const redis = new Redis(url, { keyPrefix: prefix });
  await seed(redis, Number(n), Number(t));
  redis.disconnect();
  process.exit(0);
}
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
if (sizes.length === 0) sizes.push(10_000, 100_000);

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function privateRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const ok = await new Promise((resolve) => {
    child.once('error', () => resolve(false));
    const deadline = Date.now() + 5000;
    const tryPing = async () => {
      const c = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      c.on('error', () => {});
      try {
        await c.connect();
        resolve((await c.ping()) === 'PONG');
      } catch {
        if (Date.now() > deadline) resolve(false);
        else setTimeout(tryPing, 50);
      } finally {
        c.disconnect();
      }
    };
    tryPing();
  });
  if (!ok) {
    child.kill('SIGKILL');
    return null;
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

async function seed(redis, n, t) {
  const b = Math.floor(t / 10_000);
  for (let i = 0; i < n; i += 2000) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(n, i + 2000); j++) {
      const id = `00000000-0000-4000-8000-${String(j).padStart(12, '0')}`;
      const heavy = j % 100 === 0;
      for (let k = 0; k < 3; k++) {
        p.sadd(redisKeys.activeKeys('s10', b - k), id);
        p.hset(redisKeys.usage(id, 's10', b - k), {
          req: heavy ? 40 : 3,
          s2xx: 3,
          ptok: 900,
          ctok: 1200,
          ptok_max: 400,
          rqb: 3600,
          rsb: 4800,
          ttfb_sum: 120,
          ttfb_n: 3,
          dur_sum: 900,
          streams: 3,
          last: t,
        });
        if (packed)
          p.hset(redisKeys.packedUsage('s10', b - k, packedShardOf(id)), id, encodePacked([heavy ? 40 : 3, 0, 0, 900, 1200, 400]));
        if (heavy) {
          p.pfadd(redisKeys.usageIps(id, 's10', b - k), '10.0.0.1', '10.0.0.2');
          p.pfadd(redisKeys.usageModels(id, 's10', b - k), 'm1');
          p.hset(redisKeys.usagePrompts(id, 's10', b - k), { aaaaaaaaaaaa: 3, bbbbbbbbbbbb: 1 });
        }
      }
      if (j % 10 === 0) {
        const ip = `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`;
        p.sadd(redisKeys.activeIps('s10', b), ip);
        p.hset(redisKeys.ipUsage(ip, 's10', b), { req: 3 });
        if (packed) p.hset(redisKeys.packedIpUsage('s10', b, packedShardOf(ip)), ip, encodePacked([0, 0, 3]));
      }
    }
    await p.exec();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const server = process.env.REDIS_URL ? null : await privateRedis();
const url = process.env.REDIS_URL ?? server?.url;
if (!url) {
  console.error('bench:guard needs redis-server on PATH (apt-get install redis-server) or REDIS_URL');
  process.exit(1);
}
const prefix = server ? '' : `fgbench:${process.pid}:`;
const rows = [];
try {
  for (const n of sizes) {
    const redis = new Redis(url, { keyPrefix: prefix });
    if (server) await redis.flushdb(); // the private server only
    const t = Math.floor(Date.now() / 10_000) * 10_000 + 5_000; // 5 s into a window: the previous two are final
    await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--seed', url, prefix, String(n), String(t)], {
        stdio: 'inherit',
      });
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`seeding failed (${code})`))));
    });
    const reader = createBulkReader({ url, keyPrefix: prefix, timeoutMs: 60_000 });
    const collector = createCollector({ reader, lookbackBuckets: 3, needsDetail: (_id, c) => c.requests >= 60, now: () => t });
    global.gc?.();
    let start = performance.now();
    const snap = await collector.collect();
    const cold = performance.now() - start;
    // A steady cycle as the guard runs it: collect, then every detector over every key.
    const settings = settingsFromConfig(configWith());
    const ctx = { tierOf: () => DEFAULT_TIERS.pro, baselineOf: () => ({ ewma: 100, n: 100 }), modeOf: () => 'enforce' };
    const steady = [];
    const detect = [];
    // CPU spent on a cycle by this process and by Redis: unlike wall time, not inflated by
    // whatever else the (shared) machine runs at the same moment.
    const redisCpu = async () => {
      const info = await redis.info('cpu');
      return (
        ['used_cpu_sys', 'used_cpu_user'].reduce((a, k) => a + Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0), 0) * 1000
      );
    };
    const cpu = [];
    const serverCpu = [];
    let detailed = 0;
    let decisions = 0;
    for (let i = 0; i < 5; i++) {
      const cpu0 = process.cpuUsage();
      const redis0 = await redisCpu();
      start = performance.now();
      const s = await collector.collect();
      const collected = performance.now();
      const used = process.cpuUsage(cpu0);
      cpu.push((used.user + used.system) / 1000);
      serverCpu.push((await redisCpu()) - redis0);
      decisions = decide(s, ctx, settings).length;
      detect.push(performance.now() - collected);
      steady.push(performance.now() - start);
      detailed = s.keys.filter((k) => k.detail).length;
    }
    const rssMb = process.memoryUsage().rss / 2 ** 20;
    // Live heap after a full collection (with --expose-gc), i.e. what the collector keeps.
    global.gc?.();
    const heapMb = process.memoryUsage().heapUsed / 2 ** 20;
    rows.push({
      activeKeys: n,
      snapshotKeys: snap.keys.length,
      ips: snap.ips.length,
      detailed,
      decisions,
      coldCollectMs: Math.round(cold),
      cycleMedianMs: Math.round(median(steady)),
      cycleMaxMs: Math.round(Math.max(...steady)),
      collectCpuMedianMs: Math.round(median(cpu)),
      redisCpuMedianMs: Math.round(median(serverCpu)),
      detectMedianMs: Math.round(median(detect)),
      rssMb: Math.round(rssMb),
      heapUsedMb: Math.round(heapMb),
    });
    reader.close();
    if (!server) {
      let cursor = '0';
      const admin = new Redis(url);
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
        cursor = next;
        if (keys.length) await admin.unlink(...keys);
      } while (cursor !== '0');
      admin.disconnect();
    }
    redis.disconnect();
  }
} finally {
  server?.stop();
}
console.table(rows);
console.log(JSON.stringify(rows));
