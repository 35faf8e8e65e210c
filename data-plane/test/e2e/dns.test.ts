/**
 * The gateway's DNS end to end: the real data plane process, started with DOH_UPSTREAMS at a
 * local RFC 8484 server (its throwaway CA trusted through NODE_EXTRA_CA_CERTS) and the
 * upstreams in an UPSTREAMS_FILE, resolves upstream names itself (overrides first, then DoH),
 * and answers public /dns-query with public names only.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rr, startDohUpstream, type DohUpstream } from '../dns/doh-upstream.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { TEST_REDIS_URL, waitUntil } from '../support/services.js';

const run = promisify(execFile);
let dir: string;
let doh: DohUpstream;
let mock: MockUpstream;
let gw: Gateway;
let key: string;
let env: Record<string, string>;
let upstreamsJson: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fluxgate-e2e-dns-'));
  doh = await startDohUpstream();
  // Public names, known only to the DoH upstream (the system resolver cannot answer .test).
  doh.set('models.public.test', 'A', { answers: [rr('models.public.test', 'A', '127.0.0.1', 300)] });
  doh.set('app.public.test', 'A', { answers: [rr('app.public.test', 'A', '127.0.0.1', 300)] });
  // An internal name that also exists publicly: /dns-query must still not answer it.
  doh.set('app.fluxgate.test', 'A', { answers: [rr('app.fluxgate.test', 'A', '203.0.113.7', 300)] });
  mock = await startMockUpstream({ events: 2 });
  const ca = join(dir, 'doh-ca.pem');
  const upstreams = join(dir, 'upstreams.json');
  const hosts = join(dir, 'hosts');
  await writeFile(ca, doh.ca);
  upstreamsJson = JSON.stringify([
    // Named only by a gateway override, and only in public DNS.
    { name: 'by-override', url: `http://models.fluxgate.test:${mock.port}`, models: ['override-model'] },
    { name: 'by-doh', url: `http://models.public.test:${mock.port}`, models: ['public-model'] },
  ]);
  await writeFile(upstreams, upstreamsJson);
  await writeFile(hosts, '# internal names; never public\nfd00::1 file.fluxgate.test\n');
  env = {
    UPSTREAMS_FILE: upstreams,
    DOH_UPSTREAMS: doh.url,
    NODE_EXTRA_CA_CERTS: ca,
    DNS_OVERRIDES: '127.0.0.1 models.fluxgate.test; 127.0.0.1 app.fluxgate.test',
    DNS_HOSTS_FILE: hosts,
    // models.public.test is loopback here; the SSRF guard must be told.
    DNS_ALLOW_CIDRS: '127.0.0.1/32',
  };
  gw = await startGateway({ upstreams: 'http://unused.invalid', env });
  key = (await gw.issueKey()).secret;
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
  await doh?.close();
  await rm(dir, { recursive: true, force: true });
});

const chat = async (model: string) => {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  return { status: res.statusCode, host: mock.requests.at(-1)?.headers.host };
};

const dnsQuery = async (name: string, type: 'A' | 'AAAA' = 'A', id = 4242) => {
  const query = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
  const res = await request(`${gw.url}/dns-query`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { 'content-type': 'application/dns-message' },
    body: query,
  });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/dns-message');
  return dnsPacket.decode(Buffer.from(await res.body.arrayBuffer())) as dnsPacket.DecodedPacket & { rcode?: string };
};

describe('the gateway resolves upstream names itself', () => {
  it('reaches an upstream named only by a gateway override', async () => {
    expect(await chat('override-model')).toEqual({ status: 200, host: `models.fluxgate.test:${mock.port}` });
  });

  it('reaches an upstream named only in public DNS, through DOH_UPSTREAMS', async () => {
    expect(await chat('public-model')).toEqual({ status: 200, host: `models.public.test:${mock.port}` });
    expect(doh.count('models.public.test', 'A')).toBeGreaterThanOrEqual(1);
  });
});

describe('/dns-query (RFC 8484) answers public names only', () => {
  it('answers NXDOMAIN for internal names (overrides, hosts file, cluster domain, localhost), the question echoed', async () => {
    for (const [name, type] of [
      ['app.fluxgate.test', 'A'],
      ['models.fluxgate.test', 'A'],
      ['file.fluxgate.test', 'AAAA'],
      ['fluxgate.internal', 'A'], // this replica registers itself under CLUSTER_DOMAIN
      ['localhost', 'A'],
    ] as const) {
      const answer = await dnsQuery(name, type, 7);
      expect(answer, name).toMatchObject({ id: 7, rcode: 'NXDOMAIN', answers: [], questions: [{ name, type }] });
    }
    expect(doh.count('app.fluxgate.test')).toBe(0);
  });

  it('answers a public name from the DoH upstream, with the request id', async () => {
    const answer = await dnsQuery('app.public.test');
    expect(answer.id).toBe(4242);
    expect(answer.answers?.[0]).toMatchObject({ type: 'A', name: 'app.public.test', data: '127.0.0.1' });
  });

  it('answers random bytes with 400 and keeps serving', async () => {
    const res = await request(`${gw.url}/dns-query`, {
      method: 'POST',
      dispatcher: gw.dispatcher,
      headers: { 'content-type': 'application/dns-message' },
      body: Buffer.from([1, 2, 3, 250, 251]),
    });
    expect(res.statusCode).toBe(400);
    await res.body.text();
    const health = await request(`${gw.url}/healthz`, { dispatcher: gw.dispatcher });
    expect(health.statusCode).toBe(200);
    await health.body.text();
  });

  it('serves curl --doh-url: curl resolves a public name through the gateway and fetches from it', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--doh-url',
      `https://127.0.0.1:${gw.publicPort}/dns-query`,
      '--doh-insecure',
      '-H',
      `authorization: Bearer ${key}`,
      `http://app.public.test:${mock.port}/v1/models`,
    ]);
    expect((JSON.parse(stdout) as { object: string }).object).toBe('list');
  });

  it('is useless to curl for an internal name', async () => {
    const err = await run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--doh-url',
      `https://127.0.0.1:${gw.publicPort}/dns-query`,
      '--doh-insecure',
      `http://app.fluxgate.test:${mock.port}/`,
    ]).catch((e: { code?: number }) => e);
    expect((err as { code?: number }).code).toBe(6); // CURLE_COULDNT_RESOLVE_HOST
  });
});

/**
 * A loopback relay to the test Redis that holds every byte the clients send until `release()`:
 * the gateway's Redis connections are up (TCP connected) but their handshake cannot finish.
 */
async function startHeldRelay(target: URL) {
  const conns: { upstream: Socket; held: Buffer[] }[] = [];
  const sockets = new Set<Socket>();
  let released = false;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    const conn = { upstream, held: [] as Buffer[] };
    conns.push(conn);
    sockets.add(client).add(upstream);
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
    upstream.pipe(client);
    client.on('data', (b: Buffer) => (released ? upstream.write(b) : conn.held.push(b)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => conns.length,
    /** Whether a held connection has sent `command` (RESP bulk strings carry it verbatim). */
    sent: (command: string) => conns.some((c) => Buffer.concat(c.held).toString('latin1').toLowerCase().includes(`\r\n${command}\r\n`)),
    release(): void {
      released = true;
      for (const c of conns) c.upstream.write(Buffer.concat(c.held.splice(0)));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('start-up (issue 12 item 10)', () => {
  it('starts when the pub/sub connection is up but still in its handshake as the gateway subscribes', async () => {
    // The failure ("Connection in subscriber mode": the ready check refused, the connection torn
    // down, and the start failed whenever a command was pending then) needs SUBSCRIBE sent after
    // the subscriber's TCP connect but before its handshake finished. Made certain here: the
    // upstreams file is a FIFO, so the gateway waits on it with both Redis connections open;
    // the relay holds their handshake; the file is written once both are connected, and the
    // relay lets the bytes through once the gateway has sent SUBSCRIBE.
    const relay = await startHeldRelay(new URL(TEST_REDIS_URL));
    const fifo = join(dir, 'upstreams.fifo');
    await run('mkfifo', [fifo]);
    const starting = startGateway({
      upstreams: 'http://unused.invalid',
      redisUrl: `redis://127.0.0.1:${relay.port}`,
      env: { ...env, UPSTREAMS_FILE: fifo, LOG_LEVEL: 'debug' },
    });
    starting.catch(() => undefined);
    try {
      await waitUntil(() => relay.connections() === 2, { timeoutMs: 20_000, message: 'both Redis connections open' });
      await writeFile(fifo, upstreamsJson);
      await waitUntil(() => relay.sent('subscribe'), { timeoutMs: 10_000, message: 'SUBSCRIBE sent during the handshake' });
      relay.release();
      const g = await starting;
      try {
        // Debug level shows the subscriber's errors: the failed ready check, even when a reconnect
        // happened to save the start.
        expect(g.output()).not.toMatch(/subscriber mode/);
        const ready = await request(`${g.url}/readyz`, { dispatcher: g.dispatcher });
        await ready.body.text();
        expect(ready.statusCode).toBe(200);
      } finally {
        expect(await g.stop()).toBe(0);
      }
    } finally {
      relay.release();
      await relay.close();
    }
  });
});
