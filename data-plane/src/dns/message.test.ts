import { decode, encode, type Packet } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { BADVERS, buildResponse, buildUpstreamQuery, parseClientQuery, parseUpstreamAnswer } from './message.js';

const q = (over: Partial<Packet> = {}): Buffer =>
  encode({ type: 'query', id: 4242, flags: 1 << 8, questions: [{ name: 'svc.example', type: 'A', class: 'IN' }], ...over });
const opt = (over: Record<string, unknown> = {}) =>
  ({ name: '.', type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [], ...over }) as never;

describe('parseClientQuery', () => {
  it('accepts one question and reports EDNS and padding', () => {
    const p = parseClientQuery(q({ additionals: [opt({ options: [{ code: 12, length: 20 }] })] }));
    expect(p).toMatchObject({ kind: 'query', query: { id: 4242, question: { name: 'svc.example', type: 'A' }, edns: { padded: true } } });
    expect(parseClientQuery(q())).toMatchObject({ kind: 'query', query: { edns: null } });
  });

  it('answers header-level problems with the RFC RCODE', () => {
    expect(parseClientQuery(q({ questions: [] }))).toMatchObject({ kind: 'error', rcode: 1 });
    const two = parseClientQuery(
      q({
        questions: [
          { name: 'a.example', type: 'A' },
          { name: 'b.example', type: 'A' },
        ],
      }),
    );
    expect(two).toMatchObject({ kind: 'error', rcode: 1, header: { questions: [] } });
    expect(parseClientQuery(q({ flags: 2 << 11 }))).toMatchObject({ kind: 'error', rcode: 4 }); // STATUS opcode
    expect(parseClientQuery(q({ type: 'response' }))).toMatchObject({ kind: 'error', rcode: 1 });
    expect(parseClientQuery(q({ additionals: [opt(), opt()] }))).toMatchObject({ kind: 'error', rcode: 1, header: { edns: null } });
    expect(parseClientQuery(q({ additionals: [opt({ ednsVersion: 1 })] }))).toMatchObject({ kind: 'error', rcode: BADVERS });
  });

  it('calls non-messages malformed', () => {
    expect(parseClientQuery(Buffer.alloc(5))).toMatchObject({ kind: 'malformed' });
    expect(parseClientQuery(q().subarray(0, 20))).toMatchObject({ kind: 'malformed' });
    expect(parseClientQuery(Buffer.concat([q(), Buffer.from([1, 2, 3])]))).toMatchObject({
      kind: 'malformed',
      reason: 'trailing bytes after the message',
    });
  });
});

describe('buildResponse', () => {
  const header = { id: 7, flags: (1 << 8) | (1 << 4), questions: [{ name: 'svc.example', type: 'A' as const, class: 'IN' as const }] };

  it('echoes id, question, RD and CD, sets QR and RA, and carries the RCODE', () => {
    const r = decode(buildResponse({ ...header, edns: null }, { rcode: 3 }));
    expect(r).toMatchObject({ id: 7, flag_qr: true, flag_rd: true, flag_ra: true, flag_cd: true, flag_aa: false, rcode: 'NXDOMAIN' });
    expect(r.questions).toEqual([{ name: 'svc.example', type: 'A', class: 'IN' }]);
    expect(r.additionals).toEqual([]);
  });

  it('adds an OPT when the query had one: extended RCODE, EDE, and padding to 468-octet blocks', () => {
    const bad = decode(buildResponse({ ...header, edns: { padded: false } }, { rcode: BADVERS })) as ReturnType<typeof decode> & {
      rcode: string;
    };
    expect(bad.rcode).toBe('NOERROR');
    expect(bad.additionals?.[0]).toMatchObject({ type: 'OPT', extendedRcode: 1, ednsVersion: 0 });

    const padded = buildResponse({ ...header, edns: { padded: true } }, { rcode: 5, ede: { code: 15, text: 'blocked' } });
    expect(padded.length % 468).toBe(0);
    const options = (decode(padded).additionals?.[0] as { options: { code: number; data: Buffer }[] }).options;
    const ede = options.find((o) => o.code === 15)!;
    expect(ede.data.readUInt16BE(0)).toBe(15);
    expect(ede.data.subarray(2).toString()).toBe('blocked');
  });
});

describe('upstream messages', () => {
  it('sends id 0, RD, EDNS padded to 128 octets', () => {
    const b = buildUpstreamQuery('svc.example', 'AAAA');
    expect(b.length % 128).toBe(0);
    expect(decode(b)).toMatchObject({ id: 0, flag_rd: true, questions: [{ name: 'svc.example', type: 'AAAA' }] });
  });

  it('accepts only an answer to our question', () => {
    const answer = (name: string, flags = (1 << 8) | (1 << 7)) =>
      encode({
        type: 'response',
        id: 0,
        flags,
        questions: [{ name, type: 'A' }],
        answers: [{ name, type: 'A', ttl: 5, data: '203.0.113.1' }],
      });
    expect(parseUpstreamAnswer(answer('SVC.example'), 'svc.example', 'A')).toMatchObject({ ok: true, set: { rcode: 'NOERROR' } });
    expect(parseUpstreamAnswer(answer('evil.example'), 'svc.example', 'A')).toMatchObject({ ok: 'invalid' });
    expect(parseUpstreamAnswer(answer('svc.example', (1 << 9) | 0), 'svc.example', 'A')).toMatchObject({
      ok: 'invalid',
      reason: 'truncated answer',
    });
    expect(parseUpstreamAnswer(answer('svc.example', 2), 'svc.example', 'A')).toEqual({ ok: false, rcode: 'SERVFAIL' });
    expect(parseUpstreamAnswer(q(), 'svc.example', 'A')).toMatchObject({ ok: 'invalid' });
    expect(parseUpstreamAnswer(Buffer.from('junk'), 'svc.example', 'A')).toMatchObject({ ok: 'invalid' });
  });
});
