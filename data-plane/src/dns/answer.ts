/**
 * Answers one DNS query message, QTYPE-aware, for both resolvers (the public /dns-query one
 * and the gateway's own, public-resolver.ts and resolver.ts):
 * - local names (`overrides`: for the public resolver every internal name, answered NXDOMAIN;
 *   for the gateway's own the override addresses, and DNS_SYSTEM_NAMES answered by the system
 *   resolver): A/AAAA from there; any other type is NODATA (NOERROR, no answer, a synthesised
 *   SOA in authority, RFC 2308 §2.2); never forwarded;
 * - other names, any data type (A, AAAA, MX, TXT, SRV, HTTPS, …): the cache, then the upstreams
 *   (the record layer, record-layer.ts), with TTLs from the source, counted down;
 * - with a `policy` (the gateway's own resolver), A/AAAA answers pass the SSRF guard: a blocked
 *   answer is REFUSED with Extended DNS Error 15 "Blocked" (RFC 8914), showing exactly what
 *   the gateway would connect to. The public resolver has none (see public-resolver.ts);
 * - QCLASS other than IN: REFUSED. Meta QTYPEs (ANY, AXFR, IXFR, OPT, TKEY, TSIG, 128–255):
 *   NOTIMP (RFC 8482 lets us decline ANY). Names that are not host names: REFUSED.
 * - more than one question: FORMERR (RFC 9619); other header errors in message.ts.
 * Stale answers carry EDE 3 "Stale Answer" (RFC 8914 §4.4).
 */
import type { Answer, SoaAnswer } from 'dns-packet';
import type { AddressPolicy } from './address-policy.js';
import { buildResponse, parseClientQuery, type ClientQuery, type QueryHeader, type ResponseParts } from './message.js';
import type { DnsMetrics } from './metrics.js';
import type { OverrideHit, Overrides } from './overrides.js';
import { addressesIn, canonicalName, capTtl, negativeTtl, RCODE } from './records.js';
import type { Found } from './record-layer.js';
import type { SystemNames } from './system-names.js';

export type QueryAnswer =
  /** A DNS response (any RCODE). `ttl`: the freshness lifetime for Cache-Control (RFC 8484 §5.1). */
  | { kind: 'answer'; body: Buffer; rcode: number; ttl: number }
  /** Not a DNS message: the endpoint answers HTTP 400. */
  | { kind: 'malformed'; reason: string };

export interface AnswererDeps {
  overrides: Overrides;
  system: SystemNames | null;
  /** Null: answers pass as the upstream gave them (the public resolver). */
  policy: AddressPolicy | null;
  metrics: DnsMetrics | null;
  records(name: string, type: string): Promise<Found> | Found;
}

const EDE_STALE = 3;
const EDE_BLOCKED = 15;
const META_TYPES = new Set(['OPT', 'ANY', 'AXFR', 'IXFR', 'TKEY', 'TSIG']);

function isMetaType(type: string): boolean {
  if (META_TYPES.has(type)) return true;
  const m = /^UNKNOWN_(\d+)$/.exec(type);
  const n = m ? Number(m[1]) : -1;
  return n === 0 || (n >= 128 && n <= 255);
}

/** A SOA for answers we make up ourselves, so negative answers are cacheable (RFC 2308 §5). `zone` '' is the root. */
const syntheticSoa = (zone: string, ttl: number): SoaAnswer => ({
  name: zone === '' ? '.' : zone,
  type: 'SOA',
  class: 'IN',
  ttl,
  data: {
    mname: zone === '' ? '.' : zone,
    rname: zone === '' ? '.' : `hostmaster.${zone}`,
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: ttl,
  },
});

const minTtl = (records: readonly Answer[]): number | null =>
  records.length === 0 ? null : records.reduce((m, r) => Math.min(m, r.type === 'OPT' ? m : (r.ttl ?? 0)), Infinity);

export function createQueryAnswerer(d: AnswererDeps): (packet: Uint8Array) => Promise<QueryAnswer> {
  const overrideAnswer = (q: ClientQuery, name: string, hit: OverrideHit, source: 'override' | 'system' = 'override'): ResponseParts => {
    if (hit.kind === 'unavailable') return { rcode: RCODE.SERVFAIL };
    d.metrics?.lookups.labels(source).inc();
    if (hit.kind === 'nxdomain') return { rcode: RCODE.NXDOMAIN, authority: [syntheticSoa(hit.zone, hit.ttl)] };
    const type = q.question.type;
    const list = type === 'A' ? hit.v4 : type === 'AAAA' ? hit.v6 : [];
    if (list.length === 0) return { rcode: RCODE.NOERROR, authority: [syntheticSoa(name, hit.ttl)] };
    const answers = list.map((address): Answer => ({
      name: q.question.name,
      type: type as 'A' | 'AAAA',
      class: 'IN',
      ttl: hit.ttl,
      data: address,
    }));
    return { rcode: RCODE.NOERROR, answers };
  };

  const recordAnswer = (q: ClientQuery, name: string, found: Found): ResponseParts => {
    d.metrics?.lookups.labels(found.source).inc();
    const type = q.question.type;
    if (d.policy !== null && (type === 'A' || type === 'AAAA')) {
      for (const { address } of addressesIn(found.set.answers, name, type)) {
        const range = d.policy.blocked(address);
        if (range === null) continue;
        d.metrics?.blockedAnswers.labels(range).inc();
        return { rcode: RCODE.REFUSED, ede: { code: EDE_BLOCKED, text: 'answer address not allowed by policy' } };
      }
    }
    const answers = capTtl(found.set.answers, found.ttl);
    // Echo the client's spelling of its name (0x20 case randomisation, draft-vixie-dnsext-dns0x20).
    for (const a of answers) if (a.name.toLowerCase() === name) a.name = q.question.name;
    // RFC 2308 §3: the SOA's TTL in a negative answer is min(SOA TTL, MINIMUM).
    const authority = found.set.authority.map((soa) => ({ ...soa, ttl: Math.min(negativeTtl(soa), found.ttl) }));
    return {
      rcode: found.set.rcode === 'NXDOMAIN' ? RCODE.NXDOMAIN : RCODE.NOERROR,
      answers,
      authority,
      ...(found.source === 'stale' ? { ede: { code: EDE_STALE, text: 'upstream unavailable' } } : {}),
    };
  };

  const answer = async (q: ClientQuery): Promise<ResponseParts> => {
    const { type } = q.question;
    if (q.question.class !== undefined && q.question.class !== 'IN') return { rcode: RCODE.REFUSED };
    if (isMetaType(type)) return { rcode: RCODE.NOTIMP };
    const name = canonicalName(q.question.name);
    if (name === null) return { rcode: RCODE.REFUSED };
    const local = d.overrides.match(name);
    if (local !== null) return overrideAnswer(q, name, local);
    if (d.system?.matches(name)) {
      if (type !== 'A' && type !== 'AAAA') return overrideAnswer(q, name, { kind: 'addresses', v4: [], v6: [], ttl: 5 }, 'system');
      const r = await d.system.resolve(name, type);
      const hit: OverrideHit =
        r.rcode === 'SERVFAIL'
          ? { kind: 'unavailable' }
          : { kind: 'addresses', v4: type === 'A' ? r.addresses : [], v6: type === 'AAAA' ? r.addresses : [], ttl: r.ttl };
      return overrideAnswer(q, name, hit, 'system');
    }
    try {
      return recordAnswer(q, name, await d.records(name, type));
    } catch {
      return { rcode: RCODE.SERVFAIL };
    }
  };

  const reply = (header: QueryHeader, parts: ResponseParts): QueryAnswer => {
    let body: Buffer;
    let rcode = parts.rcode;
    try {
      body = buildResponse(header, parts);
    } catch {
      // A cached record dns-packet cannot write back: fail this answer, not the server.
      rcode = RCODE.SERVFAIL;
      try {
        body = buildResponse(header, { rcode });
      } catch (err) {
        return { kind: 'malformed', reason: `cannot encode a response: ${(err as Error).message}` };
      }
      return { kind: 'answer', body, rcode, ttl: 0 };
    }
    const ttl = minTtl(parts.answers ?? []) ?? minTtl(parts.authority ?? []) ?? 0;
    return { kind: 'answer', body, rcode, ttl: Number.isFinite(ttl) ? ttl : 0 };
  };

  return async (packet) => {
    const buf = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
    const parsed = parseClientQuery(buf);
    if (parsed.kind === 'malformed') return parsed;
    if (parsed.kind === 'error') return reply(parsed.header, { rcode: parsed.rcode });
    return reply(parsed.query, await answer(parsed.query));
  };
}
