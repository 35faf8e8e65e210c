/**
 * The streaming pump, proven byte-exact over real TLS with slow readers. Keep these tests: this
 * uWS build corrupts chunked bodies under TLS backpressure when writes overflow its cork buffer
 * (see src/http/sink.ts and README.md here). Every stream must hit real uWS backpressure
 * (sink.backpressureEvents), not only the sink's own pacing (write() → false).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openExchange } from '../../src/http/exchange.js';
import { snapshotRequest } from '../../src/http/request.js';
import { SLICE } from '../../src/http/cork.js';
import { createSink, HIGH_WATER, type SinkStats } from '../../src/http/sink.js';
import type { ResponseSink } from '../../src/http/types.js';
import { curl, request, until } from './client.js';
import { produce, randomBody, sha256, startServer, type ProduceStats, type TestServer } from './server.js';

type Sink = ResponseSink & SinkStats;
const MB = 1024 * 1024;
const MAX_CHUNK = 64 * 1024;
/** What a producer honouring write() → false can have handed over and not yet seen sent. */
const BOUND = HIGH_WATER + MAX_CHUNK;
/** A producer that never meets its backpressure condition stops here, and the test fails. */
const CAP = 192 * MB;

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

/** Serve `chunks` on `path` through a sink; resolves with the sink and producer stats. */
function serve(
  path: string,
  chunks: Iterable<Uint8Array>,
  opts: { contentLength?: number; perTurn?: number; headers?: [string, string][] } = {},
) {
  let sink: Sink | undefined;
  let done!: Promise<ProduceStats>;
  server.on(path, (res, req) => {
    const ex = openExchange(res);
    snapshotRequest(req, res, ex);
    sink = createSink(res, ex);
    sink.startStream(200, opts.headers ?? [['content-type', 'application/octet-stream']], opts.contentLength);
    done = produce(sink, chunks, opts.perTurn ?? 1);
  });
  return {
    sink: () => sink,
    produced: () => done,
    slowReader: () => slowReader(() => sink),
  };
}

/**
 * A reader that makes uWS push back over and over, by conditions rather than timing: it pauses
 * whenever it has nearly caught up with what the sink handed to uWS (so the kernel buffers are
 * nearly empty and the producer refills them all), and resumes once uWS reported backpressure.
 */
function slowReader(sink: () => Sink | undefined) {
  let seen = 0;
  return {
    pauseWhen: (received: number) => {
      const s = sink();
      return s !== undefined && !s.finished && s.bytesWritten - s.queuedBytes - received < 64 * 1024;
    },
    resumeWhen: () => {
      const s = sink();
      if (s && !s.finished && s.backpressureEvents <= seen) return false;
      seen = s?.backpressureEvents ?? 0;
      return true;
    },
  };
}

/** Event `i` of an SSE stream: exact 66-byte events alternating with 10..400-byte payloads. */
function sseEvent(i: number): Buffer {
  // 66 bytes: `data: {"id":NNNNNNNN,"delta":"…"}\n\n`
  const text =
    i % 2 === 0
      ? `data: {"id":${String(i).padStart(8, '0')},"delta":"abcdefghijklmnopqrstuvwxyz012345"}\n\n`
      : `data: {"id":${i},"delta":"${'z'.repeat(10 + ((i * 7919) % 390))}"}\n\n`;
  return Buffer.from(text);
}

/** Random upstream-sized chunks (1..64 KiB). */
const randomChunk = (): Buffer => randomBytes(1 + Math.floor(Math.random() * MAX_CHUNK));

/**
 * A lazy upstream that keeps producing until it has sent at least `minBytes` AND uWS has pushed
 * back at least `minEvents` times: how much the kernel absorbs per pause depends on TCP
 * autotuning (tcp_rmem up to 32 MB here), so a fixed size cannot promise a number of
 * backpressure events. Hashes what it produced on the fly.
 */
function untilBackpressure(sink: () => Sink | undefined, make: (i: number) => Buffer, minBytes: number, minEvents: number) {
  const hash = createHash('sha256');
  let length = 0;
  let small = 0;
  function* chunks(): Generator<Buffer> {
    for (let i = 0; length < CAP; i++) {
      if (length >= minBytes && (sink()?.backpressureEvents ?? 0) >= minEvents) return;
      const b = make(i);
      if (b.length === 66) small++;
      hash.update(b);
      length += b.length;
      yield b;
    }
  }
  let digest: string | undefined;
  return { chunks: chunks(), length: () => length, small: () => small, sha256: () => (digest ??= hash.digest('hex')) };
}

/** Serve a lazy body produced until `minEvents` backpressure events (see untilBackpressure). */
function serveUntil(
  path: string,
  make: (i: number) => Buffer,
  minBytes: number,
  minEvents: number,
  opts: { perTurn?: number; headers?: [string, string][] } = {},
) {
  let served: ReturnType<typeof serve> | undefined = undefined;
  const body = untilBackpressure(() => served?.sink(), make, minBytes, minEvents);
  served = serve(path, body.chunks, opts);
  return { ...served, body };
}

/**
 * Reads the response over TLS 1.2 on a tapped TCP socket, counting the application-data
 * records (type 23) the server sent: one per uWS cork region flushed. (TLS 1.2, because 1.3
 * also carries session tickets in type-23 records.)
 */
function readCountingRecords(path: string, untilText: string) {
  return new Promise<{ text: string; records: number }>((resolve, reject) => {
    let records = 0;
    // A TCP relay in front of the server parses the TLS record headers going to the client.
    const relay = createNetServer((client) => {
      const up = netConnect({ host: '127.0.0.1', port: server.port });
      let pending = Buffer.alloc(0);
      up.on('data', (d: Buffer) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
          if (pending[0] === 23) records++;
          pending = pending.subarray(5 + pending.readUInt16BE(3));
        }
        client.write(d);
      });
      client.on('data', (d: Buffer) => up.write(d));
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
    }).listen(0, '127.0.0.1');
    relay.once('listening', () => {
      const raw = netConnect({ host: '127.0.0.1', port: (relay.address() as AddressInfo).port });
      const socket = connect(
        { socket: raw, ca: readFileSync(server.cert.certPath), servername: 'localhost', maxVersion: 'TLSv1.2' },
        () => {
          socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
        },
      );
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString();
        if (!text.includes(untilText)) return;
        resolve({ text, records });
        socket.destroy();
        relay.close();
      });
      socket.once('error', reject);
    });
  });
}

/** The payload of an HTTP/1.1 chunked body (strict: any framing error throws). */
function dechunk(wire: string): string {
  let out = '';
  for (let at = 0; ;) {
    const eol = wire.indexOf('\r\n', at);
    if (eol < 0) throw new Error(`chunk-size line missing at ${at}`);
    const size = Number.parseInt(wire.slice(at, eol), 16);
    if (!Number.isFinite(size)) throw new Error(`bad chunk-size line at ${at}`);
    if (size === 0) {
      if (wire.slice(eol) !== '\r\n\r\n') throw new Error('bytes after the last chunk');
      return out;
    }
    out += wire.slice(eol + 2, eol + 2 + size);
    if (wire.slice(eol + 2 + size, eol + 4 + size) !== '\r\n') throw new Error(`chunk at ${at} not followed by CRLF`);
    at = eol + 4 + size;
  }
}

describe('sink over TLS: slow readers get every byte', () => {
  it('SSE: 8+ MB of small events, one write per event, throttled reader → identical SHA-256', async () => {
    const s = serveUntil('/sse', sseEvent, 8 * MB, 3, {
      perTurn: Infinity,
      headers: [
        ['content-type', 'text/event-stream'],
        ['cache-control', 'no-cache'],
      ],
    });
    const res = await request({ port: server.port, path: '/sse', ...s.slowReader() });
    const stats = await s.produced();
    expect(res.status).toBe(200);
    expect(res.chunked).toBe(true);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(s.body.small()).toBeGreaterThan(20_000);
    expect(res.length).toBe(s.body.length());
    expect(res.sha256).toBe(s.body.sha256());
    expect(s.sink()!.backpressureEvents).toBeGreaterThanOrEqual(3);
    expect(stats.refusals).toBeGreaterThanOrEqual(2);
  });

  it('SSE ended while uWS pushes back: the last slice carries the zero chunk from onWritable, throttled reader → identical SHA-256', async () => {
    const hash = createHash('sha256');
    let length = 0;
    let sink: Sink | undefined;
    let atEnd: { queued: number; events: number } | undefined;
    server.on('/end-in-last', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      const s = createSink(res, ex);
      sink = s;
      s.startStream(200, [['content-type', 'text/event-stream']]);
      let i = 0;
      const event = () => {
        const e = sseEvent(i++);
        hash.update(e);
        length += e.length;
        return e;
      };
      // Bursts of small events until write() refuses. Once uWS has pushed back 3 times, a last
      // burst of 8 MB (more than the kernel buffers take from a paused reader) and end() at once:
      // the zero chunk can only leave with the last slice, pumped after further backpressure.
      const burst = () => {
        if (atEnd) return;
        while (s.write(event()));
        if (s.backpressureEvents < 3) return;
        for (const stop = length + 8 * MB; length < stop;) s.write(event());
        atEnd = { queued: s.queuedBytes, events: s.backpressureEvents };
        s.end();
      };
      s.onDrain(() => setImmediate(burst));
      burst();
    });
    const res = await request({ port: server.port, path: '/end-in-last', ...slowReader(() => sink) });
    expect(res.status).toBe(200);
    expect(res.chunked).toBe(true);
    expect(res.length).toBe(length);
    expect(res.sha256).toBe(hash.digest('hex'));
    expect(atEnd!.queued).toBeGreaterThan(8 * MB);
    expect(sink!.backpressureEvents).toBeGreaterThan(atEnd!.events); // uWS pushed back after end()
    expect(sink!.finished).toBe(true);
  });

  it('chunked: 24+ MB in random 1-64 KiB upstream chunks, throttled node:tls reader → identical SHA-256', async () => {
    const s = serveUntil('/big-chunked', randomChunk, 24 * MB, 6);
    const res = await request({ port: server.port, path: '/big-chunked', ...s.slowReader() });
    const stats = await s.produced();
    expect(res.chunked).toBe(true);
    expect(res.length).toBeGreaterThanOrEqual(24 * MB);
    expect(res.length).toBe(s.body.length());
    expect(res.sha256).toBe(s.body.sha256());
    expect(s.sink()!.backpressureEvents).toBeGreaterThanOrEqual(6);
    expect(stats.maxOutstanding).toBeLessThanOrEqual(BOUND);
  });

  it('chunked: 24+ MB read by curl --limit-rate 16M → exit 0 and identical SHA-256', async () => {
    const s = serveUntil('/curl-chunked', randomChunk, 24 * MB, 3);
    const out = await curl(`https://localhost:${server.port}/curl-chunked`, server.cert.certPath, '16M');
    await s.produced();
    expect(out.stderr).toBe('');
    expect(out.exitCode).toBe(0);
    expect(out.length).toBe(s.body.length());
    expect(out.sha256).toBe(s.body.sha256());
    expect(s.sink()!.backpressureEvents).toBeGreaterThanOrEqual(3);
  });

  it('known length (tryEnd): 24+ MB, throttled node:tls reader and curl --limit-rate → identical SHA-256', async () => {
    // A known length must be fixed up front, so the size doubles (at most twice) until uWS has
    // pushed back often enough; every attempt must be exact.
    let events = 0;
    for (let size = 24 * MB, attempt = 0; attempt < 3 && events < 6; size *= 2, attempt++) {
      const { body, chunks } = randomBody(size, MAX_CHUNK);
      const s = serve(`/big-fixed-${attempt}`, chunks, { contentLength: body.length });
      const res = await request({ port: server.port, path: `/big-fixed-${attempt}`, ...s.slowReader() });
      await s.produced();
      expect(res.chunked).toBe(false);
      expect(res.headers.get('content-length')).toBe(String(body.length));
      expect(res.length).toBe(body.length);
      expect(res.sha256).toBe(sha256(body));
      events = s.sink()!.backpressureEvents;
    }
    expect(events).toBeGreaterThanOrEqual(6);

    events = 0;
    for (let size = 24 * MB, attempt = 0; attempt < 3 && events < 3; size *= 2, attempt++) {
      const { body, chunks } = randomBody(size, MAX_CHUNK);
      const c = serve(`/curl-fixed-${attempt}`, chunks, { contentLength: body.length });
      const out = await curl(`https://localhost:${server.port}/curl-fixed-${attempt}`, server.cert.certPath, '16M');
      await c.produced();
      expect(out.exitCode).toBe(0);
      expect(out.length).toBe(body.length);
      expect(out.sha256).toBe(sha256(body));
      events = c.sink()!.backpressureEvents;
    }
    expect(events).toBeGreaterThanOrEqual(3);
  });

  it('large bodies written synchronously inside the uWS handler (corked by uWS) stay exact', async () => {
    const { body, chunks } = randomBody(4 * MB, MAX_CHUNK);
    let sendSink: Sink | undefined;
    server.on('/in-handler-send', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      sendSink = createSink(res, ex);
      sendSink.send(200, [['content-type', 'application/octet-stream']], body);
    });
    const a = await request({ port: server.port, path: '/in-handler-send', ...slowReader(() => sendSink) });
    expect(a.sha256).toBe(sha256(body));
    expect(sendSink!.backpressureEvents).toBeGreaterThanOrEqual(1);

    let burst: Sink | undefined;
    server.on('/in-handler-burst', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      burst = createSink(res, ex);
      burst.startStream(200, []);
      for (const c of chunks) burst.write(c); // ignores false on purpose: bytes are still delivered
      burst.end();
    });
    const b = await request({ port: server.port, path: '/in-handler-burst' });
    expect(b.sha256).toBe(sha256(body));
    expect(burst!.peakQueuedBytes).toBeGreaterThan(MB); // the misbehaving producer is what grew it
  });
});

describe('sink: backpressure, idleness and aborts', () => {
  it('memory stays bounded: a producer honouring write() → false has at most one chunk outstanding while the reader stalls', async () => {
    const { chunks } = randomBody(16 * MB, MAX_CHUNK);
    const s = serve('/stall', chunks);
    let stalled = true;
    const reading = request({ port: server.port, path: '/stall', quantum: 64 * 1024, resumeWhen: () => !stalled });
    // The reader stops after 64 KiB; wait until uWS pushes back and the producer is parked.
    await until(() => (s.sink()?.backpressureEvents ?? 0) >= 1, 'backpressure while stalled');
    const sink = s.sink()!;
    expect(sink.queuedBytes).toBeLessThanOrEqual(BOUND);
    expect(sink.bytesWritten).toBeLessThan(8 * MB); // the rest stayed with the producer
    stalled = false;
    const res = await reading;
    const stats = await s.produced();
    expect(res.length).toBe(16 * MB);
    expect(stats.refusals).toBeGreaterThan(0);
    expect(stats.maxOutstanding).toBeLessThanOrEqual(BOUND);
    expect(sink.peakQueuedBytes).toBeLessThanOrEqual(BOUND);
  });

  it('an idle stream flushes what it holds and stays exact when writes resume', async () => {
    const first = randomBody(8 * MB, MAX_CHUNK);
    const second = randomBody(MB, 4096);
    let sink: Sink | undefined;
    let received = 0;
    let idle = false;
    let phase: Promise<void> | undefined;
    server.on('/idle', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      const s = createSink(res, ex);
      sink = s;
      s.startStream(200, [['content-type', 'text/event-stream']]);
      phase = (async () => {
        const rest = first.chunks[Symbol.iterator]();
        // While the reader is paused, write until uWS itself pushes back.
        while (s.backpressureEvents === 0) {
          const n = rest.next();
          if (n.done) throw new Error('never hit backpressure');
          if (s.write(n.value)) continue;
          let drained = false;
          s.onDrain(() => (drained = true));
          await until(() => drained || s.backpressureEvents > 0, 'drain or backpressure');
        }
        // Idle with bytes still held by the sink, uWS and the kernel: nothing is written until
        // the client has every byte so far, so the sink must flush them on its own.
        idle = true;
        await until(() => received === s.bytesWritten, 'client caught up while the producer idles');
        await produce(s, [...rest, ...second.chunks]);
      })();
    });
    const res = await request({
      port: server.port,
      path: '/idle',
      quantum: 128 * 1024,
      resumeWhen: () => idle,
      onBody: (n) => (received = n),
    });
    await phase;
    const all = Buffer.concat([first.body, second.body]);
    expect(sink!.finished).toBe(true);
    expect(res.length).toBe(all.length);
    expect(res.sha256).toBe(sha256(all));
  });

  it('client abort mid-stream: onAbort fires once, later writes are no-ops, nothing throws', async () => {
    let sink: Sink | undefined;
    let aborts = 0;
    let afterAbort: { write: boolean; bytes: number } | undefined;
    const aborted = new Promise<void>((resolve) => {
      server.on('/abort', (res, req) => {
        const ex = openExchange(res);
        snapshotRequest(req, res, ex);
        const s = createSink(res, ex);
        sink = s;
        s.onAbort(() => {
          aborts++;
          const bytes = s.bytesWritten;
          afterAbort = { write: s.write(new Uint8Array(1000)), bytes: s.bytesWritten - bytes };
          s.end();
          s.close();
          s.send(500, [], 'x');
          resolve();
        });
        s.startStream(200, []);
        const chunk = new Uint8Array(32 * 1024);
        const pump = () => {
          while (!s.finished && s.write(chunk));
        };
        s.onDrain(pump);
        pump();
      });
    });
    const res = await request({ port: server.port, path: '/abort', abortAfter: 2 * MB });
    expect(res.length).toBeGreaterThanOrEqual(2 * MB);
    await aborted;
    expect(aborts).toBe(1);
    expect(afterAbort).toEqual({ write: false, bytes: 0 });
    expect(sink!.aborted).toBe(true);
    expect(sink!.finished).toBe(true);
    expect(sink!.queuedBytes).toBe(0);
  });

  it('the head rides with the first body slice: a small streamed response is one TLS record, and a head alone still goes out', async () => {
    server.on('/coalesced', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      const s = createSink(res, ex);
      // Outside uWS's own cork region of the handler, as when an upstream answers later.
      setImmediate(() => {
        s.startStream(
          200,
          [
            ['content-type', 'application/json'],
            ['x-a', 'b'],
          ],
          11,
        );
        s.write(Buffer.from('{"ok":true}'));
        s.end();
      });
    });
    let waiting: Sink | undefined;
    server.on('/head-only', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      waiting = createSink(res, ex);
      waiting.startStream(200, [['content-type', 'application/json']], 2);
    });
    const one = await readCountingRecords('/coalesced', '{"ok":true}');
    expect(one.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(one.text).toContain('x-a: b\r\n');
    expect(one.text.endsWith('\r\n\r\n{"ok":true}')).toBe(true);
    expect(one.records).toBe(1);
    // Nothing more comes in the same turn: the head is flushed on its own.
    const alone = await readCountingRecords('/head-only', '\r\n\r\n');
    expect(alone.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: 2\r\n\r\n$/i);
    expect(alone.records).toBe(1);
    expect(waiting!.headersSent).toBe(true);
  });

  it('a 66-event stream arriving in one upstream read leaves in at most a few TLS records, ending in the last one, byte for byte', async () => {
    // As undici delivers a model server's stream whose events are each their own HTTP chunk but
    // arrived in one socket read: 66 write() calls in one turn, then end(). OpenAI-sized events.
    const events = Array.from({ length: 66 }, (_, i) =>
      Buffer.from(
        `data: {"id":"chatcmpl-${String(i).padStart(6, '0')}","object":"chat.completion.chunk","created":1735689600,` +
          `"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_bench0001","choices":[{"index":0,"delta":{"content":" fox"},"logprobs":null,"finish_reason":null}]}\n\n`,
      ),
    );
    const body = Buffer.concat(events);
    let sink: Sink | undefined;
    server.on('/one-read', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      sink = createSink(res, ex);
      // Outside uWS's cork region of the handler, as an upstream read is.
      setImmediate(() => {
        sink!.startStream(200, [['content-type', 'text/event-stream']]);
        for (const e of events) sink!.write(e);
        sink!.end();
      });
    });
    const got = await readCountingRecords('/one-read', '\r\n0\r\n\r\n');
    const split = got.text.indexOf('\r\n\r\n');
    expect(got.text.slice(0, split)).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*transfer-encoding: chunked/i);
    expect(dechunk(got.text.slice(split + 4))).toBe(body.toString());
    expect(sink!.finished).toBe(true);
    // One region per SLICE of body; the head rides in the first and the zero chunk in the last.
    expect(body.length).toBeGreaterThan(SLICE); // so the stream needs two regions, not one
    expect(got.records).toBeLessThanOrEqual(Math.ceil(body.length / SLICE) + 1);
  });

  it('close() drops the connection without reporting a client abort; send() maps status text and drops framing headers', async () => {
    let closedSink: Sink | undefined;
    let abortCalls = 0;
    server.on('/close', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      closedSink = createSink(res, ex);
      closedSink.onAbort(() => abortCalls++);
      closedSink.startStream(200, [], 1000);
      closedSink.write(new Uint8Array(10));
      setImmediate(() => closedSink!.close());
    });
    await expect(request({ port: server.port, path: '/close' })).rejects.toThrow(/closed mid-response/);
    expect(closedSink!.finished).toBe(true);
    expect(abortCalls).toBe(0);

    server.on('/teapot', (res, req) => {
      const ex = openExchange(res);
      snapshotRequest(req, res, ex);
      createSink(res, ex).send(
        418,
        [
          ['content-type', 'application/json'],
          ['content-length', '999'],
          ['date', 'yesterday'],
          ['x-bad', 'a\r\nb'],
          ['x-ok', 'yes'],
        ],
        '{"ok":false}',
      );
    });
    const t = await request({ port: server.port, path: '/teapot', keepBody: true });
    expect(t.status).toBe(418);
    expect(t.headers.get('content-length')).toBe('12');
    expect(t.headers.get('x-ok')).toBe('yes');
    expect(t.headers.has('x-bad')).toBe(false);
    expect(t.headers.get('date')).not.toBe('yesterday'); // uWS's own Date, once (the parser rejects duplicates)
    expect(t.headers.has('uwebsockets')).toBe(false); // loadUws() silences the server mark
    expect(t.body?.toString()).toBe('{"ok":false}');
  });
});
