import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677), as Postgres speaks it in its SASL
 * exchange (Postgres docs, "SASL Authentication"): no channel binding, the user name in the
 * client's message ignored (Postgres sends the startup user instead). The password itself never
 * crosses the wire, and the client checks our final signature, so a process that squats the
 * port cannot learn it either.
 */

const ITERATIONS = 4096;

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

export interface ScramVerifier {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** What a server keeps instead of the password (RFC 5802 §3), derived once at start. */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = ITERATIONS): ScramVerifier {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  return { salt, iterations, storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
}

/** Attributes of a SCRAM message (`a=value,b=value`); values may contain '='. */
function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    if (part.length >= 2 && part[1] === '=') out.set(part[0]!, part.slice(2));
  }
  return out;
}

export type ScramStep = { ok: true; reply: string } | { ok: false; reason: string };

/** One exchange: client-first → server-first, then client-final → server-final (or a refusal). */
export class ScramExchange {
  #clientFirstBare = '';
  #serverFirst = '';
  #nonce = '';
  #gs2Header = '';

  /** `serverNonce` is for test vectors only. */
  constructor(
    private readonly verifier: ScramVerifier,
    private readonly serverNonce: () => string = () => randomBytes(18).toString('base64'),
  ) {}

  /** "n,,n=user,r=cnonce" → "r=cnonce+snonce,s=salt,i=iterations". */
  first(clientFirst: string): ScramStep {
    // gs2 header: "n" (no channel binding) or "y" (client could, thinks we cannot); "p=…" needs binding we do not offer.
    const m = /^([ny]),(a=[^,]*)?,(.*)$/.exec(clientFirst);
    if (!m) return { ok: false, reason: 'malformed SCRAM client-first message' };
    this.#gs2Header = `${m[1]},${m[2] ?? ''},`;
    this.#clientFirstBare = m[3]!;
    const cnonce = attributes(this.#clientFirstBare).get('r');
    if (!cnonce || /[^\x21-\x2b\x2d-\x7e]/.test(cnonce)) return { ok: false, reason: 'malformed SCRAM client nonce' };
    this.#nonce = cnonce + this.serverNonce();
    this.#serverFirst = `r=${this.#nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    return { ok: true, reply: this.#serverFirst };
  }

  /** "c=biws,r=nonce,p=proof" → "v=server signature" when the proof matches the password. */
  final(clientFinal: string): ScramStep {
    const at = clientFinal.lastIndexOf(',p=');
    if (at < 0 || !this.#nonce) return { ok: false, reason: 'malformed SCRAM client-final message' };
    const withoutProof = clientFinal.slice(0, at);
    const attrs = attributes(withoutProof);
    if (attrs.get('c') !== Buffer.from(this.#gs2Header).toString('base64') || attrs.get('r') !== this.#nonce) {
      return { ok: false, reason: 'SCRAM channel binding or nonce mismatch' };
    }
    const proof = Buffer.from(clientFinal.slice(at + 3), 'base64');
    if (proof.length !== 32) return { ok: false, reason: 'malformed SCRAM proof' };
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.verifier.storedKey, authMessage);
    const clientKey = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    if (!timingSafeEqual(sha256(clientKey), this.verifier.storedKey)) return { ok: false, reason: 'password authentication failed' };
    return { ok: true, reply: `v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}` };
  }
}
