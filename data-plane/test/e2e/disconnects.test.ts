/**
 * Clients that go away early (issue 12, item 13): mid-TLS-handshake and mid-request-headers.
 * Each case is repeated many times; afterwards the gateway must be alive, hold no more sockets
 * than before (read from /proc), have no request left open (admin metrics), have forwarded
 * nothing, and serve the next request normally.
 */
import { once } from 'node:events';
import { createServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, type Gateway } from '../support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { openSockets } from '../support/proc.js';
import { openTls } from '../support/raw-tls.js';
import { waitUntil } from '../support/services.js';

let mock: MockUpstream;
let gw: Gateway;
let key: string;
let baselineSockets: number;

const ROUNDS = 40;

const chat = async () => {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(res.statusCode).toBe(200);
  expect(((await res.body.json()) as { object: string }).object).toBe('chat.completion');
};

const openRequests = async (): Promise<number> => {
  const res = await request(`${gw.adminUrl}/admin/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.statusCode).toBe(200);
  return ((await res.body.json()) as { openRequests: number }).openRequests;
};

beforeAll(async () => {
  mock = await startMockUpstream({ events: 3 });
  gw = await startGateway({ upstreams: mock.url });
  key = (await gw.issueKey(undefined, 'enterprise')).secret;
  await chat(); // pools (Postgres, Redis, upstream) open before the baseline
  baselineSockets = await openSockets(gw.child.pid!);
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
});

/** The gateway is as it was: alive, no extra sockets, no open request, next request fine. */
async function unharmed(forwardedBefore: number): Promise<void> {
  expect(gw.child.exitCode).toBeNull();
  // +1: our own keep-alive connection may have been idle-closed when the baseline was taken.
  await waitUntil(async () => (await openSockets(gw.child.pid!)) <= baselineSockets + 1, {
    timeoutMs: 10_000,
    message: `gateway sockets back to ${baselineSockets}`,
  });
  expect(await openRequests()).toBe(0);
  expect(mock.requests.length).toBe(forwardedBefore);
  await chat();
}

const tcp = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });

/**
 * A relay between a real TLS client and the gateway that cuts both sides the moment the
 * gateway's first handshake flight arrives: the gateway has read a full ClientHello and
 * answered, and never gets the client's Finished. `cuts` counts connections cut that way.
 */
async function handshakeCutter(port: number): Promise<{ server: Server; port: number; cuts: () => number }> {
  let cuts = 0;
  const server = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
    client.pipe(upstream);
    upstream.once('data', () => {
      cuts++;
      cut();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, cuts: () => cuts };
}

describe('clients that disconnect early', () => {
  it('mid-TLS-handshake: after the TCP connect, inside a partial ClientHello, and after the server flight', async () => {
    const before = mock.requests.length;
    const cutter = await handshakeCutter(gw.publicPort);
    for (let i = 0; i < ROUNDS; i++) {
      // 1. Connect and leave without a byte.
      (await tcp(gw.publicPort)).destroy();
      // 2. A TLS record header announcing a 512-byte handshake message, then only part of it.
      const partial = await tcp(gw.publicPort);
      await new Promise((r) => partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), r));
      partial.destroy();
      // 3. A real ClientHello, cut when the server's first flight arrives (before our Finished).
      const tls = tlsConnect({ host: '127.0.0.1', port: cutter.port, rejectUnauthorized: false });
      await new Promise<void>((resolve) => tls.once('error', () => resolve()).once('close', () => resolve()));
    }
    expect(cutter.cuts()).toBe(ROUNDS);
    cutter.server.close();
    await unharmed(before);
  });

  it('mid-request-headers: part of a head, then gone (with and without a TLS close_notify)', async () => {
    const before = mock.requests.length;
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Len`;
    for (let i = 0; i < ROUNDS; i++) {
      const socket = await openTls(gw.publicPort);
      socket.on('error', () => undefined);
      const cut = head.slice(0, 1 + ((i * 37) % (head.length - 1)));
      await new Promise((r) => socket.write(cut, r));
      if (i % 2 === 0) socket.destroy();
      else socket.end();
    }
    await unharmed(before);
  });
});
