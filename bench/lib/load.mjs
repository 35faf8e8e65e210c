// Closed-loop load with autocannon: throughput, latency, proxy CPU per request, proxy RSS.
import autocannon from 'autocannon';
import { cpuMicros, rssKiB, sleep, summarize } from './proc.mjs';

export const PATH = '/v1/chat/completions';
const MESSAGES = [{ role: 'user', content: 'Write one sentence about foxes.' }];

/** A chat-completions request: body + mock knobs as headers. */
export function chatRequest({ stream = true, events, delayMs, bytes, write } = {}) {
  const body = { model: 'gpt-4o-mini', messages: MESSAGES, stream };
  if (stream) body.stream_options = { include_usage: true };
  const headers = { 'content-type': 'application/json' };
  if (events !== undefined) headers['x-mock-events'] = String(events);
  if (delayMs !== undefined) headers['x-mock-delay-ms'] = String(delayMs);
  if (bytes !== undefined) headers['x-mock-bytes'] = String(bytes);
  if (write !== undefined) headers['x-mock-write'] = write;
  return { path: PATH, method: 'POST', headers, body: JSON.stringify(body) };
}

export const LOAD_SCENARIOS = {
  json: { label: 'JSON', request: chatRequest({ stream: false, events: 66 }) },
  sse: { label: 'SSE 66 ev', request: chatRequest({ events: 66, delayMs: 0 }) },
  // As model servers send it: each event its own HTTP chunk, all 66 in one upstream write.
  ssec: { label: 'SSE 66 ev/chunk', request: chatRequest({ events: 66, delayMs: 0, write: 'chunk' }) },
  sse1: { label: 'SSE 66 ev/write', request: chatRequest({ events: 66, delayMs: 0, write: 'event' }) },
  paced: { label: 'SSE 20 ev/5 ms', request: chatRequest({ events: 20, delayMs: 5 }) },
};

function cannon(opts, onResponse) {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    if (onResponse) inst.on('response', onResponse);
  });
}

/**
 * One scenario at one connection count: a warm-up run, then a measured run bracketed by
 * /proc readings of the proxy's (and the mock's) CPU time.
 */
export async function runLoad({ target, mock, scenario, connections, duration, warmup, services = null }) {
  const { request } = LOAD_SCENARIOS[scenario];
  const opts = {
    url: target.origin + request.path,
    method: request.method,
    headers: { ...request.headers, ...target.headers },
    body: request.body,
    connections,
    pipelining: 1,
    timeout: 10,
  };
  if (warmup > 0) await cannon({ ...opts, duration: warmup });
  await sleep(200); // let aborted warm-up streams settle outside the measured window

  const latencies = [];
  const status = {};
  let responses = 0;
  const onResponse = (_client, code, _bytes, ms) => {
    responses++;
    status[code] = (status[code] ?? 0) + 1;
    if (code >= 200 && code < 300) latencies.push(ms);
  };
  const pids = target.pids();
  const gc0 = target.gcStats?.();
  const cpu0 = cpuMicros(pids);
  const mock0 = cpuMicros([mock.pid]);
  const redis0 = services ? cpuMicros(services.redis()) : 0;
  const pg0 = new Map((services?.postgres() ?? []).map((pid) => [pid, cpuMicros([pid])]));
  const t0 = performance.now();
  const res = await cannon({ ...opts, duration }, onResponse);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuMicros(pids) - cpu0;
  const mockCpu = cpuMicros([mock.pid]) - mock0;
  // Backends that exited during the run take their CPU with them; new ones count from zero.
  const redisCpu = services ? cpuMicros(services.redis()) - redis0 : null;
  let pgCpu = null;
  if (services) {
    pgCpu = 0;
    for (const pid of services.postgres()) pgCpu += cpuMicros([pid]) - (pg0.get(pid) ?? 0);
  }
  await sleep(100); // the last scavenge lines of the run reach us through a pipe
  const gc1 = target.gcStats?.();
  const lat = summarize(latencies);
  return {
    target: target.name,
    scenario,
    connections,
    seconds: round(seconds, 2),
    requests: responses,
    rps: round(responses / seconds, 0),
    p50: round(lat.p50, 2),
    p99: round(lat.p99, 2),
    mean: round(lat.mean, 2),
    errors: res.errors,
    timeouts: res.timeouts,
    non2xx: res.non2xx,
    status,
    cpuUsPerReq: round(cpu / Math.max(1, responses), 1),
    mockCpuUsPerReq: round(mockCpu / Math.max(1, responses), 1),
    // Shared services: on a busy machine these include other clients' work.
    redisCpuUsPerReq: redisCpu === null ? null : round(redisCpu / Math.max(1, responses), 1),
    pgCpuUsPerReq: pgCpu === null ? null : round(pgCpu / Math.max(1, responses), 1),
    rssMiB: round(rssKiB(pids) / 1024, 1),
    // Bytes the proxy's scavenges promoted to old space, per response (Node targets only).
    gcPromotedPerReq: gc0 && gc1 ? round((gc1.promoted - gc0.promoted) / Math.max(1, responses), 0) : null,
    gcAllocatedPerReq: gc0 && gc1 ? round((gc1.allocated - gc0.allocated) / Math.max(1, responses), 0) : null,
  };
}

export const round = (v, d) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);
