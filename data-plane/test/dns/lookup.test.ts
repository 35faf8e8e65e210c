/**
 * The resolver as undici's `lookup`: undici really connects through it (a name the system
 * resolver cannot resolve), the proxy's pool maps a blocked answer to a 502 upstream_blocked,
 * the SSRF guard's verdicts, and the family preference.
 */
import { promises as dns } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { Agent, interceptors, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DnsBlockedError } from '../../src/dns/errors.js';
import type { Resolver } from '../../src/dns/resolver.js';
import { GatewayError } from '../../src/errors.js';
import { mapUpstreamError } from '../../src/proxy/failure.js';
import { createUpstreamPool } from '../../src/proxy/pool.js';
import { parseUpstreamUrls } from '../../src/proxy/upstreams.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { forward } from '../proxy/helpers.js';
import { rr, startDohUpstream, type DohUpstream } from './doh-upstream.js';
import { buildResolver, counterValue, type Built } from './support.js';

let up: DohUpstream;
let web: Server;
let webPort: number;
const hosts: string[] = [];
const built: Built[] = [];
const make = (o: Parameters<typeof buildResolver>[0]) => {
  const b = buildResolver({ upstreams: [up], ...o });
  built.push(b);
  return b;
};

const lookup = (resolver: Resolver, host: string, opts: object = {}) =>
  new Promise<{ address: string; family: number; ttl: number }[]>((resolve, reject) =>
    resolver.lookup(new URL(`http://${host}/`), opts, (err, addrs) => (err ? reject(err) : resolve(addrs))),
  );

beforeAll(async () => {
  up = await startDohUpstream();
  web = createServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    res.end('hello through the DoH resolver');
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as AddressInfo).port;
});
afterAll(async () => {
  web.closeAllConnections();
  await new Promise<void>((r) => web.close(() => r()));
  await up.close();
});
afterEach(async () => {
  up.reset();
  hosts.length = 0;
  await Promise.all(built.splice(0).map((b) => b.resolver.close()));
});

describe('undici through the resolver', () => {
  it('connects to an override name the system resolver cannot resolve, keeping the Host header', async () => {
    await expect(dns.lookup('svc.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    const { resolver, registry } = make({ overrides: { hosts: '127.0.0.1 svc.test' } });
    const agent = new Agent().compose(interceptors.dns({ lookup: resolver.lookup }));
    try {
      const res = await request(`http://svc.test:${webPort}/`, { dispatcher: agent });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('hello through the DoH resolver');
      expect(hosts).toEqual([`svc.test:${webPort}`]);
      expect(await counterValue(registry, 'fluxgate_dns_lookups_total', { source: 'override' })).toBe(1);
      expect(up.queries).toEqual([]); // overrides never reach the upstream
    } finally {
      await agent.close();
    }
  });

  it('makes the proxy answer 502 upstream_blocked when a public name points at loopback', async () => {
    up.set('rebind.example', 'A', { answers: [rr('rebind.example', 'A', '127.0.0.1', 60)] });
    const { resolver } = make({});
    const model: MockUpstream = await startMockUpstream();
    const pool = createUpstreamPool(parseUpstreamUrls(`http://rebind.example:${model.port}`), {
      probe: false,
      lookup: resolver.lookup,
      maxRetries: 0,
    });
    try {
      const out = await forward(pool, { method: 'GET', path: '/echo', body: null, model: null }).done;
      expect(out.error?.code).toBe('upstream_blocked');
      expect(out.error?.status).toBe(502);
      expect(out.error?.message).toBe('The upstream address is not allowed.'); // no internal address leaks
      expect(model.requests).toHaveLength(0);
    } finally {
      await pool.close();
      await model.close();
    }
  });
});

describe('SSRF guard', () => {
  it('refuses private, metadata and loopback answers, through CNAMEs and mixed answers', async () => {
    up.set('internal.example', 'A', { answers: [rr('internal.example', 'A', '10.0.0.5')] });
    up.set('meta.example', 'A', {
      answers: [rr('meta.example', 'CNAME', 'x.attacker.example'), rr('x.attacker.example', 'A', '169.254.169.254')],
    });
    up.set('mixed.example', 'A', { answers: [rr('mixed.example', 'A', '203.0.113.1'), rr('mixed.example', 'A', '192.168.1.1')] });
    up.set('six.example', 'AAAA', { answers: [rr('six.example', 'AAAA', '::ffff:127.0.0.1')] });
    const { resolver, registry } = make({});

    expect(await resolver.resolve('internal.example', 'A')).toMatchObject({
      rcode: 'REFUSED',
      addresses: [],
      blocked: { address: '10.0.0.5', range: 'private' },
    });
    const err = await lookup(resolver, 'meta.example').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsBlockedError);
    expect(err).toMatchObject({ code: 'upstream_blocked', hostname: 'meta.example', address: '169.254.169.254', range: 'metadata' });
    expect(mapUpstreamError(err)).toBe(err);
    expect((err as GatewayError).status).toBe(502);
    expect(await resolver.resolve('mixed.example', 'A')).toMatchObject({ rcode: 'REFUSED', blocked: { range: 'private' } });
    expect(await resolver.resolve('six.example', 'AAAA')).toMatchObject({ rcode: 'REFUSED', blocked: { range: 'loopback' } });
    expect(await counterValue(registry, 'fluxgate_dns_blocked_answers_total', { range: 'private' })).toBe(2);
    expect(await counterValue(registry, 'fluxgate_dns_blocked_answers_total', { range: 'metadata' })).toBe(1);
  });

  it('refuses NAT64 and 6to4 answers that carry a metadata or loopback IPv4 (issue 12 item 7)', async () => {
    up.set('nat64.example', 'AAAA', { answers: [rr('nat64.example', 'AAAA', '64:ff9b::a9fe:a9fe')] });
    up.set('sixtofour.example', 'AAAA', { answers: [rr('sixtofour.example', 'AAAA', '2002:7f00:1::1')] });
    up.set('public64.example', 'AAAA', { answers: [rr('public64.example', 'AAAA', '64:ff9b::cb00:7101')] });
    const { resolver } = make({ policy: { allowPrivate: true } });
    const err = await lookup(resolver, 'nat64.example', { dualStack: false, affinity: 6 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'upstream_blocked', range: 'metadata' });
    expect(await resolver.resolve('sixtofour.example', 'AAAA')).toMatchObject({ rcode: 'NOERROR', addresses: ['2002:7f00:1::1'] }); // DNS_ALLOW_PRIVATE opens loopback
    expect(await make({}).resolver.resolve('sixtofour.example', 'AAAA')).toMatchObject({
      rcode: 'REFUSED',
      blocked: { range: 'loopback' },
    });
    expect(await resolver.resolve('public64.example', 'AAAA')).toMatchObject({ rcode: 'NOERROR', addresses: ['64:ff9b::cb00:7101'] });
  });

  it('allows the same address from an override, from the allow-list, and (not metadata) with allowPrivate', async () => {
    up.set('internal.example', 'A', { answers: [rr('internal.example', 'A', '10.0.0.5')] });
    up.set('meta.example', 'A', { answers: [rr('meta.example', 'A', '169.254.169.254')] });
    const viaOverride = make({ overrides: { hosts: '10.0.0.5 internal.example' } });
    expect(await viaOverride.resolver.resolve('internal.example', 'A')).toMatchObject({
      rcode: 'NOERROR',
      addresses: ['10.0.0.5'],
      source: 'override',
    });
    expect(up.count('internal.example')).toBe(0);

    const viaAllow = make({ policy: { allow: ['10.0.0.0/24'] } });
    expect(await lookup(viaAllow.resolver, 'internal.example')).toEqual([{ address: '10.0.0.5', family: 4, ttl: 300_000 }]);

    const lax = make({ policy: { allowPrivate: true } });
    expect(await lax.resolver.resolve('internal.example', 'A')).toMatchObject({ addresses: ['10.0.0.5'] });
    expect(await lax.resolver.resolve('meta.example', 'A')).toMatchObject({ rcode: 'REFUSED', blocked: { range: 'metadata' } });
  });
});

describe('DNS_SYSTEM_NAMES', () => {
  it('resolves listed names with the system resolver (service discovery), exempt from the guard, never forwarded', async () => {
    // This machine's own name comes from /etc/hosts (usually a loopback or private address).
    const expected = (await dns.lookup(hostname(), { all: true, family: 4 })).map((a) => a.address);
    const { resolver, registry } = make({ systemNames: [hostname()] });
    expect(await resolver.resolve(hostname(), 'A')).toEqual({ addresses: expected, ttl: 5, rcode: 'NOERROR', source: 'system' });
    expect(await lookup(resolver, hostname())).toEqual(expected.map((address) => ({ address, family: 4, ttl: 5_000 })));
    expect(up.queries).toEqual([]);
    expect(await counterValue(registry, 'fluxgate_dns_lookups_total', { source: 'system' })).toBe(2);
    // A name not listed still goes to DoH.
    await resolver.resolve('elsewhere.example', 'A');
    expect(up.count('elsewhere.example', 'A')).toBe(1);
  });
});

describe('lookup: families and errors', () => {
  it('prefers IPv4, falls back to IPv6 only when there is no A, and honours dualStack/affinity', async () => {
    up.set('both.example', 'A', { answers: [rr('both.example', 'A', '203.0.113.60', 40)] });
    up.set('both.example', 'AAAA', { answers: [rr('both.example', 'AAAA', '2001:db8::60', 40)] });
    up.set('v6.example', 'AAAA', { answers: [rr('v6.example', 'AAAA', '2001:db8::61', 40)] });
    up.set('v6.example', 'A', {}); // NODATA: the name exists without an IPv4 address
    const { resolver } = make({});
    expect(await lookup(resolver, 'both.example')).toEqual([{ address: '203.0.113.60', family: 4, ttl: 40_000 }]);
    expect(up.count('both.example', 'AAAA')).toBe(0);
    expect(await lookup(resolver, 'v6.example')).toEqual([{ address: '2001:db8::61', family: 6, ttl: 40_000 }]);
    expect(await lookup(resolver, 'both.example', { dualStack: false, affinity: 6 })).toEqual([
      { address: '2001:db8::60', family: 6, ttl: 40_000 },
    ]);
    await expect(lookup(resolver, 'v6.example', { dualStack: false, affinity: 4 })).rejects.toMatchObject({ code: 'ENOTFOUND' });

    const v6first = make({ family: 'ipv6first' });
    expect(await lookup(v6first.resolver, 'both.example')).toEqual([{ address: '2001:db8::60', family: 6, ttl: 40_000 }]);
  });

  it('fails with ENOTFOUND for names that do not exist and EAI_AGAIN when no upstream answers', async () => {
    const { resolver } = make({});
    await expect(lookup(resolver, 'nowhere.example')).rejects.toMatchObject({ code: 'ENOTFOUND', rcode: 'NXDOMAIN' });
    expect(up.count('nowhere.example', 'AAAA')).toBe(0); // NXDOMAIN: the name has no other family either
    up.failure = 'http500';
    const err = await lookup(resolver, 'down.example').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EAI_AGAIN' });
    expect(mapUpstreamError(err).code).toBe('upstream_unavailable');
    const none = make({ upstreams: [] });
    await expect(lookup(none.resolver, 'any.example')).rejects.toMatchObject({ code: 'EAI_AGAIN' });
  });
});
