// Slow readers: many clients each read a large stream at a throttled rate while the proxy's RSS
// is sampled. Every client must get exactly the mock's bytes (count and SHA-256).
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { pool } from './http.mjs';
import { chatRequest, round } from './load.mjs';
import { largePlan } from './openai.mjs';
import { rssKiB, sleep } from './proc.mjs';

function readThrottled(body, bytesPerSec, signal) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const t0 = performance.now();
    let bytes = 0;
    let timer;
    signal.addEventListener('abort', () => (clearTimeout(timer), body.destroy(new Error('time limit'))), { once: true });
    body.on('data', (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
      const wait = t0 + (bytes / bytesPerSec) * 1000 - performance.now();
      if (wait > 2) {
        body.pause();
        timer = setTimeout(() => body.resume(), wait);
      }
    });
    body.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    body.once('error', (err) => reject(Object.assign(err, { bytes })));
  });
}

export async function runSlowReaders({ target, clients, bytes, bytesPerSec, timeoutMs, sampleMs = 250 }) {
  const plan = largePlan(bytes);
  const request = chatRequest({ bytes: plan.bytes });
  const headers = { ...request.headers, ...target.headers };
  const pids = target.pids();
  const client = pool(target.origin, clients, { headersTimeout: 10_000, bodyTimeout: timeoutMs });
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // two listeners per client
  const limit = setTimeout(() => ac.abort(), timeoutMs);
  const samples = [rssKiB(pids)];
  const sampler = setInterval(() => samples.push(rssKiB(pids)), sampleMs);
  const results = { ok: 0, wrongBytes: 0, wrongHash: 0, failed: {} };
  const t0 = performance.now();
  const one = async () => {
    try {
      const res = await client.request({ ...request, headers, signal: ac.signal });
      if (res.statusCode !== 200) {
        await res.body.text().catch(() => {});
        throw new Error(`HTTP ${res.statusCode}`);
      }
      const announced = res.headers['x-mock-body-sha256'];
      const got = await readThrottled(res.body, bytesPerSec, ac.signal);
      if (got.bytes !== plan.bytes) results.wrongBytes++;
      else if (got.sha256 !== plan.sha256 || (announced !== undefined && announced !== plan.sha256)) results.wrongHash++;
      else results.ok++;
    } catch (err) {
      const k = err.code ?? err.message;
      results.failed[k] = (results.failed[k] ?? 0) + 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, one));
  } finally {
    clearTimeout(limit);
    clearInterval(sampler);
    await client.destroy().catch(() => {});
  }
  const seconds = (performance.now() - t0) / 1000;
  await sleep(500);
  const final = rssKiB(pids);
  const mib = (k) => round(k / 1024, 1);
  return {
    target: target.name,
    clients,
    bytesEach: plan.bytes,
    mbPerSecEach: round(bytesPerSec / 1e6, 2),
    seconds: round(seconds, 1),
    ...results,
    rssMinMiB: mib(Math.min(...samples)),
    rssMaxMiB: mib(Math.max(...samples)),
    rssFinalMiB: mib(final),
    samples: samples.length,
  };
}
