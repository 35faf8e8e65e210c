import { monitorEventLoopDelay } from 'node:perf_hooks';
import { argon2id, hash } from 'argon2';
import { describe, expect, it } from 'vitest';
import { ARGON2_MIN, PASSWORD_MAX_CHARS, checkPasswordPolicy, createPasswordHasher } from './password.js';

describe('checkPasswordPolicy', () => {
  it.each([
    ['short', 'Tr0ub4dor&3', 'too_short'],
    ['over the cap', 'x1y2z3'.repeat(200), 'too_long'],
    ['one character repeated', 'aaaaaaaaaaaaaaaa', 'too_repetitive'],
    ['two characters alternating', 'abababababababab', 'too_repetitive'],
    ['an ascending run', 'abcdefghijklmn', 'sequential'],
    ['a descending run', '987654321098', 'common'],
    ['a well-known long password', '1q2w3e4r5t6y', 'common'],
    ['a common word with digits', 'Password12345', 'common'],
    ['a common word in leetspeak', 'P@ssw0rd!2024', 'common'],
    ['a repeated common word', 'monkeymonkeymonkey', 'common'],
    ['a season and year', 'Summer2024!!', 'common'],
    ['digits only', '849302716455', 'common'],
    ['the email itself', 'me.myself@example.com', 'contains_email'],
    ['the email name part', 'jonathan.smith-1990!', 'contains_email'],
  ])('refuses %s', (_what, password, problem) => {
    expect(checkPasswordPolicy(password, { email: password.includes('@') ? password : 'jonathan.smith@example.com' })).toBe(problem);
  });

  it.each(['violet-Tractor-harbour-93', 'correct horse battery', 'Zw9!kq2#Lm0p', 'ünïcødé pässphrâse', 'x'.repeat(5) + 'yzabc1234567'])(
    'accepts %s',
    (password) => {
      expect(checkPasswordPolicy(password, { email: 'someone@example.com' })).toBeNull();
    },
  );

  it('counts characters, not UTF-16 units or bytes, and takes the maximum inclusive', () => {
    expect(checkPasswordPolicy('🔒🔑🚪🗝️🧱🪟😀🙃🎈🎉🎊🎁')).toBeNull();
    const atCap = 'abcde12345'.repeat(Math.ceil(PASSWORD_MAX_CHARS / 10)).slice(0, PASSWORD_MAX_CHARS);
    expect(checkPasswordPolicy(atCap)).toBeNull();
    expect(checkPasswordPolicy(`${atCap}z`)).toBe('too_long');
  });
});

describe('createPasswordHasher', () => {
  const hasher = createPasswordHasher();

  it('hashes with Argon2id at OWASP minimum parameters and a random salt', async () => {
    const a = await hasher.hash('violet-Tractor-harbour-93');
    const b = await hasher.hash('violet-Tractor-harbour-93');
    const [, type, , params] = a.split('$');
    expect(type).toBe('argon2id');
    expect(new Set(params?.split(','))).toEqual(new Set(['m=19456', 't=2', 'p=1']));
    expect(a).not.toBe(b);
    expect(await hasher.verify(a, 'violet-Tractor-harbour-93')).toBe(true);
    expect(await hasher.verify(a, 'violet-Tractor-harbour-94')).toBe(false);
  });

  it('normalises Unicode (NFKC) so equivalent spellings verify', async () => {
    const h = await hasher.hash('ﬁnal-answer-42-x');
    expect(await hasher.verify(h, 'final-answer-42-x')).toBe(true);
  });

  it('treats a stored hash that is not a PHC string as a failed verify, not an error', async () => {
    await expect(hasher.verify('not-a-hash', 'whatever-password')).resolves.toBe(false);
    await expect(hasher.verify('', 'whatever-password')).resolves.toBe(false);
  });

  it('the dummy verify always fails', async () => {
    await expect(hasher.verifyDummy('violet-Tractor-harbour-93')).resolves.toBe(false);
  });

  it('asks for a rehash of hashes made with other parameters only', async () => {
    const old = await hash('violet-Tractor-harbour-93', { type: argon2id, memoryCost: 19_456, timeCost: 3, parallelism: 1 });
    expect(hasher.needsRehash(old)).toBe(true);
    expect(hasher.needsRehash(await hasher.hash('violet-Tractor-harbour-93'))).toBe(false);
    expect(hasher.needsRehash('garbage')).toBe(true);
  });

  it('refuses parameters below the OWASP minimum', () => {
    expect(() => createPasswordHasher({ ...ARGON2_MIN, memoryCost: 4096 })).toThrow(RangeError);
    expect(() => createPasswordHasher({ ...ARGON2_MIN, timeCost: 1 })).toThrow(RangeError);
  });

  it('hashes off the event loop: 8 concurrent hashes never stall it for long', async () => {
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const started = performance.now();
    await Promise.all(Array.from({ length: 8 }, (_, i) => hasher.hash(`violet-Tractor-harbour-${i}`)));
    const elapsed = performance.now() - started;
    h.disable();
    const maxStallMs = h.max / 1e6;
    // Hashing on the loop would stall it for (nearly) the whole batch in one go; on the
    // threadpool the loop keeps turning while the batch takes several hash-times.
    expect(elapsed).toBeGreaterThan(40);
    expect(maxStallMs).toBeLessThan(elapsed / 2);
  });
});
