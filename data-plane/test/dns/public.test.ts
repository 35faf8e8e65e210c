/**
 * Public /dns-query answers public names only (issue 12 item 5), through the stack main.ts
 * builds: createDnsStack with a real Redis (this replica announced in CLUSTER_DOMAIN), a hosts
 * file on disk, DNS_SYSTEM_NAMES, and a local DoH upstream; its route on a real uWS TLS
 * listener, driven with dns-packet over undici.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, encode, type DecodedPacket, type Question } from 'dns-packet';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsStack, type DnsSettings, type DnsStack } from '../../src/dns/stack.js';
import { createLogger } from '../../src/log/logger.js';
import { connectTestRedis, waitUntil, type TestRedis } from '../support/services.js';
import { rr, startDohUpstream, type DohUpstream } from './doh-upstream.js';
import { startRoutes, type DnsEndpointServer } from './endpoint-server.js';
import { counterValue } from './support.js';

const REPLICA = 'dp-public-test';
let dir: string;
let t: TestRedis;
let up: DohUpstream;
let stack: DnsStack;
let limited: DnsStack;
let srv: DnsEndpointServer;
let registry: Registry;

const settings = (o: Partial<DnsSettings>): DnsSettings => ({
  dohUpstreams: up.url,
  dohTimeoutMs: 1_500,
  overrides: '10.20.0.7 api.internal.test',
  hostsFile: undefined,
  allowPrivate: false,
  allowCidrs: [],
  systemNames: [hostname(), '*.svc.cluster.local'],
  family: 'ipv4first',
  rateLimitRps: 1_000,
  rateLimitBurst: 1_000,
  clusterDomain: 'fluxgate.internal',
  heartbeatMs: 5_000,
  replicaAddress: '10.9.0.1',
  replicaId: REPLICA,
  publicHost: '127.0.0.1',
  ...o,
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fluxgate-public-dns-'));
  t = await connectTestRedis();
  up = await startDohUpstream();
  // The override name also exists in public DNS: the public resolver must still not answer it.
  up.set('api.internal.test', 'A', { answers: [rr('api.internal.test', 'A', '203.0.113.66')] });
  up.set('pub.example', 'A', { answers: [rr('pub.example', 'A', '203.0.113.9', 300)] });
  up.set('private.example', 'A', { answers: [rr('private.example', 'A', '192.168.7.7', 300)] });
  up.set('loop.example', 'AAAA', { answers: [rr('loop.example', 'AAAA', '::1', 300)] });
  const hostsFile = join(dir, 'hosts');
  await writeFile(hostsFile, '# upstreams; internal only\n10.20.0.8 file.internal.test\n');
  registry = new Registry();
  const log = createLogger({ level: 'silent', name: 'public-dns-test' });
  stack = await createDnsStack(settings({ hostsFile }), { redis: t.redis, registry, log, dohTls: { ca: up.ca } });
  stack.announce(8443);
  limited = await createDnsStack(settings({ rateLimitRps: 1, rateLimitBurst: 3 }), {
    redis: t.redis,
    registry: new Registry(),
    log,
    dohTls: { ca: up.ca },
  });
  srv = await startRoutes({ '/dns-query': stack.route, '/limited/dns-query': limited.route });
  // The replica registry has been read and holds this replica: the cluster name is live.
  await waitUntil(async () => (await stack.resolver.resolve('fluxgate.internal', 'A')).addresses.includes('10.9.0.1'), {
    message: 'replica announced',
  });
});
afterAll(async () => {
  await srv?.close();
  await Promise.all([stack?.stop(), limited?.stop()]);
  await up?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const ask = async (name: string, type: Question['type'], id = 0x1234, path = '/dns-query') => {
  const res = await srv.send('POST', path, {
    headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message' },
    body: encode({ type: 'query', id, flags: 1 << 8, questions: [{ name, type, class: 'IN' }] }),
  });
  if (res.status !== 200) return { status: res.status, m: null };
  return { status: res.status, m: decode(res.body) as DecodedPacket & { rcode?: string }, cacheControl: res.headers['cache-control'] };
};

describe('public /dns-query: internal names do not exist', () => {
  const internal: Array<[string, Question['type']]> = [
    ['Api.Internal.TEST', 'A'], // DNS_OVERRIDES, spelled as a 0x20 client would
    ['api.internal.test', 'AAAA'],
    ['api.internal.test', 'MX'],
    ['file.internal.test', 'A'], // DNS_HOSTS_FILE
    [hostname(), 'A'], // DNS_SYSTEM_NAMES, exact
    ['ollama.ns.svc.cluster.local', 'A'], // DNS_SYSTEM_NAMES, *.suffix
    ['localhost', 'A'],
    ['app.localhost', 'AAAA'],
    ['fluxgate.internal', 'A'], // CLUSTER_DOMAIN: the live replicas
    [`${REPLICA}.fluxgate.internal`, 'A'], // one replica
    ['nobody.fluxgate.internal', 'A'],
    ['nope.invalid', 'A'],
  ];

  it.each(internal)('%s %s: NXDOMAIN with the question echoed, never forwarded', async (name, type) => {
    const before = up.queries.length;
    const { status, m, cacheControl } = await ask(name, type, 0xbeef);
    expect(status).toBe(200);
    expect(m).toMatchObject({ id: 0xbeef, type: 'response', flag_qr: true, flag_rd: true, rcode: 'NXDOMAIN' });
    expect(m?.questions).toEqual([{ name, type, class: 'IN' }]);
    expect(m?.answers).toEqual([]);
    // A SOA for the negative TTL (RFC 2308), of the root: we speak for no zone in between.
    expect(m?.authorities).toMatchObject([{ name: '.', type: 'SOA', ttl: 60, data: { minimum: 60 } }]);
    expect(cacheControl).toBe('max-age=60');
    expect(up.queries.length).toBe(before);
  });

  it("the gateway's own resolver still answers them", async () => {
    expect(await stack.resolver.resolve('api.internal.test', 'A')).toMatchObject({ addresses: ['10.20.0.7'], source: 'override' });
    expect(await stack.resolver.resolve('file.internal.test', 'A')).toMatchObject({ addresses: ['10.20.0.8'], source: 'override' });
    expect(await stack.resolver.resolve(`${REPLICA}.fluxgate.internal`, 'A')).toMatchObject({ addresses: ['10.9.0.1'] });
    expect(await stack.resolver.resolve('localhost', 'A')).toMatchObject({ addresses: ['127.0.0.1'] });
  });
});

describe('public /dns-query: public names', () => {
  it('answers from the DoH upstream, TTL from the source', async () => {
    const { m, cacheControl } = await ask('pub.example', 'A');
    expect(m).toMatchObject({ rcode: 'NOERROR', answers: [{ name: 'pub.example', type: 'A', data: '203.0.113.9', ttl: 300 }] });
    expect(cacheControl).toBe('max-age=300');
    expect((await ask('gone.example', 'A')).m).toMatchObject({ rcode: 'NXDOMAIN', authorities: [{ type: 'SOA', name: 'example' }] });
  });

  it('treats a name below an exact override as public (only zones are internal whole)', async () => {
    up.set('www.api.internal.test', 'A', { answers: [rr('www.api.internal.test', 'A', '203.0.113.67')] });
    expect((await ask('www.api.internal.test', 'A')).m?.answers).toMatchObject([{ data: '203.0.113.67' }]);
    expect(up.count('www.api.internal.test', 'A')).toBe(1);
    // Whereas anything under the cluster domain stays internal.
    expect((await ask('www.dp-x.fluxgate.internal', 'A')).m).toMatchObject({ rcode: 'NXDOMAIN' });
    expect(up.count('www.dp-x.fluxgate.internal')).toBe(0);
  });

  it('passes private and loopback answers of public names through (no SSRF guard: the gateway connects to none of them)', async () => {
    expect((await ask('private.example', 'A')).m).toMatchObject({ rcode: 'NOERROR', answers: [{ type: 'A', data: '192.168.7.7' }] });
    expect((await ask('loop.example', 'AAAA')).m).toMatchObject({ rcode: 'NOERROR', answers: [{ type: 'AAAA', data: '::1' }] });
    // The gateway itself still refuses to connect there.
    expect(await stack.resolver.resolve('private.example', 'A')).toMatchObject({
      rcode: 'REFUSED',
      addresses: [],
      blocked: { range: 'private' },
    });
  });

  it("has its own cache and its own upstream connections, apart from the gateway's", async () => {
    up.set('shared.example', 'A', { answers: [rr('shared.example', 'A', '203.0.113.20', 300)] });
    up.set('mine.example', 'A', { answers: [rr('mine.example', 'A', '203.0.113.21', 300)] });
    const internalEntries = stack.resolver.cache.size;

    // Public first: the gateway's resolver does not see that answer and asks for itself.
    expect((await ask('shared.example', 'A')).m?.answers).toMatchObject([{ data: '203.0.113.20' }]);
    expect(stack.resolver.cache.size).toBe(internalEntries);
    expect(await stack.resolver.resolve('shared.example', 'A')).toMatchObject({ source: 'upstream', addresses: ['203.0.113.20'] });
    expect(up.count('shared.example', 'A')).toBe(2);
    // Each now answers from its own cache.
    expect(await stack.resolver.resolve('shared.example', 'A')).toMatchObject({ source: 'cache' });
    await ask('shared.example', 'A');
    expect(up.count('shared.example', 'A')).toBe(2);

    // The other way round: what the gateway resolved is not in the public cache.
    expect(await stack.resolver.resolve('mine.example', 'A')).toMatchObject({ source: 'upstream' });
    await ask('mine.example', 'A');
    expect(up.count('mine.example', 'A')).toBe(2);

    // Different connections: each client keeps its own keep-alive socket to the upstream.
    const peerOf = (i: number) => up.peers[i];
    const asked = up.queries.map((q, i) => [q, i] as const).filter(([q]) => q === 'A shared.example' || q === 'A mine.example');
    const [pubShared, gwShared, gwMine, pubMine] = asked.map(([, i]) => peerOf(i));
    expect(pubShared).toBe(pubMine);
    expect(gwShared).toBe(gwMine);
    expect(pubShared).not.toBe(gwShared);

    expect(await counterValue(registry, 'fluxgate_dns_lookups_total', { resolver: 'public', source: 'override' })).toBeGreaterThanOrEqual(
      12,
    );
    expect(await counterValue(registry, 'fluxgate_dns_cache_hits_total', { resolver: 'public', state: 'fresh' })).toBeGreaterThanOrEqual(1);
  });
});

describe('public /dns-query: per-client rate limit', () => {
  it('still applies: 429 with Retry-After once the burst is spent', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await ask('localhost', 'A', i, '/limited/dns-query')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });
});
