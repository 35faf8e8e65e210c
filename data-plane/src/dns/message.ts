/**
 * DNS wire messages: reading a client's query, writing our response, writing the query we send
 * upstream and reading the upstream's answer. dns-packet does the byte work; the protocol rules
 * it does not enforce are here, each with its RFC.
 */
import {
  decode,
  encode,
  encodingLength,
  type Answer,
  type DecodedPacket,
  type OptAnswer,
  type Packet,
  type Question,
  type SoaAnswer,
} from 'dns-packet';
import { RCODE, type Rcode, type RecordSet } from './records.js';

const RD = 1 << 8;
const RA = 1 << 7;
const CD = 1 << 4;
const TC = 1 << 9;
const OPT_PADDING = 12; // RFC 7830
const OPT_EDE = 15; // RFC 8914 Extended DNS Errors
/** DNS Flag Day 2020 default, also what we advertise (the size is moot over HTTPS). */
export const EDNS_PAYLOAD = 1232;
/** RFC 8467 §4.1: clients pad queries to 128 octets, servers pad responses to 468. */
const QUERY_BLOCK = 128;
const RESPONSE_BLOCK = 468;

/** Extended RCODE 16 (RFC 6891 §6.1.3): the client asked for an EDNS version we lack. */
export const BADVERS = 16;

/** The header fields our response echoes (RFC 1035 §4.1.1, RFC 8484 §4.1 for the id). */
export interface QueryHeader {
  readonly id: number;
  /** Raw flags word: opcode, RD and CD are echoed from it. */
  readonly flags: number;
  readonly questions: readonly Question[];
  /** Null without an OPT record; otherwise whether the client padded (so we must, RFC 7830 §4). */
  readonly edns: { padded: boolean } | null;
}

export interface ClientQuery extends QueryHeader {
  /** The one question, name spelled as the client sent it. */
  readonly question: Question;
}

export type QueryParse =
  /** Not a DNS message at all: HTTP 400. */
  | { kind: 'malformed'; reason: string }
  /** A DNS message we answer with an error RCODE. */
  | { kind: 'error'; rcode: number; header: QueryHeader }
  | { kind: 'query'; query: ClientQuery };

/** Reads a client's query (RFC 1035 §4.1, RFC 6891 for EDNS, RFC 8484 for the id). */
export function parseClientQuery(buf: Buffer): QueryParse {
  if (buf.length < 12) return { kind: 'malformed', reason: 'shorter than a DNS header' };
  let p: DecodedPacket;
  try {
    p = decode(buf);
  } catch (err) {
    return { kind: 'malformed', reason: (err as Error).message };
  }
  if (decode.bytes !== buf.length) return { kind: 'malformed', reason: 'trailing bytes after the message' };
  const id = p.id ?? 0;
  const flags = p.flags ?? 0;
  const questions = p.questions ?? [];
  const opts = (p.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
  const first = opts[0];
  const padded = first?.options?.some((o) => o.code === OPT_PADDING) ?? false;
  const edns = first === undefined ? null : { padded };
  // A response carries the question only when the query had exactly one (RFC 9619 §3).
  const echoed = questions.length === 1 ? questions : [];
  const err = (rcode: number, withEdns = edns): QueryParse => ({
    kind: 'error',
    rcode,
    header: { id, flags, questions: echoed, edns: withEdns },
  });
  const opcode = (flags >> 11) & 0xf;
  // A response is not a query; more than one OPT is FORMERR without an OPT (RFC 6891 §6.1.1).
  if (p.flag_qr) return err(RCODE.FORMERR);
  if (opts.length > 1) return err(RCODE.FORMERR, null);
  if (first !== undefined && (first.name !== '.' || first.ednsVersion !== 0)) return err(first.name !== '.' ? RCODE.FORMERR : BADVERS);
  if (opcode !== 0) return err(RCODE.NOTIMP);
  // RFC 9619: a QUERY carries exactly one question; servers answer others with FORMERR.
  if (questions.length !== 1) return err(RCODE.FORMERR);
  const question = questions[0] as Question;
  return { kind: 'query', query: { id, flags, questions, question, edns } };
}

export interface ResponseParts {
  rcode: number;
  answers?: readonly Answer[];
  authority?: readonly Answer[];
  /** RFC 8914 Extended DNS Error (only sent when the client speaks EDNS). */
  ede?: { code: number; text: string };
}

/** Our answer to a client: id, question, RD and CD echoed; RA set (we recurse, via upstream). */
export function buildResponse(q: QueryHeader, r: ResponseParts): Buffer {
  const opcode = (q.flags >> 11) & 0xf;
  const flags = (opcode << 11) | (q.flags & RD) | RA | (q.flags & CD) | (r.rcode & 0xf);
  const packet: Packet = {
    type: 'response',
    id: q.id,
    flags,
    questions: [...q.questions],
    answers: [...(r.answers ?? [])],
    authorities: [...(r.authority ?? [])],
  };
  if (q.edns !== null) {
    const options: { code: number; data?: Buffer; length?: number }[] = [];
    if (r.ede) {
      const data = Buffer.alloc(2 + Buffer.byteLength(r.ede.text));
      data.writeUInt16BE(r.ede.code, 0);
      data.write(r.ede.text, 2);
      options.push({ code: OPT_EDE, data });
    }
    const opt = {
      name: '.',
      type: 'OPT',
      udpPayloadSize: EDNS_PAYLOAD,
      extendedRcode: r.rcode >> 4,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options,
    } as unknown as OptAnswer;
    packet.additionals = [opt];
    if (q.edns.padded) pad(packet, options, RESPONSE_BLOCK);
  }
  return encode(packet);
}

/** Appends an RFC 7830 padding option so the whole message is a multiple of `block` octets. */
function pad(packet: Packet, options: { code: number; length?: number }[], block: number): void {
  const unpadded = encodingLength(packet) + 4; // option code + length
  options.push({ code: OPT_PADDING, length: (block - (unpadded % block)) % block });
}

/** The query we send upstream: id 0 (RFC 8484 §4.1), RD, EDNS with padding (RFC 8467). */
export function buildUpstreamQuery(name: string, type: string): Buffer {
  const options: { code: number; length?: number }[] = [];
  const opt = {
    name: '.',
    type: 'OPT',
    udpPayloadSize: EDNS_PAYLOAD,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: 0,
    options,
  } as unknown as OptAnswer;
  const packet: Packet = {
    type: 'query',
    id: 0,
    flags: RD,
    questions: [{ name, type: type as Question['type'], class: 'IN' }],
    additionals: [opt],
  };
  pad(packet, options, QUERY_BLOCK);
  return encode(packet);
}

export type UpstreamAnswer = { ok: true; set: RecordSet } | { ok: false; rcode: Rcode | 'OTHER' } | { ok: 'invalid'; reason: string };

/**
 * Reads an upstream's answer to our (name, type) question. `invalid` means the server is
 * broken (counts against its health); `ok: false` is a DNS-level failure (SERVFAIL, REFUSED…),
 * worth asking the next server but not a sign the server is down.
 */
export function parseUpstreamAnswer(buf: Buffer, name: string, type: string): UpstreamAnswer {
  let p: DecodedPacket;
  try {
    p = decode(buf);
  } catch (err) {
    return { ok: 'invalid', reason: `undecodable answer: ${(err as Error).message}` };
  }
  const q = p.questions?.[0];
  if (!p.flag_qr || p.questions?.length !== 1 || q === undefined) return { ok: 'invalid', reason: 'not a response to one question' };
  // The answer must be to our question (RFC 5452 §9.1); DoH has no truncation (RFC 8484 §6).
  if (q.name.toLowerCase() !== name || q.type !== type) return { ok: 'invalid', reason: 'answer to another question' };
  if ((p.flags ?? 0) & TC) return { ok: 'invalid', reason: 'truncated answer' };
  const rcode = (p.flags ?? 0) & 0xf;
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) {
    const known = (Object.keys(RCODE) as Rcode[]).find((k) => RCODE[k] === rcode);
    return { ok: false, rcode: known ?? 'OTHER' };
  }
  const answers = (p.answers ?? []).filter((a) => a.type !== 'OPT');
  const authority = (p.authorities ?? []).filter((a): a is SoaAnswer => a.type === 'SOA');
  return { ok: true, set: { rcode: rcode === RCODE.NXDOMAIN ? 'NXDOMAIN' : 'NOERROR', answers, authority } };
}
