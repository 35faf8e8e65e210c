// fluxgate-workers: the 1-vs-N-workers comparison. A one-process data plane and an N-process one
// (DATA_PLANE_WORKERS: N processes on one port) run side by side, and each load cell measures
// them alternately, ABBA over --rounds, so whatever else loads a shared machine falls on both
// alike instead of on whichever target happened to run during it. Rows are named fluxgate-w1 and
// fluxgate-w<N>; CPU per request is summed over each target's processes.
import { LOAD_SCENARIOS, runLoad } from './load.mjs';

export async function runWorkers({ ctx, args, results, log, start }) {
  const targets = [];
  try {
    for (const n of [1, args.workers]) targets.push(await start(`fluxgate-w${n}`, n));
  } catch (err) {
    await Promise.all(targets.map((t) => t.stop()));
    results.skipped['fluxgate-workers'] = err.message;
    log(`fluxgate-workers: skipped (${err.message})`);
    return;
  }
  for (const t of targets) log(`${t.name}: ${t.origin} (pids ${t.pids().join(',')})`);
  try {
    // Every worker compiles its own hot paths: warm each process up before any round counts, or
    // the first round of N workers pays N JIT warm-ups and one worker pays one.
    for (const target of targets) {
      for (const scenario of ['json', 'sse'])
        await runLoad({ target, mock: ctx.mock, scenario, connections: 32, duration: Math.max(2, args.warmup), warmup: 0 });
    }
    for (const scenario of args.scenarios.filter((s) => s in LOAD_SCENARIOS)) {
      for (const connections of args.conns) {
        for (let round = 0; round < args.rounds; round++) {
          for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
            const phase = `${scenario}×${connections} round ${round + 1}`;
            try {
              const r = await runLoad({ target, mock: ctx.mock, scenario, connections, duration: args.duration, warmup: args.warmup });
              results.load.push({ ...r, workers: target.workers, round: round + 1 });
              log(
                `  [${target.name}] ${phase}: ${r.rps} req/s p99 ${r.p99} ms, ${r.cpuUsPerReq} µs/req, errors ${r.errors} non2xx ${r.non2xx}`,
              );
            } catch (err) {
              results.errors.push({ target: target.name, phase, message: err.message });
              log(`  [${target.name}] ${phase} FAILED: ${err.message}`);
            }
          }
        }
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
}
