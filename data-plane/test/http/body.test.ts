/**
 * Request side of the uWS layer over real TLS: the request snapshot and readBody (exact bytes,
 * 413 by header and by streamed size, client aborts mid-body), and the TLS listener itself.
 */
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { readBody } from '../../src/http/body.js';
import { ClientAbortedError, openExchange } from '../../src/http/exchange.js';
import { snapshotRequest } from '../../src/http/request.js';
import { createSink } from '../../src/http/sink.js';
import type { RequestSnapshot } from '../../src/http/types.js';
import { closeAll, createTlsApp, listen, loadUws } from '../../src/http/uws.js';
import { request, until } from './client.js';
import { randomBody, sha256, startServer, type TestServer } from './server.js';

const MB = 1024 * 1024;
const LIMIT = 8 * MB;

let server: TestServer;
/** Outcome of each readBody on /echo, in arrival order: the bytes or the error. */
const reads: Array<Promise<Uint8Array | Error>> = [];
/** The outcome of the next /echo request's readBody (waits for its handler to run). */
async function nextRead(): Promise<Uint8Array | Error> {
  const n = reads.length;
  await until(() => reads.length > n, 'the /echo handler');
  return reads[n]!;
}

beforeAll(async () => {
  server = await startServer();
  // Echo: read the body, answer with its SHA-256 and length, then the body itself; the answer
  // is written from readBody's continuation (inside uWS's onData cork region).
  server.on('/echo', (res, req) => {
    const ex = openExchange(res);
    snapshotRequest(req, res, ex);
    const sink = createSink(res, ex);
    const read = readBody(res, ex, LIMIT);
    reads.push(read.catch((e: Error) => e));
    read.then(
      (body) =>
        sink.send(
          200,
          [
            ['x-sha256', sha256(body)],
            ['x-length', String(body.length)],
          ],
          body,
        ),
      (e: unknown) => {
        if (e instanceof GatewayError) sink.send(e.status, [['content-type', 'text/plain']], e.message);
      },
    );
  });
});
afterAll(async () => {
  await server.close();
});

const chunked = (parts: Uint8Array[]): Buffer[] => [
  ...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), Buffer.from(p), Buffer.from('\r\n')]),
  Buffer.from('0\r\n\r\n'),
];

describe('readBody', () => {
  it('returns the exact bytes of small, large and chunked uploads', async () => {
    const small = Buffer.from('{"model":"m","messages":[]}');
    const a = await request({
      port: server.port,
      method: 'POST',
      path: '/echo',
      headers: [['content-length', String(small.length)]],
      body: [small],
      keepBody: true,
    });
    expect(a.status).toBe(200);
    expect(a.body?.equals(small)).toBe(true);

    const large = randomBody(6 * MB, 200 * 1024);
    const b = await request({
      port: server.port,
      method: 'POST',
      path: '/echo',
      headers: [['content-length', String(large.body.length)]],
      body: large.chunks,
    });
    expect(b.headers.get('x-length')).toBe(String(large.body.length));
    expect(b.headers.get('x-sha256')).toBe(sha256(large.body));
    expect(b.sha256).toBe(sha256(large.body)); // and the 6 MB echo, sent from the onData continuation

    const parts = randomBody(3 * MB, 40 * 1024);
    const c = await request({
      port: server.port,
      method: 'POST',
      path: '/echo',
      headers: [['transfer-encoding', 'chunked']],
      body: chunked(parts.chunks),
    });
    expect(c.headers.get('x-sha256')).toBe(sha256(parts.body));
    expect(c.length).toBe(parts.body.length);

    const none = await request({ port: server.port, method: 'GET', path: '/echo', keepBody: true });
    expect(none.headers.get('x-length')).toBe('0');
  });

  it('answers 413 from Content-Length alone, and closes the connection', async () => {
    const outcome = nextRead();
    const res = await request({
      port: server.port,
      method: 'POST',
      path: '/echo',
      headers: [['content-length', String(LIMIT + 1)]],
      keepBody: true,
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    const err = await outcome;
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('payload_too_large');
  });

  it('answers 413 once a chunked upload passes the limit while streaming', async () => {
    // Just past the limit, so the client has sent everything when the 413 arrives.
    const parts = randomBody(LIMIT - 100, 64 * 1024).chunks.concat(Buffer.alloc(1000, 1));
    const outcome = nextRead();
    const res = await request({
      port: server.port,
      method: 'POST',
      path: '/echo',
      headers: [['transfer-encoding', 'chunked']],
      body: chunked(parts),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(((await outcome) as GatewayError).code).toBe('payload_too_large');
  });

  it('rejects with ClientAbortedError when the client goes away mid-body (fixed length and mid-chunk)', async () => {
    const part = randomBody(256 * 1024, 64 * 1024).body;
    let n = reads.length;
    let outcome = nextRead();
    await request({
      port: server.port,
      method: 'POST',
      path: '/echo',
      headers: [['content-length', String(4 * MB)]],
      body: [part],
      abortWhen: () => reads.length > n,
    });
    expect(await outcome).toBeInstanceOf(ClientAbortedError);

    // A chunk header announcing 64 KiB, 1000 bytes of it, then FIN: a truncated chunked body.
    n = reads.length;
    outcome = nextRead();
    await request({
      port: server.port,
      method: 'POST',
      path: '/echo',
      headers: [['transfer-encoding', 'chunked']],
      body: ['10000\r\n', part.subarray(0, 1000)],
      abortWhen: () => reads.length > n,
    });
    expect(await outcome).toBeInstanceOf(ClientAbortedError);
  });
});

describe('snapshotRequest', () => {
  it('copies method, path, query, joined headers and the client address before the handler returns', async () => {
    let snap: RequestSnapshot | undefined;
    server.on('/snap/a%20b', (res, req) => {
      const ex = openExchange(res);
      snap = snapshotRequest(req, res, ex);
      createSink(res, ex).send(204, [], '');
    });
    const res = await request({
      port: server.port,
      method: 'PATCH',
      path: '/snap/a%20b?x=1&y=%20',
      headers: [
        ['X-Multi', 'one'],
        ['x-multi', 'two'],
        ['Cookie', 'a=1'],
        ['cookie', 'b=2'],
      ],
    });
    expect(res.status).toBe(204);
    expect(res.headers.has('content-length')).toBe(false);
    expect(snap).toMatchObject({ method: 'PATCH', path: '/snap/a%20b', query: 'x=1&y=%20', remoteAddress: '127.0.0.1' });
    expect(snap!.headers.get('x-multi')).toBe('one, two');
    expect(snap!.headers.get('cookie')).toBe('a=1; b=2');
    expect(snap!.headers.get('host')).toBe('localhost');
    expect(typeof snap!.receivedAt).toBe('number');

    server.on('/snap-noquery', (res, req) => {
      const ex = openExchange(res);
      snap = snapshotRequest(req, res, ex);
      createSink(res, ex).send(200, [], 'ok');
    });
    await request({ port: server.port, path: '/snap-noquery' });
    expect(snap!.query).toBe('');
  });
});

describe('TLS listener', () => {
  const handshake = (port: number, version: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3') =>
    new Promise<string>((resolve) => {
      // SECLEVEL=0 so that our own client is willing to offer TLS 1.1: the refusal must come from the server.
      const s = connect({
        host: '127.0.0.1',
        port,
        rejectUnauthorized: false,
        minVersion: version,
        maxVersion: version,
        ciphers: 'DEFAULT:@SECLEVEL=0',
      });
      s.on('secureConnect', () => {
        resolve(s.getProtocol() ?? 'none');
        s.destroy();
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });

  it('speaks TLS 1.2 and 1.3 only', async () => {
    expect(await handshake(server.port, 'TLSv1.3')).toBe('TLSv1.3');
    expect(await handshake(server.port, 'TLSv1.2')).toBe('TLSv1.2');
    expect(await handshake(server.port, 'TLSv1.1')).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('listens on port 0, reports the port, and stops accepting after close()', async () => {
    const app = createTlsApp(loadUws(), { certPath: server.cert.certPath, keyPath: server.cert.keyPath });
    const listening = await listen(app, '127.0.0.1', 0);
    expect(listening.port).toBeGreaterThan(0);
    expect(await handshake(listening.port, 'TLSv1.3')).toBe('TLSv1.3');
    listening.close();
    listening.close(); // idempotent
    expect(await handshake(listening.port, 'TLSv1.3')).toBe('ECONNREFUSED');
    closeAll(app);
    expect(() => createTlsApp(loadUws(), { certPath: '/nonexistent/cert.pem', keyPath: server.cert.keyPath })).toThrow(/not readable/);
  });
});
