#!/usr/bin/env node
/**
 * Per-request bookkeeping micro-benchmark (not part of the test suite): run `npx tsc -b` first, then
 *   node data-plane/test/metrics/bench.mjs
 * Drives the ports the proxy route calls for every request (routes/proxy-wiring.ts, as
 * routes/proxy.ts calls them): onStreamOpen(+1) at admission, then at the end onStreamOpen(-1),
 * observe (Prometheus metrics + replica stats) and recordUsage (the Redis usage counters), for
 * BENCH_REQUESTS (default 1,000,000) simulated requests over 1,000 keys and 500 client IPs, on a
 * virtual clock of 10,000 requests per second (so the run crosses ten s10 windows and one m1
 * window). Every 10,000 requests (one virtual second, the default COUNTER_FLUSH_MS) the counters
 * flush for real — with the replica records, as main.ts wires them — to a private redis-server
 * (or FLUXGATE_BENCH_REDIS_URL, keys under a private prefix), and at the end /metrics is rendered.
 *
 * Reports, for the measured run after a warm-up:
 *   - hot path: wall ns per request in the synchronous request loop (what a request pays);
 *   - flush: CPU per flush (the fold, building and encoding the pipeline, parsing its replies)
 *     and the commands it sends; beside it, Redis's own CPU per flush (INFO cpu of the server,
 *     so only meaningful on the private one);
 *   - CPU per request: this process's user + system time over the whole run, flushes included;
 *   - allocated and promoted bytes per request over the whole run (v8.GCProfiler: heap growth
 *     between collections, and old-space growth across scavenges);
 *   - one /metrics render.
 * BENCH_FLUSH=0: no writes; every virtual second the counters only fold (stats()), so the figures
 * are the requests' own cost without the flushes' garbage (the pending buckets then grow, ~20k).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Redis } from 'ioredis';

const dist = (p) => new URL(`../../dist/${p}`, import.meta.url).href;
const { createCounters } = await import(dist('metrics/counters.js'));
const { createGatewayMetrics } = await import(dist('metrics/registry.js'));
const { createReplicaStats } = await import(dist('metrics/replica-stats.js'));
const { replicaRecordWriter } = await import(dist('metrics/replica-records.js'));
const { createProxyPorts } = await import(dist('routes/proxy-wiring.js'));

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const N = Number(process.env.BENCH_REQUESTS ?? 1_000_000);
const WARMUP = Math.min(200_000, N);
const KEYS = 1000;
const IPS = 500;
const RATE = 10_000; // virtual requests per second
const FLUSH_EVERY = RATE; // one flush per virtual second
const WRITE = process.env.BENCH_FLUSH !== '0';

// ---------------------------------------------------------------------------------------------
// Redis: a private server unless told otherwise (a million requests' writes stay off the shared one).

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

let server = null;
let url = process.env.FLUXGATE_BENCH_REDIS_URL;
if (!url) {
  const port = await freePort();
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  url = `redis://127.0.0.1:${port}`;
}
const prefix = `fgbench:${randomBytes(4).toString('hex')}:`;
const redis = new Redis(url, { keyPrefix: prefix, enableOfflineQueue: false, retryStrategy: () => 50 });
redis.on('error', () => undefined);
await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`no Redis at ${url}`)), 5000);
  redis.once('ready', () => resolve(clearTimeout(t)));
});

// ---------------------------------------------------------------------------------------------
// The ports, wired as main.ts wires them.

let vnow = Math.floor(Date.now() / 10_000) * 10_000 + 3_000; // a few seconds into an s10 window
const metrics = createGatewayMetrics({ upstreams: ['ollama-a', 'ollama-b'] });
const stats = createReplicaStats();
const counters = createCounters({
  redis,
  metrics,
  now: () => vnow,
  extraWrites: replicaRecordWriter(redis, { replicaId: 'bench', startedAt: Date.now(), stats, upstreams: () => [] }),
});
const ports = createProxyPorts({ authenticate: { check() {}, lookup() {} }, counters, metrics, stats });

const principals = Array.from({ length: KEYS }, (_, i) => ({ keyId: `key-${i.toString(36).padStart(4, '0')}` }));
const ips = Array.from({ length: IPS }, (_, i) => (i % 5 === 0 ? `::ffff:10.1.${i >> 8}.${i & 255}` : `10.0.${i >> 8}.${i & 255}`));
const models = ['llama3.1:8b', 'qwen2.5:14b', 'mistral-nemo'];
const fingerprints = Array.from({ length: 4096 }, () => randomBytes(6).toString('hex'));

// A deterministic spread of outcomes: mostly 200s, some 429s, upstream errors, aborts.
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296) * 1;

function oneRequest(i) {
  const principal = principals[(i * 7919) % KEYS];
  const r = rnd();
  const status = r < 0.9 ? 200 : r < 0.95 ? 429 : r < 0.98 ? 502 : 0;
  const streamed = status === 200 && r < 0.6;
  const durationMs = 5 + rnd() * 2000;
  const ttfbMs = status === 200 ? 1 + rnd() * 300 : null;
  const family = i % 4 === 0 ? 'ollama' : 'openai';
  ports.onStreamOpen(1);
  // finish(): the order routes/proxy.ts uses.
  ports.onStreamOpen(-1);
  ports.observe({ family, status, durationMs, ttfbMs, outcome: status === 200 ? 'success' : 'error' });
  ports.recordUsage(principal, {
    status,
    promptTokens: status === 200 ? 20 + (i % 900) : 0,
    completionTokens: status === 200 ? 100 + (i % 400) : 0,
    estimated: i % 10 === 0,
    requestBytes: 400 + (i % 3000),
    responseBytes: status === 200 ? 2000 + (i % 9000) : 120,
    ttfbMs,
    durationMs,
    clientIp: ips[(i * 31) % IPS],
    model: models[i % 3],
    promptFingerprint: i % 3 === 0 ? null : fingerprints[i % 4096],
    streamed,
    cut: streamed && i % 97 === 0,
    upstreamError: status === 502,
  });
  vnow += 1000 / RATE;
}

async function run(n) {
  let hotNs = 0;
  let flushCpuUs = 0;
  let flushes = 0;
  let commands = 0;
  for (let done = 0; done < n;) {
    const chunk = Math.min(FLUSH_EVERY, n - done);
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < chunk; j++) oneRequest(done + j);
    hotNs += Number(process.hrtime.bigint() - t0);
    done += chunk;
    const c0 = process.cpuUsage();
    const r = WRITE ? await counters.flush() : { ok: true, commands: 0, pending: counters.stats().pendingBuckets };
    const c = process.cpuUsage(c0);
    if (!r.ok) throw new Error(`flush failed: ${r.error}`);
    flushCpuUs += c.user + c.system;
    flushes++;
    commands += r.commands;
  }
  return { hotNs, flushCpuUs, flushes, commands };
}

await run(WARMUP);
gc();
gc();

const used = () => v8.getHeapStatistics().used_heap_size;
const YOUNG = new Set(['new_space', 'new_large_object_space']);
const oldUsed = (spaces) => spaces.filter((s) => !YOUNG.has(s.space_name)).reduce((a, s) => a + s.space_used_size, 0);
/** Redis server CPU so far (user + system), in ms. */
const redisCpuMs = async () => {
  const info = await redis.info('cpu');
  const f = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return (f('used_cpu_user') + f('used_cpu_sys')) * 1000;
};
const redisCpu0 = await redisCpuMs();
const profiler = new v8.GCProfiler();
const startUsed = used();
profiler.start();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const { hotNs, flushCpuUs, flushes, commands } = await run(N);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const endUsed = used();
const { statistics } = profiler.stop();
const redisCpu = (await redisCpuMs()) - redisCpu0;

// Allocation: heap growth between collections (plus after the last); promotion: old-space growth
// across each scavenge (young-generation collection).
let allocated = 0;
let promoted = 0;
let after = startUsed;
let scavenges = 0;
let majors = 0;
for (const s of statistics) {
  allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - after);
  after = s.afterGC.heapStatistics.usedHeapSize;
  const spaces = (x) => x.heapSpaceStatistics.map((sp) => ({ space_name: sp.spaceName, space_used_size: sp.spaceUsedSize }));
  if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep' || s.gcType === 'MinorMarkCompact') {
    scavenges++;
    promoted += Math.max(0, oldUsed(spaces(s.afterGC)) - oldUsed(spaces(s.beforeGC)));
  } else majors++;
}
allocated += Math.max(0, endUsed - after);

const s0 = performance.now();
const text = await metrics.registry.metrics();
const scrapeMs = performance.now() - s0;

const fmt = (n, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `requests ${fmt(N)} over ${KEYS} keys / ${IPS} IPs, virtual ${RATE}/s, ${flushes} ${WRITE ? 'flushes' : 'folds without writes (BENCH_FLUSH=0)'} (one per virtual second)`,
);
console.log(`hot path            ${fmt(hotNs / N, 0).padStart(8)} ns/request (wall, synchronous loop)`);
console.log(
  `flush               ${fmt(flushCpuUs / flushes / 1000, 2).padStart(8)} ms CPU/flush   (${fmt(flushCpuUs / N, 3)} µs/request; ${fmt(commands / flushes)} Redis commands per flush)`,
);
if (WRITE)
  console.log(
    `redis-server        ${fmt(redisCpu / flushes, 2).padStart(8)} ms CPU/flush${server ? '' : '   (a shared server: includes its other clients)'}`,
  );
console.log(`whole run           ${fmt(((cpu.user + cpu.system) / N) * 1000, 0).padStart(8)} ns CPU/request   (${fmt(wallMs, 0)} ms wall)`);
console.log(
  `allocated           ${fmt(allocated / N, 0).padStart(8)} B/request   promoted ${fmt(promoted / N, 1)} B/request   (${scavenges} scavenges, ${majors} major GCs)`,
);
console.log(`/metrics render     ${fmt(scrapeMs, 2).padStart(8)} ms (${fmt(text.length)} chars)`);

for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 })) {
  // scanStream returns prefixed names; the client prefixes again, so strip it.
  if (keys.length) await redis.unlink(...keys.map((k) => k.slice(prefix.length)));
}
redis.disconnect();
server?.kill('SIGKILL');
