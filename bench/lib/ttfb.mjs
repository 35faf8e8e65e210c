// Time to first body byte on paced streams, at low concurrency over kept-alive connections.
import { pool } from './http.mjs';
import { LOAD_SCENARIOS, round } from './load.mjs';
import { summarize } from './proc.mjs';

async function once(client, target, request) {
  const t0 = performance.now();
  const res = await client.request({ ...request, headers: { ...request.headers, ...target.headers } });
  let first = NaN;
  for await (const _chunk of res.body) if (Number.isNaN(first)) first = performance.now() - t0;
  return { ok: res.statusCode === 200, ms: first, status: res.statusCode };
}

export async function runTtfb({ target, n, concurrency }) {
  const { request } = LOAD_SCENARIOS.paced;
  const client = pool(target.origin, concurrency, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const samples = [];
  const status = {};
  let errors = 0;
  try {
    // Warm-up: open (and TLS-handshake) every connection outside the measurement.
    await Promise.all(Array.from({ length: concurrency }, () => once(client, target, request).catch(() => {})));
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        try {
          const r = await once(client, target, request);
          status[r.status] = (status[r.status] ?? 0) + 1;
          if (r.ok) samples.push(r.ms);
          else errors++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await client.destroy().catch(() => {});
  }
  const s = summarize(samples);
  return { target: target.name, n: s.n, concurrency, errors, status, p50: round(s.p50, 2), p99: round(s.p99, 2), mean: round(s.mean, 2) };
}
