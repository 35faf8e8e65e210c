import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DISPLAY_RANDOM_CHARS,
  KEY_LENGTH,
  KEY_PREFIX,
  KEY_RANDOM_CHARS,
  encodeKey,
  equalStrings,
  generateKey,
  hashKey,
  parseKey,
} from './key-format.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
// A fixed key so the mutation tests are deterministic.
const FIXED = encodeKey('Zq8xW2vB7nLk4TfP9sRa3yMhC6dJe1GuNo5VtXiQbKw');

describe('generateKey', () => {
  it('has the prefix, the fixed length and only base62 after the prefix', () => {
    const { secret } = generateKey();
    expect(secret.startsWith(KEY_PREFIX)).toBe(true);
    expect(secret).toHaveLength(KEY_LENGTH);
    expect(secret.slice(KEY_PREFIX.length)).toMatch(/^[0-9A-Za-z]+$/);
  });

  it('carries at least 192 bits of randomness beyond what the display prefix shows', () => {
    const hiddenBits = (KEY_RANDOM_CHARS - DISPLAY_RANDOM_CHARS) * Math.log2(62);
    expect(hiddenBits).toBeGreaterThanOrEqual(192);
  });

  it('returns the display prefix and the SHA-256 hex of the secret', () => {
    const k = generateKey();
    expect(k.displayPrefix).toBe(k.secret.slice(0, KEY_PREFIX.length + DISPLAY_RANDOM_CHARS));
    expect(k.hash).toBe(createHash('sha256').update(k.secret).digest('hex'));
    expect(hashKey(k.secret)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('produces keys that parse, and never the same key twice', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const { secret } = generateKey();
      expect(parseKey(secret)).toEqual({ ok: true, key: secret });
      seen.add(secret);
    }
    expect(seen.size).toBe(2000);
  });

  it('uses the whole alphabet roughly uniformly (no modulo bias towards low characters)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      for (const ch of generateKey().secret.slice(KEY_PREFIX.length, KEY_PREFIX.length + KEY_RANDOM_CHARS)) {
        counts.set(ch, (counts.get(ch) ?? 0) + 1);
      }
    }
    expect(counts.size).toBe(62);
    const mean = (3000 * KEY_RANDOM_CHARS) / 62; // ≈ 2081 per character
    for (const n of counts.values()) expect(Math.abs(n - mean) / mean).toBeLessThan(0.12);
  });
});

describe('parseKey', () => {
  it('rejects every single-character substitution', () => {
    for (let i = 0; i < FIXED.length; i++) {
      for (const ch of ALPHABET + '_-') {
        if (ch === FIXED[i]) continue;
        const mutated = FIXED.slice(0, i) + ch + FIXED.slice(i + 1);
        expect(parseKey(mutated).ok, `position ${i} → ${ch}`).toBe(false);
      }
    }
  });

  it('rejects every single bit flip', () => {
    for (let i = 0; i < FIXED.length; i++) {
      for (let bit = 0; bit < 7; bit++) {
        const flipped = String.fromCharCode(FIXED.charCodeAt(i) ^ (1 << bit));
        expect(parseKey(FIXED.slice(0, i) + flipped + FIXED.slice(i + 1)).ok).toBe(false);
      }
    }
  });

  it('rejects adjacent transpositions (the usual typo)', () => {
    for (let i = KEY_PREFIX.length; i < FIXED.length - 1; i++) {
      if (FIXED[i] === FIXED[i + 1]) continue;
      const swapped = FIXED.slice(0, i) + FIXED[i + 1] + FIXED[i] + FIXED.slice(i + 2);
      expect(parseKey(swapped)).toEqual({ ok: false, reason: 'bad_checksum' });
    }
  });

  it('rejects truncation and extension with wrong_length', () => {
    for (let n = 1; n < FIXED.length; n++) expect(parseKey(FIXED.slice(0, n))).toEqual({ ok: false, reason: 'wrong_length' });
    expect(parseKey(FIXED + 'a')).toEqual({ ok: false, reason: 'wrong_length' });
    expect(parseKey(FIXED + '\n')).toEqual({ ok: false, reason: 'wrong_length' });
    expect(parseKey('x'.repeat(1_000_000))).toEqual({ ok: false, reason: 'wrong_length' });
  });

  it('names the reason: empty, wrong prefix, bad characters, bad checksum', () => {
    expect(parseKey('')).toEqual({ ok: false, reason: 'empty' });
    expect(parseKey('sk-_' + FIXED.slice(4))).toEqual({ ok: false, reason: 'wrong_prefix' });
    expect(parseKey('FGK_' + FIXED.slice(4))).toEqual({ ok: false, reason: 'wrong_prefix' });
    expect(parseKey(FIXED.slice(0, 10) + '-' + FIXED.slice(11))).toEqual({ ok: false, reason: 'bad_characters' });
    const last = FIXED.at(-1) === 'a' ? 'b' : 'a';
    expect(parseKey(FIXED.slice(0, -1) + last)).toEqual({ ok: false, reason: 'bad_checksum' });
  });

  it('rejects unicode look-alikes and junk of the right length', () => {
    const lookalikes = ['\u0430', '\uff21', '\u200b', '\u00e9', '\u0000', '\ud83d'];
    for (const ch of lookalikes) {
      const k = FIXED.slice(0, 20) + ch + FIXED.slice(21);
      expect(k).toHaveLength(KEY_LENGTH);
      expect(parseKey(k)).toEqual({ ok: false, reason: 'bad_characters' });
    }
    expect(parseKey('\u{1F600}'.repeat(KEY_LENGTH / 2 + 1).slice(0, KEY_LENGTH)).ok).toBe(false);
  });

  it('rejects 10,000 random strings, including well-formed ones with a made-up checksum', () => {
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const len = 1 + (randomBytes(1)[0]! % 80);
      if (parseKey(randomBytes(len).toString('latin1')).ok) accepted++;
      const body = Array.from(randomBytes(KEY_LENGTH - KEY_PREFIX.length), (b) => ALPHABET[b % 62]).join('');
      if (parseKey(KEY_PREFIX + body).ok) accepted++;
    }
    expect(accepted).toBe(0);
  });
});

describe('encodeKey', () => {
  it('refuses a random part of the wrong size or alphabet', () => {
    expect(() => encodeKey('abc')).toThrow(RangeError);
    expect(() => encodeKey('_'.repeat(KEY_RANDOM_CHARS))).toThrow(RangeError);
  });
});

describe('equalStrings', () => {
  it('compares contents and lengths', () => {
    expect(equalStrings('abc', 'abc')).toBe(true);
    expect(equalStrings('abc', 'abd')).toBe(false);
    expect(equalStrings('abc', 'abcd')).toBe(false);
  });
});
