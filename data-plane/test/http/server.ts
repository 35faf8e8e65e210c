/**
 * A real uWS TLS server on 127.0.0.1:0 for the http/ integration tests. Tests install a handler
 * per path; the handler receives uWS's res/req exactly as a route binding would.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeAll, createTlsApp, listen, loadUws, type HttpRequest, type HttpResponse } from '../../src/http/uws.js';
import type { ResponseSink } from '../../src/http/types.js';
import { makeTestCert, type TestCert } from '../support/tls.js';

export type Handler = (res: HttpResponse, req: HttpRequest) => void;

export interface TestServer {
  port: number;
  cert: TestCert;
  on(path: string, handler: Handler): void;
  close(): Promise<void>;
}

export async function startServer(): Promise<TestServer> {
  const cert = await makeTestCert();
  const app = createTlsApp(loadUws(), { certPath: cert.certPath, keyPath: cert.keyPath });
  const handlers = new Map<string, Handler>();
  app.any('/*', (res, req) => {
    const handler = handlers.get(req.getUrl());
    if (handler) return handler(res, req);
    res.writeStatus('404 Not Found').end('no test handler');
  });
  const listening = await listen(app, '127.0.0.1', 0);
  return {
    port: listening.port,
    cert,
    on: (path, handler) => handlers.set(path, handler),
    async close() {
      listening.close();
      closeAll(app);
      await cert.cleanup();
    },
  };
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Deterministic-enough test body and a chunking of it into upstream-sized pieces (1..max). */
export function randomBody(size: number, maxChunk: number): { body: Buffer; chunks: Buffer[] } {
  const body = randomBytes(size);
  const chunks: Buffer[] = [];
  for (let off = 0; off < size;) {
    const n = Math.min(size - off, 1 + Math.floor(Math.random() * maxChunk));
    chunks.push(body.subarray(off, off + n));
    off += n;
  }
  return { body, chunks };
}

export interface ProduceStats {
  /** write() returned false (the producer paused). */
  refusals: number;
  /** Largest amount the sink held after any write (bytes not yet handed to uWS). */
  maxOutstanding: number;
  writes: number;
}

/**
 * An upstream-like producer: honours write() → false by waiting for onDrain. `perTurn` writes
 * happen per event-loop turn (1 = one write per upstream read; Infinity = burst until refused).
 */
export function produce(sink: ResponseSink & { queuedBytes: number }, chunks: Iterable<Uint8Array>, perTurn = 1): Promise<ProduceStats> {
  const stats: ProduceStats = { refusals: 0, maxOutstanding: 0, writes: 0 };
  const it = chunks[Symbol.iterator]();
  return new Promise((resolve) => {
    let stopped = false;
    sink.onAbort(() => {
      stopped = true;
      resolve(stats);
    });
    const step = () => {
      for (let i = 0; i < perTurn && !stopped; i++) {
        const next = it.next();
        if (next.done) {
          sink.end();
          return resolve(stats);
        }
        stats.writes++;
        const ok = sink.write(next.value);
        stats.maxOutstanding = Math.max(stats.maxOutstanding, sink.queuedBytes);
        if (!ok) {
          stats.refusals++;
          return; // onDrain resumes
        }
      }
      if (!stopped) setImmediate(step);
    };
    sink.onDrain(() => setImmediate(step));
    step();
  });
}
