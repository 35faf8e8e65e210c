/**
 * Pipelined requests (issue 12, item 9), over raw TLS.
 *
 * Cause, from uWebSockets' HttpContext.h (v20.42, and unchanged upstream since 2019, commit
 * 87aea5a "Don't emit multiple parallel requests"): uWS keeps one response state per socket,
 * and when its parser meets the next request while the previous response is still pending it
 * closes the socket ("Important for denying async pipelining until, if ever, we want to support
 * it"; uNetworking/uWebSockets.js#277, closed wontfix). The parser handles every request in a
 * read before returning to the event loop, so whether a pipelined request survives depends only
 * on whether the one before it was answered within the same native callback, i.e. from
 * microtasks, never a later event-loop turn. Nothing in JS runs between the two parses to stop
 * it, and no JS API of this build can hold the next request back.
 *
 * So: what is answered synchronously (health, errors decided from the head) pipelines, in order;
 * what waits on I/O (Postgres, Redis, an upstream) loses the connection, and then the first
 * request must not have been forwarded either, so a client may retry it safely. The same
 * requests one after another on one keep-alive connection are all answered.
 *
 * Also here, because it is about what follows on the same connection: a HEAD's answer carries
 * no content (uWS itself would write the GET's body; the sink stops it).
 */
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bind } from '../../src/http/bind.js';
import { closeAll, createTlsApp, listen, loadUws, type Listening } from '../../src/http/uws.js';
import { createLogger } from '../../src/log/logger.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { finals, parseResponses, wireExchange } from '../support/http-wire.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { openTls } from '../support/raw-tls.js';
import { makeTestCert, type TestCert } from '../support/tls.js';

const post = (path: string, body: string, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: gw.example\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('pipelining on a bare uWS route (bind.ts), to isolate the cause', () => {
  let cert: TestCert;
  let listening: Listening;
  let app: ReturnType<typeof createTlsApp>;

  beforeAll(async () => {
    cert = await makeTestCert();
    app = createTlsApp(loadUws(), { certPath: cert.certPath, keyPath: cert.keyPath });
    const log = createLogger({ level: 'silent', name: 'pipelining-test' });
    // Both echo the body; one answers as soon as it is read, the other a loop turn later.
    bind(app, 'post', '/now', async ({ readBody, sink }) => sink.send(200, [], await readBody(1024)), log);
    bind(
      app,
      'post',
      '/later',
      async ({ readBody, sink }) => {
        const body = await readBody(1024);
        await new Promise((resolve) => setImmediate(resolve));
        sink.send(200, [], body);
      },
      log,
    );
    listening = await listen(app, '127.0.0.1', 0);
  });
  afterAll(async () => {
    listening?.close();
    if (app) closeAll(app);
    await cert?.cleanup();
  });

  it('two POSTs answered from microtasks come back in order with their bodies', async () => {
    const ex = await wireExchange(listening.port, post('/now', '{"n":1}') + post('/now', '{"n":2}'), { responses: 2 });
    expect(finals(ex.responses).map((r) => r.body.toString())).toEqual(['{"n":1}', '{"n":2}']);
  });

  it('two POSTs whose first answer waits one event-loop turn: uWS closes the connection, nothing is answered', async () => {
    const ex = await wireExchange(listening.port, post('/later', '{"n":1}') + post('/later', '{"n":2}'), { responses: 2 });
    expect(ex.closed).toBe(true);
    expect(ex.raw.length).toBe(0);
  });
});

describe('pipelining against the real gateway', () => {
  let mock: MockUpstream;
  let gw: InProcessGateway;
  let key: string;
  const chat = (n: number) => JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: `message ${n}` }] });
  const authed = () => `Authorization: Bearer ${key}\r\n`;

  beforeAll(async () => {
    mock = await startMockUpstream({ events: 3 });
    gw = await startInProcessGateway({ upstreams: mock.url });
    key = (await gw.issueKey(undefined, 'enterprise')).secret;
    // Warm the key cache, so the first request of each case needs as little I/O as possible.
    const warm = await wireExchange(gw.publicPort, post('/v1/chat/completions', chat(0), authed()), { responses: 1 });
    expect(finals(warm.responses)[0]?.status).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
    await mock?.close();
  });

  it('ten pipelined requests answered without I/O come back complete and in order', async () => {
    const requests = Array.from({ length: 10 }, (_, i) =>
      i % 2 === 0
        ? `GET /healthz?i=${i} HTTP/1.1\r\nHost: gw.example\r\n\r\n`
        : `GET /no-such-route-${i} HTTP/1.1\r\nHost: gw.example\r\n\r\n`,
    );
    const ex = await wireExchange(gw.publicPort, requests.join(''), { responses: 10 });
    expect(ex.error).toBeNull();
    expect(finals(ex.responses).map((r) => r.status)).toEqual([200, 404, 200, 404, 200, 404, 200, 404, 200, 404]);
  });

  for (const [name, bytes] of [
    ['two POSTs', () => post('/v1/chat/completions', chat(1), authed()) + post('/v1/chat/completions', chat(2), authed())],
    [
      'a POST then a GET',
      () => post('/v1/chat/completions', chat(1), authed()) + `GET /v1/models HTTP/1.1\r\nHost: gw.example\r\n${authed()}\r\n`,
    ],
    ['ten small POSTs', () => Array.from({ length: 10 }, (_, i) => post('/v1/chat/completions', chat(i), authed())).join('')],
  ] as const) {
    it(`${name} pipelined behind a proxied request: this uWS build closes the connection, and nothing reached the upstream`, async () => {
      const before = mock.requests.length;
      const ex = await wireExchange(gw.publicPort, bytes(), { responses: 1, idleMs: 5_000 });
      expect(ex.closed).toBe(true);
      expect(ex.raw.length).toBe(0);
      // A proxied request ends at the upstream or not at all: wait for any straggler.
      const probe = await wireExchange(gw.publicPort, `GET /v1/models HTTP/1.1\r\nHost: gw.example\r\n${authed()}\r\n`, { responses: 1 });
      expect(finals(probe.responses)[0]?.status).toBe(200);
      expect(mock.requests.slice(before).map((r) => r.method)).toEqual(['GET']);
    });
  }

  it('a HEAD is answered with headers only, so the next response on the connection still parses', async () => {
    /** The HEAD's response (bodiless by definition), then whatever follows parsed as ordinary responses. */
    const split = (raw: Buffer) => {
      const end = raw.indexOf('\r\n\r\n');
      return { head: parseResponses(raw.subarray(0, end + 4), true).responses[0], next: parseResponses(raw.subarray(end + 4)) };
    };
    const converse = async (first: string, second: string) => {
      const socket = await openTls(gw.publicPort);
      let raw = Buffer.alloc(0);
      socket.on('data', (b: Buffer) => (raw = Buffer.concat([raw, b])));
      socket.write(first);
      while (raw.indexOf('\r\n\r\n') < 0) await once(socket, 'data');
      socket.write(second);
      // A body wrongly sent after the HEAD's head shows up here as a framing error.
      let closed = false;
      socket.once('close', () => (closed = true));
      while (!closed && split(raw).next.responses.length < 1 && split(raw).next.error === null)
        await Promise.race([once(socket, 'data'), once(socket, 'close')]);
      socket.destroy();
      return split(raw);
    };
    // Answered by the gateway itself (no HEAD route: 404 with a JSON body for a GET).
    const own = await converse(
      'HEAD /no-such-route HTTP/1.1\r\nHost: gw.example\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: gw.example\r\n\r\n',
    );
    expect(own.next.error).toBeNull();
    expect([own.head?.status, own.next.responses[0]?.status]).toEqual([404, 200]);
    // RFC 9110 §8.6: a HEAD's Content-Length, when sent, is the length a GET gets.
    const getOwn = await wireExchange(gw.publicPort, 'GET /no-such-route HTTP/1.1\r\nHost: gw.example\r\n\r\n', { responses: 1 });
    expect(own.head?.headers.get('content-length')).toEqual([String(finals(getOwn.responses)[0]!.body.length)]);
    // Proxied: the model server answers the HEAD with a Content-Length and no body (this mock
    // serves GET /v1/models only, so the HEAD is its 404), then the GET on the same connection.
    const proxied = await converse(
      `HEAD /v1/models HTTP/1.1\r\nHost: gw.example\r\n${authed()}\r\n`,
      `GET /v1/models HTTP/1.1\r\nHost: gw.example\r\n${authed()}\r\n`,
    );
    expect(proxied.next.error).toBeNull();
    expect([proxied.head?.status, proxied.next.responses[0]?.status]).toEqual([404, 200]);
  });

  it('the same ten POSTs one after another on one keep-alive connection are all answered, in order, bodies intact', async () => {
    const before = mock.requests.length;
    const socket = await openTls(gw.publicPort);
    let raw = Buffer.alloc(0);
    socket.on('data', (b: Buffer) => (raw = Buffer.concat([raw, b])));
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      socket.write(post('/v1/chat/completions', chat(i), authed()));
      while (parseResponses(raw).responses.length <= i) await once(socket, 'data');
      statuses.push(parseResponses(raw).responses[i]!.status);
    }
    socket.destroy();
    expect(statuses).toEqual(Array(10).fill(200));
    expect(mock.requests.slice(before).map((r) => r.body.toString())).toEqual(Array.from({ length: 10 }, (_, i) => chat(i)));
  });
});
