import { randomBytes } from 'node:crypto';
import { argon2id, hash, needsRehash, verify } from 'argon2';

/**
 * Passwords: a policy in the spirit of NIST SP 800-63B §5.1.1.2 (length over composition rules;
 * refuse common, repetitive, sequential and context-specific choices) and Argon2id hashing at
 * or above OWASP's Password Storage Cheat Sheet minimum (m = 19 MiB, t = 2, p = 1).
 *
 * `argon2` runs every hash and verify as a N-API AsyncWorker, i.e. on libuv's threadpool: the
 * event loop is never blocked by the ~45 ms of hashing.
 */

export const PASSWORD_MIN_CHARS = 12;
/** Long passphrases are welcome (NIST: at least 64); the cap only bounds work per request. */
export const PASSWORD_MAX_CHARS = 1024;
const MIN_DISTINCT_CHARS = 5;

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** OWASP's minimum for Argon2id: 19 MiB (19456 KiB), 2 iterations, 1 lane. */
export const ARGON2_MIN: Argon2Params = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

// Lower-cased exact matches: the most common choices that are long enough to pass the length rule.
const COMMON = new Set(
  (
    '123456789012 1234567890123 12345678901234 123456789123 1234567891011 123412341234 123123123123 ' +
    '112233445566 098765432109 210987654321 qwertyuiopas qwertyuiop12 qwertyuiop123 1q2w3e4r5t6y ' +
    '1qaz2wsx3edc 1qazxsw23edc zaq12wsxcde3 qazwsxedcrfv asdfghjkl123 zxcvbnm12345 qwerty123456 ' +
    'qwertyqwerty q1w2e3r4t5y6 a1b2c3d4e5f6 1234qwerasdf abc123abc123 abcd1234abcd aaaaaa111111 ' +
    '!qaz@wsx#edc correcthorsebatterystaple 1234567890qwertyuiop'
  ).split(' '),
);

// Base words that stay weak whatever digits or symbols surround them ("Summer2024!", "P@ssw0rd1234").
const BASE_WORDS = (
  'password qwerty qwertyuiop asdfgh asdfghjkl zxcvbnm qazwsx iloveyou letmein welcome admin ' +
  'administrator login master dragon monkey football baseball soccer hockey sunshine princess ' +
  'superman batman starwars trustno whatever shadow secret changeme default fluxgate test guest ' +
  'root user hello freedom pokemon michael charlie jordan summer winter spring autumn love flower ' +
  'computer internet access abc abcdef'
).split(' ');
const BASE_RE = new RegExp(`^(?:${BASE_WORDS.join('|')})+$`);
const LEET: Record<string, string> = { '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', $: 's', '!': 'i' };

export type PasswordProblem = 'too_short' | 'too_long' | 'too_repetitive' | 'sequential' | 'common' | 'contains_email';

export const PASSWORD_PROBLEM_MESSAGES: Record<PasswordProblem, string> = {
  too_short: `The password must be at least ${PASSWORD_MIN_CHARS} characters long.`,
  too_long: `The password must be at most ${PASSWORD_MAX_CHARS} characters long.`,
  too_repetitive: `The password must contain at least ${MIN_DISTINCT_CHARS} different characters.`,
  sequential: 'The password must not be a run of consecutive characters.',
  common: 'The password is too common; choose a longer or less predictable one.',
  contains_email: 'The password must not contain your email address or its name part.',
};

/** NIST SP 800-63B §5.1.1.2: normalise Unicode (NFKC) so one passphrase always hashes alike. */
export const normalisePassword = (password: string): string => password.normalize('NFKC');

const isSequential = (chars: readonly string[]): boolean => {
  const step = chars[1]!.codePointAt(0)! - chars[0]!.codePointAt(0)!;
  if (step !== 1 && step !== -1) return false;
  return chars.every((c, i) => i === 0 || c.codePointAt(0)! - chars[i - 1]!.codePointAt(0)! === step);
};

const isCommon = (lower: string): boolean => {
  if (COMMON.has(lower)) return true;
  // Strip leading/trailing digits and symbols, undo leetspeak inside, and look for base words.
  const core = lower.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, '');
  if (core === '') return /^\d+$/.test(lower);
  const deleet = [...core].map((c) => LEET[c] ?? c).join('');
  return BASE_RE.test(deleet);
};

/** Null when the password is acceptable; otherwise the first rule it breaks. */
export function checkPasswordPolicy(password: string, context: { email?: string } = {}): PasswordProblem | null {
  const chars = [...normalisePassword(password)];
  if (chars.length < PASSWORD_MIN_CHARS) return 'too_short';
  if (chars.length > PASSWORD_MAX_CHARS) return 'too_long';
  if (new Set(chars).size < MIN_DISTINCT_CHARS) return 'too_repetitive';
  if (isSequential(chars)) return 'sequential';
  const lower = chars.join('').toLowerCase();
  if (isCommon(lower)) return 'common';
  const email = context.email?.toLowerCase();
  const local = email?.split('@')[0] ?? '';
  if (email && (lower.includes(email) || (local.length >= 4 && lower.includes(local)))) return 'contains_email';
  return null;
}

export interface PasswordHasher {
  readonly params: Argon2Params;
  hash(password: string): Promise<string>;
  /** False for a wrong password and for a stored hash that is not a valid Argon2 PHC string. */
  verify(storedHash: string, password: string): Promise<boolean>;
  /**
   * Spends exactly the time of a real verify, against a hash of a random secret: used for
   * unknown emails and password-less accounts, so they cost what a wrong password costs
   * (OWASP Authentication Cheat Sheet, "Authentication Responses").
   */
  verifyDummy(password: string): Promise<false>;
  /** The stored hash was made with weaker (or other) parameters: rehash after a successful login. */
  needsRehash(storedHash: string): boolean;
}

/**
 * Argon2id hasher. Parameters below OWASP's minimum are refused. The dummy hash is computed
 * once, starting now (off the event loop), so the first unknown-email login is not cheaper or
 * dearer than the rest.
 */
export function createPasswordHasher(params: Argon2Params = ARGON2_MIN): PasswordHasher {
  if (params.memoryCost < ARGON2_MIN.memoryCost || params.timeCost < ARGON2_MIN.timeCost || params.parallelism < ARGON2_MIN.parallelism) {
    throw new RangeError('Argon2id parameters below the OWASP minimum (m=19456 KiB, t=2, p=1)');
  }
  const options = { type: argon2id, ...params } as const;
  const hashIt = (password: string): Promise<string> => hash(normalisePassword(password), options);
  const dummy = hashIt(randomBytes(32).toString('base64url'));
  dummy.catch(() => undefined);

  const verifyIt = async (storedHash: string, password: string): Promise<boolean> => {
    try {
      return await verify(storedHash, normalisePassword(password));
    } catch {
      return false;
    }
  };

  return {
    params,
    hash: hashIt,
    verify: verifyIt,
    async verifyDummy(password) {
      await verifyIt(await dummy, password);
      return false;
    },
    needsRehash(storedHash) {
      try {
        return needsRehash(storedHash, params);
      } catch {
        return true;
      }
    },
  };
}
