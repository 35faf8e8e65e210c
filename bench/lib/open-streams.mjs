// RSS with many concurrent open (slowly paced) streams: open them all, wait until each has its
// first byte, read the proxy's RSS, close them all, and check the upstream streams closed too.
import { setMaxListeners } from 'node:events';
import { pool, requestText } from './http.mjs';
import { chatRequest, round } from './load.mjs';
import { rssKiB, sleep } from './proc.mjs';

const noop = () => {};

async function mockOpen(mock) {
  try {
    return JSON.parse((await requestText(mock.origin, { path: '/__stats', method: 'GET' }, 2_000)).text).open;
  } catch {
    return null;
  }
}

function firstByte(body) {
  return new Promise((resolve, reject) => {
    body.once('data', resolve);
    body.once('error', reject);
    body.once('end', () => reject(new Error('ended before the first byte')));
  });
}

export async function runOpenStreams({ target, mock, streams, events, delayMs, timeoutMs, openConcurrency = 256 }) {
  const request = chatRequest({ events, delayMs });
  const headers = { ...request.headers, ...target.headers };
  const pids = target.pids();
  const before = rssKiB(pids);
  const client = pool(target.origin, streams + 8, { headersTimeout: timeoutMs, bodyTimeout: 0, keepAliveTimeout: 5_000 });
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // one listener per stream
  const deadline = Date.now() + timeoutMs;
  const failures = {};
  let started = 0;
  let opened = 0;
  let endedEarly = 0;
  const openOne = async () => {
    const res = await client.request({ ...request, headers, signal: ac.signal });
    if (res.statusCode !== 200) {
      await res.body.text().catch(noop);
      throw new Error(`HTTP ${res.statusCode}`);
    }
    res.body.on('error', noop);
    await firstByte(res.body);
    res.body.on('data', noop);
    res.body.once('end', () => endedEarly++);
  };
  const opener = async () => {
    while (started < streams && Date.now() < deadline && !ac.signal.aborted) {
      started++;
      try {
        await openOne();
        opened++;
      } catch (err) {
        const k = err.code ?? err.message;
        failures[k] = (failures[k] ?? 0) + 1;
      }
    }
  };
  const t0 = performance.now();
  await Promise.race([Promise.all(Array.from({ length: openConcurrency }, opener)), sleep(timeoutMs)]);
  const openSeconds = (performance.now() - t0) / 1000;
  await sleep(1_000);
  const withStreams = rssKiB(pids);
  const upstreamOpen = await mockOpen(mock);
  const stillOpen = opened - endedEarly;

  ac.abort();
  await client.destroy().catch(noop);
  let upstreamOpenAfter = await mockOpen(mock);
  for (let i = 0; i < 20 && upstreamOpenAfter !== 0; i++) {
    await sleep(250);
    upstreamOpenAfter = await mockOpen(mock);
  }
  await sleep(1_000);
  const after = rssKiB(pids);
  return {
    target: target.name,
    requested: streams,
    opened,
    stillOpen,
    endedEarly,
    failures,
    openSeconds: round(openSeconds, 1),
    upstreamOpen,
    upstreamOpenAfter,
    rssBeforeMiB: round(before / 1024, 1),
    rssWithMiB: round(withStreams / 1024, 1),
    rssAfterMiB: round(after / 1024, 1),
    kibPerStream: round((withStreams - before) / Math.max(1, stillOpen), 1),
  };
}
