/**
 * Bounded fuzzing of /dns-query (GET and POST, RFC 8484) over the real uWS listener with
 * fast-check: random bytes, truncated and bit-flipped valid queries, absurd section counts,
 * compression-pointer tricks, and damaged ?dns= parameters. Every answer must be a 200 carrying
 * a well-formed DNS response to that id, or a 400; the server must keep answering valid queries
 * afterwards. Seeded (fuzz/support.ts), so a failure names the input that caused it;
 * `npm run fuzz` runs it longer.
 */
import { decode, encode, type Question } from 'dns-packet';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsCache } from '../../src/dns/cache.js';
import type { DnsUpstream } from '../../src/dns/doh-client.js';
import { createOverrides } from '../../src/dns/overrides.js';
import { createPublicResolver, internalNames } from '../../src/dns/public-resolver.js';
import { createResolver, type Resolver } from '../../src/dns/resolver.js';
import { dnsQueryRoute } from '../../src/dns/endpoint.js';
import { fuzzParams, fuzzTimeout } from '../fuzz/support.js';
import { startRoutes, type DnsEndpointServer } from './endpoint-server.js';

// 'ANY' is a QTYPE, missing from @types/dns-packet's RecordType.
const TYPES = ['A', 'AAAA', 'MX', 'TXT', 'SRV', 'CNAME', 'NS', 'SOA', 'PTR', 'CAA', 'ANY'] as Question['type'][];

const byteArray = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));

/** A well-formed query, sometimes with an EDNS OPT record (RFC 6891) and a padding option. */
const validQuery = fc
  .record({
    id: fc.integer({ min: 0, max: 65_535 }),
    host: fc.integer({ min: 0, max: 999 }),
    type: fc.constantFrom(...TYPES),
    edns: fc.option(fc.record({ padding: fc.option(fc.integer({ min: 0, max: 39 }), { nil: undefined }) }), { nil: undefined }),
  })
  .map(({ id, host, type, edns }) =>
    Buffer.from(
      encode({
        type: 'query',
        id,
        flags: 1 << 8,
        questions: [{ name: `h${host}.fuzz.example`, type }],
        ...(edns
          ? {
              additionals: [
                {
                  name: '.',
                  type: 'OPT',
                  udpPayloadSize: 4096,
                  extendedRcode: 0,
                  ednsVersion: 0,
                  flags: 0,
                  options: edns.padding === undefined ? [] : [{ code: 12, length: edns.padding }],
                } as never,
              ],
            }
          : {}),
      }),
    ),
  );

/** Valid queries, random bytes, and valid queries truncated, bit-flipped, lying about a section count, or looping through compression pointers. */
const packet: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 2, arbitrary: validQuery },
  byteArray(2, 600),
  fc.tuple(validQuery, fc.nat()).map(([v, n]) => v.subarray(0, 2 + (n % (v.length - 1)))),
  fc.tuple(validQuery, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 })).map(([v, flips]) => {
    const out = Buffer.from(v);
    for (const [at, bit] of flips) out[2 + (at % (out.length - 2))]! ^= 1 << bit;
    return out;
  }),
  fc.tuple(validQuery, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 65_535 })).map(([v, section, count]) => {
    const out = Buffer.from(v);
    out.writeUInt16BE(count, 4 + 2 * section);
    return out;
  }),
  // A name that is a compression pointer to itself or forward, then random tail bytes.
  fc
    .tuple(fc.integer({ min: 0, max: 65_535 }), fc.boolean(), fc.integer({ min: 14, max: 33 }), byteArray(0, 20))
    .map(([id, self, forward, tail]) =>
      Buffer.concat([Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, self ? 12 : forward, 0, 1, 0, 1]), tail]),
    ),
);

/** GET carries the message base64url-encoded in ?dns= (RFC 8484 §4.1); the parameter itself may be damaged too. */
const request = fc.oneof(
  { weight: 3, arbitrary: fc.record({ method: fc.constant('POST' as const), packet, query: fc.constant(undefined) }) },
  { weight: 3, arbitrary: fc.record({ method: fc.constant('GET' as const), packet, query: fc.constant(undefined) }) },
  fc.record({
    method: fc.constant('GET' as const),
    packet: fc.constant(undefined),
    query: fc.oneof(
      fc.constantFrom('', 'dns', 'dns=', 'dns=%', 'dns===', 'dns=AAAA&dns=AAAA', 'other=1'),
      fc.string({ maxLength: 80 }).map((q) => `dns=${encodeURIComponent(q)}`),
    ),
  }),
);

let srv: DnsEndpointServer;
let resolver: Resolver;
let upstreamQueries = 0;

beforeAll(async () => {
  // In-process upstream: every forwarded name is NXDOMAIN with a SOA (cached afterwards).
  const upstream: DnsUpstream = {
    async query(name) {
      upstreamQueries++;
      const soa = { name: 'example', type: 'SOA' as const, ttl: 60, data: { mname: 'ns.example', rname: 'h.example', minimum: 60 } };
      return { set: { rcode: 'NXDOMAIN' as const, answers: [], authority: [soa] }, bytes: 100 + name.length };
    },
    close: async () => undefined,
  };
  const overrides = createOverrides({ hosts: '127.0.0.1 ok.fuzz.example' });
  resolver = createResolver({ overrides, upstream, cache: new DnsCache() });
  const publicResolver = createPublicResolver({ isInternal: internalNames(overrides, null), upstream });
  // The gateway's own resolver and the public one (what production serves), alternately.
  srv = await startRoutes({
    '/dns-query': dnsQueryRoute(resolver, { rateLimit: null }),
    '/public/dns-query': dnsQueryRoute(publicResolver, { rateLimit: null }),
  });
});
afterAll(async () => {
  await srv.close();
});

describe('/dns-query under fuzzing', () => {
  it(
    'answers random and damaged GET and POST queries with a valid response or a 400, and keeps serving',
    async ({ annotate }) => {
      const statuses = new Map<number, number>();
      let tried = 0;
      // Each run sends a batch at once, as concurrent clients would.
      await fc.assert(
        fc.asyncProperty(fc.array(request, { minLength: 8, maxLength: 8 }), async (batch) => {
          await Promise.all(
            batch.map(async ({ method, packet: p, query }, i) => {
              tried++;
              const path = i % 2 === 0 ? '/dns-query' : '/public/dns-query';
              const res =
                method === 'POST'
                  ? await srv.send('POST', path, { headers: { 'content-type': 'application/dns-message' }, body: p! })
                  : await srv.send('GET', `${path}?${query ?? `dns=${p!.toString('base64url')}`}`, {
                      headers: { accept: 'application/dns-message' },
                    });
              statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
              const where = `${method} ${p ? p.toString('hex') : query}`;
              expect([200, 400], where).toContain(res.status);
              if (res.status === 200) {
                const m = decode(res.body);
                expect(m.flag_qr, where).toBe(true);
                if (p) expect(m.id, where).toBe(p.readUInt16BE(0));
              }
            }),
          );
        }),
        fuzzParams(6, 250),
      );
      await annotate(`DoH: ${tried} queries; statuses ${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}`);
      // Both outcomes occurred: the fuzzer reached the resolver, not only the parser.
      expect(statuses.get(400)).toBeGreaterThan(100);
      expect(statuses.get(200)).toBeGreaterThan(100);
      expect(upstreamQueries).toBeGreaterThan(0);

      const ok = await srv.send('POST', '/dns-query', {
        headers: { 'content-type': 'application/dns-message' },
        body: encode({ type: 'query', id: 7, flags: 1 << 8, questions: [{ name: 'ok.fuzz.example', type: 'A' }] }),
      });
      expect(decode(ok.body).answers).toMatchObject([{ data: '127.0.0.1' }]);
      const hidden = await srv.send('POST', '/public/dns-query', {
        headers: { 'content-type': 'application/dns-message' },
        body: encode({ type: 'query', id: 8, flags: 1 << 8, questions: [{ name: 'ok.fuzz.example', type: 'A' }] }),
      });
      expect(decode(hidden.body)).toMatchObject({ id: 8, rcode: 'NXDOMAIN' });
    },
    fuzzTimeout(60_000),
  );
});
