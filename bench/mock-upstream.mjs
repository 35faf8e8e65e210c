#!/usr/bin/env node
// Mock OpenAI upstream for the bench: plain node:http, pre-built bytes, run as its own process.
//
//   POST /v1/chat/completions   {"stream":false} → chat.completion JSON with usage
//                               {"stream":true}  → SSE chat.completion.chunk events, a usage chunk
//                               when stream_options.include_usage, then data: [DONE]
//   Knobs (header, or query parameter of the same name without the x-mock- prefix):
//     x-mock-events: 66      chunk events per stream (and content tokens + 2 for JSON)
//     x-mock-delay-ms: 0     pause between events; 0 = the whole stream in one write
//     x-mock-write: event    with delay 0, one write per event, each in its own event-loop turn
//                            (setImmediate; same-tick writes would be corked into one writev)
//     x-mock-write: chunk    with delay 0, each event its own HTTP chunk, all in one tick: one
//                            writev, so the proxy reads 66 chunks in one socket read (as from a
//                            model server that flushes per token faster than the proxy reads)
//     x-mock-bytes: N        stream exactly N bytes of SSE in ~16 KiB writes, honouring
//                            backpressure; x-mock-body-bytes / x-mock-body-sha256 announce it
//   GET /__stats → {"open":<streams in flight>,"requests":<total>}; GET / and /healthz → 200.
//
// Prints "MOCK_LISTENING <port>" once listening; exits when stdin closes (its parent is gone).
import http from 'node:http';
import { chatJson, errorJson, largePlan, sseFrames } from './lib/openai.mjs';

const port = Number(process.env.MOCK_PORT ?? 0);
const JSON_HEADERS = { 'content-type': 'application/json', 'openai-version': '2020-10-01', 'x-request-id': 'req_mock' };
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'openai-version': '2020-10-01', 'x-request-id': 'req_mock' };
const OK = Buffer.from('{"status":"ok"}');

const cache = new Map(); // pre-built bodies by (kind, model, events, usage) — bounded
const largeCache = new Map();
let open = 0;
let requests = 0;

function cached(map, key, build) {
  let v = map.get(key);
  if (v === undefined) {
    if (map.size >= 64) map.clear();
    v = build();
    map.set(key, v);
  }
  return v;
}

function knob(req, query, name) {
  const v = req.headers[`x-mock-${name}`] ?? (query === null ? undefined : query.get(name));
  return v === undefined ? undefined : String(v);
}

function send(res, status, headers, body) {
  res.writeHead(status, { ...headers, 'content-length': body.length });
  res.end(body);
}

function track(res) {
  open++;
  res.once('close', () => open--);
}

function stream(res, frames, delay, write) {
  track(res);
  res.writeHead(200, SSE_HEADERS);
  if (delay <= 0 && write === 'chunk') {
    for (const f of frames) res.write(f);
    res.end();
    return;
  }
  if (delay <= 0 && write !== 'event') {
    res.write(frames.whole ?? (frames.whole = Buffer.concat(frames)));
    res.end();
    return;
  }
  let i = 0;
  let timer;
  const tick = () => {
    if (res.destroyed) return;
    res.write(frames[i++]);
    if (i === frames.length) res.end();
    else timer = delay > 0 ? setTimeout(tick, delay) : setImmediate(tick);
  };
  res.once('close', () => (delay > 0 ? clearTimeout(timer) : clearImmediate(timer)));
  tick();
}

function large(res, plan) {
  track(res);
  res.writeHead(200, { ...SSE_HEADERS, 'x-mock-body-bytes': String(plan.bytes), 'x-mock-body-sha256': plan.sha256 });
  let i = 0;
  const pump = () => {
    while (i < plan.frames.length) {
      if (res.destroyed) return;
      if (!res.write(plan.frames[i++])) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

function completions(req, res, query, raw) {
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return send(res, 400, JSON_HEADERS, errorJson('We could not parse the JSON body of your request.'));
  }
  if (body === null || typeof body !== 'object' || !Array.isArray(body.messages)) {
    return send(res, 400, JSON_HEADERS, errorJson("Missing required parameter: 'messages'."));
  }
  const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
  const events = Number(knob(req, query, 'events') ?? 66) || 66;
  const bytes = Number(knob(req, query, 'bytes') ?? 0);
  if (bytes > 0)
    return large(
      res,
      cached(largeCache, bytes, () => largePlan(bytes)),
    );
  if (body.stream !== true) {
    return send(
      res,
      200,
      JSON_HEADERS,
      cached(cache, `j\0${model}\0${events}`, () => chatJson(model, Math.max(0, events - 2))),
    );
  }
  const usage = body.stream_options?.include_usage === true;
  const frames = cached(cache, `s\0${model}\0${events}\0${usage}`, () => sseFrames(model, events, usage));
  stream(res, frames, Number(knob(req, query, 'delay-ms') ?? knob(req, query, 'delay_ms') ?? 0), knob(req, query, 'write'));
}

const server = http.createServer((req, res) => {
  requests++;
  const q = req.url.indexOf('?');
  const path = q === -1 ? req.url : req.url.slice(0, q);
  const query = q === -1 ? null : new URLSearchParams(req.url.slice(q + 1));
  if (req.method === 'POST' && path === '/v1/chat/completions') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => completions(req, res, query, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    return;
  }
  if (req.method === 'GET' && path === '/__stats') {
    return send(res, 200, JSON_HEADERS, Buffer.from(JSON.stringify({ open, requests })));
  }
  if (req.method === 'GET' && (path === '/' || path === '/healthz' || path === '/health')) {
    return send(res, 200, JSON_HEADERS, OK);
  }
  req.resume();
  send(res, 404, JSON_HEADERS, errorJson(`Unknown request URL: ${req.method} ${path}`));
});

// Proxies keep idle upstream connections for up to 60 s (nginx keepalive_timeout): outlive them,
// or a POST can race a close and come back as a 502.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`MOCK_LISTENING ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
