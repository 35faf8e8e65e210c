/**
 * Bounded fuzzing of /dns-query over the real uWS listener: random bytes, truncated and
 * bit-flipped valid queries, absurd section counts and compression-pointer tricks, alternately
 * to the gateway's own resolver and to the public one (what production serves). Every answer
 * must be a 200 carrying a well-formed DNS response to that id, or a 400; the server must keep
 * answering valid queries afterwards. Seeded, so a failure names the packet that caused it.
 */
import { decode, encode, type Question } from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsCache } from '../../src/dns/cache.js';
import type { DnsUpstream } from '../../src/dns/doh-client.js';
import { createOverrides } from '../../src/dns/overrides.js';
import { createPublicResolver, internalNames } from '../../src/dns/public-resolver.js';
import { createResolver, type Resolver } from '../../src/dns/resolver.js';
import { dnsQueryRoute } from '../../src/dns/endpoint.js';
import { startRoutes, type DnsEndpointServer } from './endpoint-server.js';

/** mulberry32: a tiny deterministic PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// 'ANY' is a QTYPE, missing from @types/dns-packet's RecordType.
const TYPES = ['A', 'AAAA', 'MX', 'TXT', 'SRV', 'CNAME', 'NS', 'SOA', 'PTR', 'CAA', 'ANY'] as Question['type'][];

function packets(seed: number, n: number): Buffer[] {
  const r = rng(seed);
  const int = (max: number) => Math.floor(r() * max);
  const valid = () =>
    encode({
      type: 'query',
      id: int(65536),
      flags: 1 << 8,
      questions: [{ name: `h${int(1000)}.fuzz.example`, type: TYPES[int(TYPES.length)]! }],
      ...(r() < 0.5 ? { additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: r() < 0.5 ? [{ code: 12, length: int(40) }] : [] } as never] } : {}),
    });
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 5;
    if (kind === 0) out.push(Buffer.from(Array.from({ length: 2 + int(600) }, () => int(256))));
    else if (kind === 1) {
      const v = valid();
      out.push(v.subarray(0, 2 + int(v.length - 2)));
    } else if (kind === 2) {
      const v = Buffer.from(valid());
      for (let f = 1 + int(8); f > 0; f--) v[2 + int(v.length - 2)]! ^= 1 << int(8);
      out.push(v);
    } else if (kind === 3) {
      const v = Buffer.from(valid());
      v.writeUInt16BE(int(65536), 4 + 2 * int(4)); // lie about a section count
      out.push(v);
    } else {
      // A name that is a compression pointer to itself or forward, then random tail bytes.
      const head = Buffer.from([int(256), int(256), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, r() < 0.5 ? 12 : 14 + int(20), 0, 1, 0, 1]);
      out.push(Buffer.concat([head, Buffer.from(Array.from({ length: int(20) }, () => int(256)))]));
    }
  }
  return out;
}

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
  srv = await startRoutes({
    '/dns-query': dnsQueryRoute(resolver, { rateLimit: null }),
    '/public/dns-query': dnsQueryRoute(publicResolver, { rateLimit: null }),
  });
});
afterAll(async () => {
  await srv.close();
});

describe('/dns-query under fuzzing', () => {
  it('answers 2,000 random and damaged packets with a valid response or a 400, and keeps serving', async () => {
    const seed = 0x5eed;
    const all = packets(seed, 2_000);
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < all.length) {
        const i = next++;
        const p = all[i]!;
        const res = await srv.send('POST', i % 2 === 0 ? '/dns-query' : '/public/dns-query', { headers: { 'content-type': 'application/dns-message' }, body: p });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const where = `seed ${seed} packet ${i} (${p.toString('hex')})`;
        expect([200, 400], where).toContain(res.status);
        if (res.status === 200) {
          const m = decode(res.body);
          expect(m.flag_qr, where).toBe(true);
          expect(m.id, where).toBe(p.readUInt16BE(0));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // Every packet got its answer (a hang would have held a worker until the test timeout).
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(all.length);
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
  });
});
