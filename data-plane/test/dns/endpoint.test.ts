/**
 * The /dns-query route and the query answerer on a real uWS TLS listener, driven with
 * dns-packet over undici. The route is bound here to the gateway's own resolver, so every path
 * of the answerer shows (override and system-name answers, the SSRF guard's REFUSED); the
 * production endpoint answers from the public resolver instead, tested in public.test.ts.
 */
import { promises as dns } from 'node:dns';
import { hostname } from 'node:os';
import { decode, encode, type DecodedPacket, type Packet, type Question } from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rr, startDohUpstream, type DohUpstream } from './doh-upstream.js';
import { startDnsEndpoint, type Answer, type DnsEndpointServer } from './endpoint-server.js';
import { buildResolver, counterValue, type Built } from './support.js';

let up: DohUpstream;
let srv: DnsEndpointServer;
let b: Built;

const RD = 1 << 8;
const query = (question: Question | Question[], over: Partial<Packet> = {}): Buffer =>
  encode({ type: 'query', id: 0, flags: RD, questions: Array.isArray(question) ? question : [question], ...over });
const opt = (options: unknown[] = []) =>
  ({ name: '.', type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options }) as never;
const get = (packet: Buffer, path = '/dns-query') =>
  srv.send('GET', `${path}?dns=${packet.toString('base64url')}`, { headers: { accept: 'application/dns-message' } });
const post = (packet: Uint8Array, headers: Record<string, string> = {}, path = '/dns-query') =>
  srv.send('POST', path, {
    headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message', ...headers },
    body: packet,
  });
const dnsOf = (a: Answer): DecodedPacket & { rcode?: string } => {
  expect(a.status).toBe(200);
  expect(a.headers['content-type']).toBe('application/dns-message');
  return decode(a.body) as DecodedPacket & { rcode?: string };
};

beforeAll(async () => {
  up = await startDohUpstream();
  up.set('fwd.example', 'A', { answers: [rr('fwd.example', 'A', '203.0.113.80', 120)] });
  up.set('mail.example', 'MX', {
    answers: [{ name: 'mail.example', type: 'MX', class: 'IN', ttl: 200, data: { preference: 10, exchange: 'mx1.mail.example' } }],
  });
  up.set('v4only.example', 'AAAA', { soa: { ttl: 45, minimum: 600 } });
  up.set('private.example', 'A', { answers: [rr('private.example', 'A', '192.168.7.7')] });
  b = buildResolver({ upstreams: [up], overrides: { hosts: '127.0.0.1 svc.test', ttlSec: 60 }, systemNames: [hostname()] });
  srv = await startDnsEndpoint(b.resolver, {
    '/dns-query': { rateLimit: null, metrics: b.metrics },
    '/limited/dns-query': { rateLimit: { ratePerSec: 1, burst: 3 }, metrics: b.metrics },
  });
});
afterAll(async () => {
  await srv.close();
  await b.resolver.close();
  await up.close();
});

describe('/dns-query answers', () => {
  it('GET with id 0 answers an override, with the TTL in Cache-Control', async () => {
    const res = await get(query({ name: 'svc.test', type: 'A' }));
    const m = dnsOf(res);
    expect(res.headers['cache-control']).toBe('max-age=60');
    expect(m).toMatchObject({ id: 0, flag_qr: true, flag_rd: true, flag_ra: true, rcode: 'NOERROR' });
    expect(m.questions).toEqual([{ name: 'svc.test', type: 'A', class: 'IN' }]);
    expect(m.answers).toEqual([{ name: 'svc.test', type: 'A', class: 'IN', ttl: 60, flush: false, data: '127.0.0.1' }]);
  });

  it('POST echoes a non-zero id and the EDNS OPT, padding the answer when the query was padded', async () => {
    const m = dnsOf(await post(query({ name: 'SVC.test', type: 'A' }, { id: 0xbeef, additionals: [opt()] })));
    expect(m.id).toBe(0xbeef);
    expect(m.answers?.[0]).toMatchObject({ name: 'SVC.test', data: '127.0.0.1' });
    expect(m.additionals).toHaveLength(1);
    expect(m.additionals?.[0]).toMatchObject({ type: 'OPT', ednsVersion: 0, udpPayloadSize: 1232 });
    const padded = await post(query({ name: 'svc.test', type: 'A' }, { additionals: [opt([{ code: 12, length: 30 }])] }));
    expect(padded.body.length % 468).toBe(0);
    // Without EDNS in the query there is no OPT in the answer (RFC 6891 §7).
    expect(dnsOf(await post(query({ name: 'svc.test', type: 'A' }))).additionals).toEqual([]);
  });

  it('forwards A and other QTYPEs upstream with their TTLs', async () => {
    const a = await post(query({ name: 'fwd.example', type: 'A' }));
    expect(dnsOf(a).answers).toMatchObject([{ type: 'A', data: '203.0.113.80', ttl: 120 }]);
    expect(a.headers['cache-control']).toBe('max-age=120');
    const mx = dnsOf(await get(query({ name: 'mail.example', type: 'MX' })));
    expect(mx.answers).toMatchObject([{ type: 'MX', ttl: 200, data: { preference: 10, exchange: 'mx1.mail.example' } }]);
    expect(up.count('mail.example', 'MX')).toBe(1);
    // The second ask is served from the cache.
    dnsOf(await get(query({ name: 'mail.example', type: 'MX' })));
    expect(up.count('mail.example', 'MX')).toBe(1);
  });

  it('tells NXDOMAIN from NODATA, each with a SOA whose TTL is the negative TTL', async () => {
    const nx = await get(query({ name: 'gone.example', type: 'A' }));
    const nxm = dnsOf(nx);
    expect(nxm.rcode).toBe('NXDOMAIN');
    expect(nxm.answers).toEqual([]);
    expect(nxm.authorities).toMatchObject([{ type: 'SOA', ttl: 30, data: { minimum: 30 } }]);
    expect(nx.headers['cache-control']).toBe('max-age=30');

    const nodata = dnsOf(await get(query({ name: 'v4only.example', type: 'AAAA' })));
    expect(nodata.rcode).toBe('NOERROR');
    expect(nodata.answers).toEqual([]);
    expect(nodata.authorities).toMatchObject([{ type: 'SOA', ttl: 45 }]);

    // An override name has no AAAA: NODATA from the overrides, never NXDOMAIN, never forwarded.
    const local = dnsOf(await get(query({ name: 'svc.test', type: 'AAAA' })));
    expect(local.rcode).toBe('NOERROR');
    expect(local.authorities).toMatchObject([{ type: 'SOA', name: 'svc.test' }]);
    expect(up.count('svc.test')).toBe(0);
  });

  it('answers DNS_SYSTEM_NAMES from the system resolver, other types there as NODATA', async () => {
    const expected = (await dns.lookup(hostname(), { all: true, family: 4 })).map((a) => a.address);
    const a = dnsOf(await get(query({ name: hostname(), type: 'A' })));
    expect(a.answers?.map((r) => r.type === 'A' && r.data)).toEqual(expected);
    const mx = dnsOf(await get(query({ name: hostname(), type: 'MX' })));
    expect(mx).toMatchObject({ rcode: 'NOERROR', answers: [], authorities: [{ type: 'SOA' }] });
    expect(up.count(hostname().toLowerCase())).toBe(0);
  });

  it('answers policy and protocol cases with the right RCODE', async () => {
    const blocked = dnsOf(await post(query({ name: 'private.example', type: 'A' }, { additionals: [opt()] })));
    expect(blocked.rcode).toBe('REFUSED');
    expect(blocked.answers).toEqual([]);
    const ede = (blocked.additionals?.[0] as { options: { code: number; data: Buffer }[] }).options.find((o) => o.code === 15);
    expect(ede?.data.readUInt16BE(0)).toBe(15);

    const two = dnsOf(
      await post(
        query(
          [
            { name: 'a.example', type: 'A' },
            { name: 'b.example', type: 'A' },
          ],
          { id: 9 },
        ),
      ),
    );
    expect(two).toMatchObject({ id: 9, rcode: 'FORMERR', questions: [] });
    expect(dnsOf(await post(query({ name: 'version.bind', type: 'TXT', class: 'CH' }))).rcode).toBe('REFUSED');
    expect(dnsOf(await post(query({ name: 'fwd.example', type: 'ANY' as Question['type'] }))).rcode).toBe('NOTIMP');
    const fail = await post(query({ name: 'gone.example', type: 'A' }, { additionals: [opt(), opt()] }));
    expect(dnsOf(fail).rcode).toBe('FORMERR');
    expect(fail.headers['cache-control']).toBe('max-age=0');
  });
});

describe('/dns-query HTTP handling', () => {
  it('rejects what is not an RFC 8484 request, and keeps serving', async () => {
    const q = query({ name: 'svc.test', type: 'A' });
    expect((await post(q, { 'content-type': 'application/json' })).status).toBe(415);
    expect((await srv.send('POST', '/dns-query', { body: q })).status).toBe(415);
    expect((await srv.send('GET', '/dns-query?name=svc.test')).status).toBe(400);
    expect((await srv.send('GET', '/dns-query?dns=***')).status).toBe(400);
    expect((await srv.send('GET', `/dns-query?dns=${q.toString('base64url')}`, { headers: { accept: 'text/html' } })).status).toBe(406);
    expect(
      (await srv.send('GET', `/dns-query?dns=${q.toString('base64url')}`, { headers: { accept: 'application/dns-message;q=0, */*;q=0' } }))
        .status,
    ).toBe(406);
    expect((await srv.send('GET', `/dns-query?dns=${q.toString('base64url')}`, { headers: { accept: '*/*' } })).status).toBe(200);
    const put = await srv.send('PUT', '/dns-query', { body: q });
    expect(put.status).toBe(405);
    expect(put.headers['allow']).toBe('GET, POST');

    const malformed = await post(Buffer.from('definitely not a dns message'));
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body.toString())).toMatchObject({ error: { code: 'bad_request' } });
    expect((await post(q.subarray(0, q.length - 3))).status).toBe(400);
    expect((await post(Buffer.alloc(0))).status).toBe(400);
    expect((await post(Buffer.alloc(5000))).status).toBe(413);
    expect((await srv.send('GET', `/dns-query?dns=${'A'.repeat(9000)}`)).status).toBe(414);

    expect(dnsOf(await post(q)).answers).toHaveLength(1);
    expect(await counterValue(b.registry, 'fluxgate_dns_endpoint_requests_total', { outcome: 'unsupported_media_type' })).toBe(2);
  });

  it('rate-limits per client IP with 429 and Retry-After', async () => {
    const q = query({ name: 'svc.test', type: 'A' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(q, {}, '/limited/dns-query')).status);
    const limited = await post(q, {}, '/limited/dns-query');
    expect(statuses).toEqual([200, 200, 200]);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(JSON.parse(limited.body.toString())).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    // The unlimited route shares nothing with it.
    expect((await post(q)).status).toBe(200);
  });
});
