import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API key format: `fgk_` + 43 random base62 characters + 6 base62 checksum characters.
 *
 * - 43 characters drawn uniformly from 62 (rejection sampling over crypto.randomBytes) carry
 *   43 × log2(62) ≈ 256 bits; the display prefix reveals 8 of them, leaving ≈ 208 unknown bits.
 * - The checksum is the first 32 bits of SHA-256 over `fgk_` + body, in base62: a mistyped,
 *   truncated or made-up key is rejected with probability 1 − 2⁻³² before any lookup.
 * - The stored form is the hex SHA-256 of the whole key.
 *
 * The checksum is not a secret (anyone can compute it); it filters noise, not attackers. Keys
 * with a valid checksum but unknown to Postgres are negatively cached by the key cache.
 */
export const KEY_PREFIX = 'fgk_';
export const KEY_RANDOM_CHARS = 43;
export const KEY_CHECKSUM_CHARS = 6;
export const KEY_LENGTH = KEY_PREFIX.length + KEY_RANDOM_CHARS + KEY_CHECKSUM_CHARS;
/** Random characters shown after the prefix in lists and logs. */
export const DISPLAY_RANDOM_CHARS = 8;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Largest multiple of 62 that fits a byte: bytes at or above it are rejected to avoid bias. */
const REJECT_AT = 248;
const BODY_RE = /^[0-9A-Za-z]+$/;

export interface GeneratedKey {
  /** The whole key, shown to its owner once and never stored. */
  secret: string;
  displayPrefix: string;
  /** Hex SHA-256 of `secret`, the stored form. */
  hash: string;
}

export type KeyRejection = 'empty' | 'wrong_length' | 'wrong_prefix' | 'bad_characters' | 'bad_checksum';
export type ParsedKey = { ok: true; key: string } | { ok: false; reason: KeyRejection };

export function generateKey(): GeneratedKey {
  return describeKey(encodeKey(randomBase62(KEY_RANDOM_CHARS)));
}

/** Builds a key from its random part (exported for tests and fixtures). */
export function encodeKey(randomPart: string): string {
  if (randomPart.length !== KEY_RANDOM_CHARS || !BODY_RE.test(randomPart)) {
    throw new RangeError(`the random part must be ${KEY_RANDOM_CHARS} base62 characters`);
  }
  return KEY_PREFIX + randomPart + checksumOf(KEY_PREFIX + randomPart);
}

export function describeKey(secret: string): GeneratedKey {
  return { secret, displayPrefix: displayPrefixOf(secret), hash: hashKey(secret) };
}

export function displayPrefixOf(key: string): string {
  return key.slice(0, KEY_PREFIX.length + DISPLAY_RANDOM_CHARS);
}

/**
 * Syntactic check only: no I/O, no allocation proportional to untrusted input beyond the
 * fixed-length checks (the length test comes first, so a megabyte header costs nothing).
 */
export function parseKey(input: string): ParsedKey {
  const shape = parseKeyShape(input);
  if (!shape.ok) return shape;
  return hasValidChecksum(input) ? shape : { ok: false, reason: 'bad_checksum' };
}

/** parseKey without the checksum (which costs a SHA-256): length, prefix and alphabet only. */
export function parseKeyShape(input: string): ParsedKey {
  if (input.length === 0) return { ok: false, reason: 'empty' };
  if (input.length !== KEY_LENGTH) return { ok: false, reason: 'wrong_length' };
  if (!input.startsWith(KEY_PREFIX)) return { ok: false, reason: 'wrong_prefix' };
  if (!BODY_RE.test(input.slice(KEY_PREFIX.length))) return { ok: false, reason: 'bad_characters' };
  return { ok: true, key: input };
}

/** Whether a key of the right shape carries the checksum of its body. */
export function hasValidChecksum(key: string): boolean {
  const cut = key.length - KEY_CHECKSUM_CHARS;
  return equalStrings(checksumOf(key.slice(0, cut)), key.slice(cut));
}

/** The stored form of a key: hex SHA-256. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Constant-time comparison of two ASCII strings (false when lengths differ). */
export function equalStrings(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'latin1');
  const bb = Buffer.from(b, 'latin1');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function checksumOf(text: string): string {
  let n = createHash('sha256').update(text, 'utf8').digest().readUInt32BE(0);
  // 62⁶ ≈ 5.7e10 > 2³², so six characters always suffice; left-pad with '0'.
  let out = '';
  for (let i = 0; i < KEY_CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length + 8)) {
      if (byte >= REJECT_AT) continue;
      out += ALPHABET[byte % 62]!;
      if (out.length === length) break;
    }
  }
  return out;
}
