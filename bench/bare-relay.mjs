#!/usr/bin/env node
// The bench's "bare" reference target: the least a uWS + undici relay can do. A uWS SSLApp takes
// any request, reads its body, and hands it to one undici Pool with dispatch() and a handler
// object (no promise or stream wrapper per request); the answer goes back with the textbook uWS
// pattern, one res.cork(write) per upstream chunk, pausing undici while uWS pushes back. No auth,
// no limits, no counters, no header filtering beyond hop-by-hop. It shows what the runtime itself
// costs, so Fluxgate's own cost is the difference. (The textbook pattern is NOT exact over TLS
// under backpressure with big chunks, see data-plane/src/http/cork.ts; the load scenarios never
// get there, and the bench runs no slow readers against this target.)
//
// Env: BARE_PORT, BARE_UPSTREAM (origin), BARE_CERT, BARE_KEY. Prints "BARE_LISTENING <port>".
import { createRequire } from 'node:module';
import { Pool } from 'undici';

const require = createRequire(import.meta.url);
const uws = require(`uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
uws._cfg('silent');

const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
]);
const pool = new Pool(process.env.BARE_UPSTREAM, { connections: 4096, pipelining: 1, keepAliveTimeout: 60_000 });
const EMPTY = new Uint8Array(0);

/** One request: the undici dispatch handler, writing straight into the uWS response. */
class Relay {
  constructor(res) {
    this.res = res;
    this.controller = null;
    this.status = 0;
    this.headers = null;
    this.headSent = false;
    this.aborted = false;
    this.paused = false;
  }

  writeHead() {
    this.headSent = true;
    this.res.writeStatus(String(this.status));
    const h = this.headers;
    for (const name in h) {
      if (HOP.has(name)) continue;
      const v = h[name];
      if (Array.isArray(v)) for (const x of v) this.res.writeHeader(name, x);
      else if (v !== undefined) this.res.writeHeader(name, v);
    }
  }

  onRequestStart(controller) {
    this.controller = controller;
    if (this.aborted) controller.abort(new Error('client aborted'));
  }

  onResponseStart(_c, status, headers) {
    this.status = status;
    this.headers = headers;
  }

  onResponseData(controller, chunk) {
    if (this.aborted) return;
    let ok = true;
    this.res.cork(() => {
      if (!this.headSent) this.writeHead();
      ok = this.res.write(chunk);
    });
    if (!ok && !this.paused) {
      this.paused = true;
      controller.pause();
      this.res.onWritable(() => {
        this.paused = false;
        controller.resume();
        return true;
      });
    }
  }

  onResponseEnd() {
    if (this.aborted) return;
    this.aborted = true; // done: never touch res again
    this.res.cork(() => {
      if (!this.headSent) this.writeHead();
      this.res.end();
    });
  }

  onResponseError(_c, err) {
    if (this.aborted) return;
    this.aborted = true;
    const res = this.res;
    res.cork(() => {
      if (this.headSent) return res.close();
      res.writeStatus('502 Bad Gateway').writeHeader('content-type', 'application/json');
      res.end(`{"error":${JSON.stringify(String(err?.message ?? err))}}`);
    });
  }
}

const app = uws.SSLApp({ cert_file_name: process.env.BARE_CERT, key_file_name: process.env.BARE_KEY });
app.any('/*', (res, req) => {
  const method = req.getMethod().toUpperCase();
  const query = req.getQuery();
  const path = query ? `${req.getUrl()}?${query}` : req.getUrl();
  const headers = [];
  req.forEach((k, v) => {
    if (!HOP.has(k)) headers.push(k, v);
  });
  const relay = new Relay(res);
  res.onAborted(() => {
    relay.aborted = true;
    relay.controller?.abort(new Error('client aborted'));
  });
  const dispatch = (body) => pool.dispatch({ path, method, headers, body }, relay);
  if (method === 'GET' || method === 'HEAD') return dispatch(null);
  let parts = [];
  res.onData((ab, last) => {
    parts.push(Buffer.from(ab.slice(0))); // uWS reuses the ArrayBuffer after this call
    if (!last) return;
    const body = parts.length === 1 ? parts[0] : parts.length === 0 ? EMPTY : Buffer.concat(parts);
    parts = [];
    dispatch(body);
  });
});
app.listen('127.0.0.1', Number(process.env.BARE_PORT ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('bare relay: listen failed\n');
    process.exit(1);
  }
  process.stdout.write(`BARE_LISTENING ${uws.us_socket_local_port(socket)}\n`);
});
process.on('SIGTERM', () => process.exit(0));
