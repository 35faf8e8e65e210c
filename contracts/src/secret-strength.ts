import { z } from 'zod';

/**
 * Refuses obviously weak configured secrets (ADMIN_TOKEN, JWT_SECRET) at boot. Not an entropy
 * meter: a handful of rules that catch what people actually paste into .env — a placeholder
 * ("changeme", "your-jwt-secret-here"), one character repeated, a short pattern repeated, an
 * alphabet or keyboard run — while a value from `openssl rand -base64 32` or `-hex 32` always
 * passes (the thresholds below sit far outside what random strings produce).
 */

/** Words of placeholders and examples; removed before judging what is left (longest first). */
const PLACEHOLDER_WORDS = [
  'placeholder',
  'changeme',
  'password',
  'generate',
  'insecure',
  'fluxgate',
  'example',
  'default',
  'replace',
  'letmein',
  'passwd',
  'secret',
  'change',
  'sample',
  'random',
  'string',
  'qwerty',
  'please',
  'admin',
  'token',
  'dummy',
  'value',
  'your',
  'here',
  'with',
  'some',
  'this',
  'that',
  'test',
  'todo',
  'long',
  'pass',
  'key',
  'jwt',
  'xxx',
].sort((a, b) => b.length - a.length);
const PLACEHOLDER_RE = new RegExp(PLACEHOLDER_WORDS.join('|'), 'gi');

/** Keyboard rows (US layout) and the digit row: neighbours here count as a run. */
const KEYBOARD_ROWS = ['qwertyuiop', 'asdfghjkl', 'zxcvbnm', '1234567890'];
const KEY_NEIGHBOURS = new Set<string>();
for (const row of KEYBOARD_ROWS) {
  for (let i = 0; i + 1 < row.length; i++) KEY_NEIGHBOURS.add(row.slice(i, i + 2)).add(`${row[i + 1]}${row[i]}`);
}

/** What is left of a secret once placeholder words and separators are taken out. */
const MIN_RESIDUE = 12;
/**
 * Adjacent pairs that step through the alphabet, digits or a keyboard row: a value is a run when
 * half its pairs do, and at least this many (short random values hit half by chance).
 */
const MIN_RUN_PAIRS = 10;

const distinct = (s: string): number => new Set(s).size;

/** Fewest distinct characters a value of this length must have (a random one has far more). */
const minDistinct = (length: number): number => Math.min(10, Math.ceil(length / 4));

/** The shortest unit the whole string repeats (with a partial last copy), or null. */
function repeatedUnit(s: string): number | null {
  for (let p = 1; p <= s.length / 2; p++) {
    let periodic = true;
    for (let i = p; i < s.length && periodic; i++) periodic = s[i] === s[i - p];
    if (periodic) return p;
  }
  return null;
}

function isRun(s: string): boolean {
  const lower = s.toLowerCase();
  let runs = 0;
  for (let i = 1; i < lower.length; i++) {
    const step = lower.charCodeAt(i) - lower.charCodeAt(i - 1);
    if (step === 1 || step === -1 || KEY_NEIGHBOURS.has(lower.slice(i - 1, i + 1))) runs++;
  }
  return runs >= MIN_RUN_PAIRS && runs * 2 >= lower.length - 1;
}

/**
 * Why this secret is obviously weak, in a few words fit for a config error line (never quoting
 * the value), or null when it passes. Length minimums are the schema's own checks.
 */
export function weakSecretReason(value: string): string | null {
  if (distinct(value) < minDistinct(value.length)) return `only ${distinct(value)} distinct characters`;
  const unit = repeatedUnit(value);
  if (unit !== null) return `a ${unit}-character pattern repeated`;
  if (isRun(value)) return 'mostly an alphabet, digit or keyboard sequence';
  const residue = value.replace(PLACEHOLDER_RE, '').replace(/[^0-9a-z]/gi, '');
  if (residue.length < MIN_RESIDUE) return 'mostly placeholder words (changeme, secret, password, …)';
  if (distinct(residue) < minDistinct(residue.length) || repeatedUnit(residue) !== null || isRun(residue)) {
    return 'placeholder words around a guessable remainder';
  }
  return null;
}

/** The config error text: the reason, and how to get a good value. */
export const weakSecretMessage = (reason: string): string => `too weak (${reason}); use a random value, e.g. \`openssl rand -base64 32\``;

/** A secret setting: at least `min` characters (else `tooShort`), and not obviously weak. */
export const strongSecret = (min: number, tooShort: string) =>
  z
    .string()
    .min(min, tooShort)
    .superRefine((value, ctx) => {
      if (value.length < min) return;
      const reason = weakSecretReason(value);
      if (reason !== null) ctx.addIssue({ code: 'custom', message: weakSecretMessage(reason) });
    });
