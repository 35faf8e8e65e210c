#!/usr/bin/env node
// `npm run bench`: direct, nginx and Fluxgate (one process, and 1 vs N workers) against the same
// mock upstream, one after another.
// Prints a report and writes the raw numbers to bench/results/. See `npm run bench -- --help`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, usage } from './lib/args.mjs';
import { tail } from './lib/children.mjs';
import { cleanupAll, installHandlers, onCleanup } from './lib/cleanup.mjs';
import { fluxgateTarget } from './lib/fluxgate.mjs';
import { LOAD_SCENARIOS, runLoad } from './lib/load.mjs';
import { runOpenStreams } from './lib/open-streams.mjs';
import { CLK_TCK, nofileLimit, rssKiB, sleep } from './lib/proc.mjs';
import { postgresTree, redisPid } from './lib/services.mjs';
import { runSlowReaders } from './lib/slow-readers.mjs';
import { report } from './lib/table.mjs';
import { bareTarget, directTarget, makeCert, nginxTarget, startMock } from './lib/targets.mjs';
import { runTtfb } from './lib/ttfb.mjs';
import { runWorkers } from './lib/workers.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const log = (msg) => process.stderr.write(`${msg}\n`);

function build(root) {
  log(`building (npm run build in ${root})…`);
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? null : `npm run build failed: ${tail(`${r.stdout}\n${r.stderr}`, 300)}`;
}

async function measure(target, ctx, args, results) {
  const phase = async (name, fn) => {
    try {
      return await fn();
    } catch (err) {
      results.errors.push({ target: target.name, phase: name, message: err.message });
      log(`  [${target.name}] ${name} FAILED: ${err.message}`);
      return null;
    }
  };
  // Idle RSS: started, smoke-tested, nothing else yet.
  await sleep(1000);
  results.idle.push({ target: target.name, rssMiB: Math.round(rssKiB(target.pids()) / 102.4) / 10 });
  log(`  [${target.name}] idle RSS ${results.idle.at(-1).rssMiB} MiB`);
  for (const scenario of args.scenarios.filter((s) => s in LOAD_SCENARIOS)) {
    for (const connections of args.conns) {
      const r = await phase(`${scenario}×${connections}`, () =>
        runLoad({ target, mock: ctx.mock, scenario, connections, duration: args.duration, warmup: args.warmup, services: ctx.services }),
      );
      if (!r) continue;
      results.load.push(r);
      log(
        `  [${target.name}] ${scenario}×${connections}: ${r.rps} req/s p50 ${r.p50} p99 ${r.p99} ms, ${r.cpuUsPerReq} µs/req (redis ${r.redisCpuUsPerReq}, pg ${r.pgCpuUsPerReq}), promoted ${r.gcPromotedPerReq ?? '–'} B/req, errors ${r.errors} non2xx ${r.non2xx}`,
      );
    }
  }
  // The limits-off baseline and the bare relay are compared on the load phases only.
  if (target.name === 'fluxgate-nolimits' || target.name === 'bare') return;
  if (args.scenarios.includes('ttfb')) {
    const r = await phase('ttfb', () => runTtfb({ target, n: args.ttfbN, concurrency: args.ttfbConc }));
    if (r) {
      results.ttfb.push(r);
      log(`  [${target.name}] ttfb: p50 ${r.p50} p99 ${r.p99} ms (${r.n} ok, ${r.errors} errors)`);
    }
  }
  // Memory phases start from a fresh proxy process (warmed up briefly), so neither inherits the
  // other's retained heap.
  const fresh = async () => {
    if (!args.fresh) return;
    await target.restart();
    await runLoad({ target, mock: ctx.mock, scenario: 'sse', connections: 32, duration: Math.max(0.5, args.warmup), warmup: 0 });
  };
  if (args.scenarios.includes('open')) {
    const r = await phase(
      'open',
      async () => (
        await fresh(),
        runOpenStreams({
          target,
          mock: ctx.mock,
          streams: args.streams,
          events: args.streamEvents,
          delayMs: args.streamDelay,
          timeoutMs: args.openTimeout * 1000,
        })
      ),
    );
    if (r) {
      results.open.push(r);
      log(
        `  [${target.name}] open: ${r.stillOpen}/${r.requested} open, RSS ${r.rssBeforeMiB} → ${r.rssWithMiB} → ${r.rssAfterMiB} MiB, ${r.kibPerStream} KiB/stream`,
      );
    }
  }
  if (args.scenarios.includes('slow')) {
    const r = await phase(
      'slow',
      async () => (
        await fresh(),
        runSlowReaders({
          target,
          clients: args.slowClients,
          bytes: args.slowBytes,
          bytesPerSec: args.slowRate,
          timeoutMs: args.slowTimeout * 1000,
        })
      ),
    );
    if (r) {
      results.slow.push(r);
      log(`  [${target.name}] slow: ${r.ok}/${r.clients} verified in ${r.seconds} s, RSS max ${r.rssMaxMiB} MiB`);
    }
  }
}

async function startTarget(name, ctx, args, workers = 1) {
  if (name === 'direct') return directTarget(ctx.mock);
  if (name === 'nginx')
    return nginxTarget({
      dir: ctx.dir,
      mock: ctx.mock,
      tls: ctx.tls,
      nginx: args.nginx,
      keepalive: Math.max(64, ...args.conns),
      cpus: args.pin,
    });
  if (name === 'bare') return bareTarget({ mock: ctx.mock, tls: ctx.tls, cpus: args.pin });
  // fluxgate-nolimits: the same process with LIMITS_ENABLED=false, the limits-off baseline.
  const limits = name !== 'fluxgate-nolimits';
  return fluxgateTarget({
    root: name === 'fluxgate-before' ? args.beforeRoot : args.fluxgateRoot || ROOT,
    dir: ctx.dir,
    mock: ctx.mock,
    tls: ctx.tls,
    adminDbUrl: args.databaseUrl,
    redisUrl: args.redisUrl,
    limits,
    name,
    workers,
    cpus: args.pin,
    cpuProf: args.cpuProf,
  });
}

async function main() {
  let args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    log(`${err.message}\n\n${usage()}`);
    process.exit(2);
  }
  if (args.help) return void console.log(usage());
  installHandlers();
  const started = Date.now();
  const dir = mkdtempSync(join(os.tmpdir(), 'fluxgate-bench-'));
  const rm = () => rmSync(dir, { recursive: true, force: true });
  onCleanup('temp dir', async () => rm(), rm);

  const fds = nofileLimit();
  if (args.scenarios.includes('open') && fds < args.streams + 256) {
    log(`open-files limit ${fds} < ${args.streams} streams: lowering to ${fds - 256} (raise with ulimit -n)`);
    args.streams = Math.max(0, fds - 256);
  }
  const results = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      cpu: os.cpus()[0]?.model,
      cores: os.cpus().length,
      clkTck: CLK_TCK,
      loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
      commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout?.trim(),
      args,
    },
    skipped: {},
    errors: [],
    idle: [],
    load: [],
    ttfb: [],
    open: [],
    slow: [],
  };
  if (os.loadavg()[0] > 0.5)
    log(`note: load average ${os.loadavg()[0].toFixed(2)} — something else is using the CPU; numbers will be noisier`);
  if (args.targets.some((t) => t.startsWith('fluxgate') && t !== 'fluxgate-before') && args.build) {
    const why = build(args.fluxgateRoot || ROOT);
    if (why) for (const t of args.targets.filter((x) => x.startsWith('fluxgate') && x !== 'fluxgate-before')) results.skipped[t] = why;
  }
  const pg = postgresTree(args.databaseUrl);
  const redis = await redisPid(args.redisUrl);
  const services = { redis: () => (redis === null ? [] : [redis]), postgres: pg ?? (() => []) };
  const ctx = { dir, tls: makeCert(dir, args.cert), mock: await startMock(), services };
  if (redis === null || pg === null)
    log(`note: no CPU figures for ${[redis === null && 'Redis', pg === null && 'Postgres'].filter(Boolean).join(' and ')}`);
  log(`mock upstream on ${ctx.mock.origin} (pid ${ctx.mock.pid}); temp dir ${dir}`);

  for (const name of args.targets) {
    if (results.skipped[name]) {
      log(`${name}: skipped (${results.skipped[name]})`);
      continue;
    }
    if (name === 'fluxgate-workers') {
      await runWorkers({ ctx, args, results, log, start: (tname, workers) => startTarget(tname, ctx, args, workers) });
      continue;
    }
    let target;
    try {
      target = await startTarget(name, ctx, args);
    } catch (err) {
      results.skipped[name] = err.message;
      log(`${name}: skipped (${err.message})`);
      continue;
    }
    log(`${name}: ${target.origin} (pids ${target.pids().join(',')})`);
    try {
      await measure(target, ctx, args, results);
    } finally {
      await target.stop();
    }
    const dead = ctx.mock.dead();
    if (dead) throw new Error(dead);
  }

  results.meta.seconds = Math.round((Date.now() - started) / 1000);
  const out = args.out || join(ROOT, 'bench/results', `bench-${results.meta.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(report(results));
  const failed = failedChecks(results);
  if (failed.length) console.log(`\nCHECKS FAILED:\n${failed.map((f) => `  ${f}`).join('\n')}`);
  console.log(`\n${results.meta.seconds} s; raw results in ${relative(process.cwd(), out)}`);
  return failed.length === 0;
}

/** What must hold for a run to count: no errors, every stream opened and closed, every byte right. */
function failedChecks(r) {
  const f = r.errors.map((e) => `${e.target} ${e.phase}: ${e.message}`);
  for (const x of r.load) {
    if (x.errors || x.timeouts || x.non2xx)
      f.push(`${x.target} ${x.scenario}×${x.connections}: ${x.errors} errors, ${x.timeouts} timeouts, ${x.non2xx} non-2xx`);
  }
  for (const x of r.ttfb) if (x.errors) f.push(`${x.target} ttfb: ${x.errors} errors`);
  for (const x of r.open) {
    if (x.stillOpen < x.requested) f.push(`${x.target} open: ${x.stillOpen}/${x.requested} streams open at the reading`);
    if (x.upstreamOpenAfter !== 0) f.push(`${x.target} open: ${x.upstreamOpenAfter} upstream streams still open after the clients closed`);
  }
  for (const x of r.slow) if (x.ok < x.clients) f.push(`${x.target} slow: ${x.ok}/${x.clients} clients got exactly the expected bytes`);
  return f;
}

main()
  .then(async (ok) => {
    await cleanupAll();
    process.exit(ok === false ? 1 : 0);
  })
  .catch(async (err) => {
    log(`bench failed: ${err.stack ?? err}`);
    await cleanupAll();
    process.exit(1);
  });
