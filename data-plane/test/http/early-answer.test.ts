/**
 * An answer sent before the request body was read (http/exchange.ts closesAfterResponse), on a
 * real uWS TLS server: the connection closes after it, a body reader that was started stops
 * holding bytes, and an answer sent after the whole body keeps the connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyDiscardedError, readBody } from '../../src/http/body.js';
import { openExchange } from '../../src/http/exchange.js';
import { snapshotRequest } from '../../src/http/request.js';
import { createSink } from '../../src/http/sink.js';
import { openTls } from '../support/raw-tls.js';
import { until } from './client.js';
import { startServer, type TestServer } from './server.js';

let server: TestServer;
const outcomes: Array<Promise<Uint8Array | Error>> = [];

beforeAll(async () => {
  server = await startServer();
  // Refuse at once, without reading.
  server.on('/refuse', (res, req) => {
    const ex = openExchange(res);
    snapshotRequest(req, res, ex);
    createSink(res, ex).send(401, [['content-type', 'text/plain']], 'no');
  });
  // Start reading, then refuse once the first bytes are in (as the proxy does after a lookup).
  server.on('/refuse-later', (res, req) => {
    const ex = openExchange(res);
    snapshotRequest(req, res, ex);
    const sink = createSink(res, ex);
    const read = readBody(res, ex, 64 * 1024 * 1024);
    outcomes.push(read.catch((e: Error) => e));
    setImmediate(() => sink.send(401, [['content-type', 'text/plain']], 'no'));
  });
  // Read everything, then answer.
  server.on('/read', (res, req) => {
    const ex = openExchange(res);
    snapshotRequest(req, res, ex);
    const sink = createSink(res, ex);
    readBody(res, ex, 1024 * 1024).then(
      (b) => sink.send(200, [], `read ${b.length}`),
      () => undefined,
    );
  });
});
afterAll(async () => {
  await server.close();
});

/** Chunked upload that keeps writing until the server closes (or 8 MiB are out). */
async function upload(path: string): Promise<{ head: string; closedWhileWriting: boolean }> {
  const socket = await openTls(server.port);
  const chunk = Buffer.alloc(64 * 1024, 1);
  const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
  return new Promise((resolve) => {
    let head = '';
    let sent = 0;
    let done = false;
    let writing = false;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ head, closedWhileWriting: sent < 8 * 1024 * 1024 });
    };
    socket.on('data', (b: Buffer) => {
      head += b.toString('latin1');
      // Keep writing only once the answer is in (see test/e2e/refused-uploads.test.ts on why).
      if (!writing && head.includes('\r\n\r\n')) {
        writing = true;
        pump();
      }
    });
    socket.once('close', finish);
    socket.on('error', finish);
    const pump = () => {
      while (!done && sent < 8 * 1024 * 1024) {
        sent += chunk.length;
        if (!socket.write(framed)) return void socket.once('drain', pump);
      }
      if (!done) socket.end('0\r\n\r\n');
    };
    socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n`);
    socket.write(framed);
    sent += chunk.length;
  });
}

describe('an answer before the body', () => {
  it('closes the connection after it (Connection: close) while the client is still sending', async () => {
    const r = await upload('/refuse');
    expect(r.head).toMatch(/^HTTP\/1\.1 401 /);
    expect(r.head).toMatch(/\r\nConnection: close\r\n/i);
    expect(r.closedWhileWriting).toBe(true);
  });

  it('stops a body reader that was started: it rejects and holds nothing more', async () => {
    const n = outcomes.length;
    const r = await upload('/refuse-later');
    expect(r.head).toMatch(/^HTTP\/1\.1 401 [^]*\r\nConnection: close\r\n/i);
    expect(r.closedWhileWriting).toBe(true);
    expect(outcomes.length).toBe(n + 1);
    expect(await outcomes[n]).toBeInstanceOf(BodyDiscardedError);
  });

  it('an answer after the whole body keeps the connection for the next request', async () => {
    const socket = await openTls(server.port);
    let text = '';
    socket.on('data', (b: Buffer) => (text += b.toString('latin1')));
    const req = 'POST /read HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello';
    socket.write(req);
    await until(() => text.includes('read 5'), 'the first answer');
    socket.write(req);
    await until(() => text.split('read 5').length === 3, 'the second answer on the same connection');
    socket.destroy();
    expect(text).not.toMatch(/connection: close/i);
  });
});
