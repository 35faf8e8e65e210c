/**
 * A local RFC 8484 server standing in for 1.1.1.1 / 9.9.9.9: node:https with a throwaway
 * self-signed certificate (IP SAN 127.0.0.1, so the client verifies it against the CA like a
 * real IP-literal upstream), answering from a zone the test sets, with configurable latency
 * and failure, counting every query it receives.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { decode, encode, type Answer, type Packet, type SoaAnswer } from 'dns-packet';
import { makeTestCert, type TestCert } from '../support/tls.js';

export interface ZoneAnswer {
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';
  answers?: Answer[];
  /** SOA in authority (negative answers): TTL of the record and its MINIMUM. */
  soa?: { ttl: number; minimum: number } | null;
}

export type FailureMode = 'none' | 'http500' | 'garbage' | 'wrong-question';

export interface DohUpstream {
  url: string;
  port: number;
  /** PEM of the self-signed certificate, to pass as the client's `ca`. */
  ca: string;
  /** Every question received, in order ("A svc.example"). */
  queries: string[];
  /** For each entry of `queries`, the client's TCP port: which connection asked it. */
  peers: number[];
  count(name: string, type?: string): number;
  /** Sets the answer for (name, type); unknown names are NXDOMAIN with a SOA (ttl 60, minimum 30). */
  set(name: string, type: string, answer: ZoneAnswer): void;
  latencyMs: number;
  failure: FailureMode;
  /** Forget the zone, the recorded queries, latency and failure mode. */
  reset(): void;
  close(): Promise<void>;
}

const RCODES = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

/** An A/AAAA record for a zone. */
export const rr = (name: string, type: 'A' | 'AAAA' | 'CNAME', data: string, ttl = 300): Answer => ({ name, type, class: 'IN', ttl, data });

export async function startDohUpstream(): Promise<DohUpstream> {
  const cert: TestCert = await makeTestCert();
  const [key, ca] = await Promise.all([readFile(cert.keyPath, 'utf8'), readFile(cert.certPath, 'utf8')]);
  const zone = new Map<string, ZoneAnswer>();
  const state = { latencyMs: 0, failure: 'none' as FailureMode, queries: [] as string[], peers: [] as number[] };

  const respond = (query: Buffer, peer: number): Buffer => {
    const q = decode(query);
    const question = q.questions?.[0];
    if (question === undefined) throw new Error('no question');
    state.queries.push(`${question.type} ${question.name.toLowerCase()}`);
    state.peers.push(peer);
    const z = zone.get(`${question.type} ${question.name.toLowerCase()}`) ?? { rcode: 'NXDOMAIN' as const };
    const rcode = z.rcode ?? 'NOERROR';
    const soaSpec =
      z.soa === undefined ? (rcode === 'NXDOMAIN' || (z.answers ?? []).length === 0 ? { ttl: 60, minimum: 30 } : null) : z.soa;
    const soa: SoaAnswer[] = soaSpec
      ? [
          {
            name: 'example',
            type: 'SOA',
            class: 'IN',
            ttl: soaSpec.ttl,
            data: {
              mname: 'ns.example',
              rname: 'hostmaster.example',
              serial: 1,
              refresh: 60,
              retry: 60,
              expire: 600,
              minimum: soaSpec.minimum,
            },
          },
        ]
      : [];
    const asked = state.failure === 'wrong-question' ? { ...question, name: `other.${question.name}` } : question;
    const packet: Packet = {
      type: 'response',
      id: q.id ?? 0,
      flags: (1 << 8) | (1 << 7) | RCODES[rcode],
      questions: [asked],
      answers: z.answers ?? [],
      authorities: soa,
    };
    return encode(packet);
  };

  const server: Server = createServer({ key, cert: ca }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (): void => {
        if (res.destroyed) return;
        if (state.failure === 'http500') {
          state.queries.push('http500');
          state.peers.push(req.socket.remotePort ?? 0);
          res.writeHead(500).end('broken');
          return;
        }
        let body: Buffer;
        try {
          const url = new URL(req.url ?? '/', 'https://x');
          body = req.method === 'GET' ? Buffer.from(url.searchParams.get('dns') ?? '', 'base64url') : Buffer.concat(chunks);
          body = state.failure === 'garbage' ? Buffer.from('not dns at all') : respond(body, req.socket.remotePort ?? 0);
        } catch {
          res.writeHead(400).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/dns-message', 'content-length': body.length }).end(body);
      };
      if (state.latencyMs > 0) setTimeout(reply, state.latencyMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `https://127.0.0.1:${port}/dns-query`,
    port,
    ca,
    get queries() {
      return state.queries;
    },
    get peers() {
      return state.peers;
    },
    count: (name, type) => state.queries.filter((q) => (type === undefined ? q.endsWith(` ${name}`) : q === `${type} ${name}`)).length,
    set: (name, type, answer) => zone.set(`${type} ${name.toLowerCase()}`, answer),
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(v: number) {
      state.latencyMs = v;
    },
    get failure() {
      return state.failure;
    },
    set failure(v: FailureMode) {
      state.failure = v;
    },
    reset() {
      zone.clear();
      state.queries = [];
      state.peers = [];
      state.latencyMs = 0;
      state.failure = 'none';
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cert.cleanup();
    },
  };
}
