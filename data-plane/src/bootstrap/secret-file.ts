import { randomBytes } from 'node:crypto';
import { chmodSync, statSync, type Stats } from 'node:fs';
import { chmod, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A secret file we must not use: owned by another (non-root) user. */
export class SecretFileError extends Error {
  override name = 'SecretFileError';
}

export type Warn = (message: string) => void;

/** Group and other permission bits: a secret file has none of them. */
const LOOSE_BITS = 0o077;

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/**
 * The rule for an existing secret file (admin token, JWT secret, TLS key, runtime.json), the
 * one sshd's StrictModes applies to authorized_keys: it must belong to this user or to root
 * (root can read it anyway), otherwise someone else controls what we trust and we refuse. A mode
 * that lets group or others read it is narrowed to 0600 with a warning when the file is ours; a
 * root-owned file (a mounted secret) is only warned about, we cannot change it.
 */
export function secretFileVerdict(
  st: Pick<Stats, 'uid' | 'mode'>,
  path: string,
  label: string,
  me: number | undefined = process.getuid?.(),
): { refuse?: string; chmod?: string; warn?: string } {
  // No uids on Windows: nothing to compare.
  if (me === undefined) return {};
  if (st.uid !== me && st.uid !== 0) {
    return {
      refuse: `${label} ${path} is owned by uid ${st.uid}, not by this user (uid ${me}) or root: refusing to use it (chown it or remove it)`,
    };
  }
  if ((st.mode & LOOSE_BITS) === 0) return {};
  if (st.uid === me) return { chmod: `${label} ${path} was readable by other users (mode ${octal(st.mode)}): changed to 0600` };
  return { warn: `${label} ${path} is readable by other users (mode ${octal(st.mode)}, owned by root): restrict it with chmod 600` };
}

const cannotChmod = (path: string, label: string, err: unknown): string =>
  `${label} ${path} is readable by other users and could not be changed to 0600 (${(err as NodeJS.ErrnoException).code ?? String(err)}): restrict it`;

/**
 * Checks an existing secret file before it is used (see `secretFileVerdict`); throws
 * SecretFileError when it must not be used. Follows symlinks: what matters is the file whose
 * content we read. Returns false when the file does not exist.
 */
export async function checkSecretFile(path: string, label: string, warn: Warn): Promise<boolean> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const v = secretFileVerdict(st, path, label);
  if (v.refuse) throw new SecretFileError(v.refuse);
  if (v.chmod) {
    try {
      await chmod(path, 0o600);
      warn(v.chmod);
    } catch (err) {
      // A read-only mount, for instance: the content is still ours, so use it and say so.
      warn(cannotChmod(path, label, err));
    }
  }
  if (v.warn) warn(v.warn);
  return true;
}

/** `checkSecretFile` for synchronous callers (the CLI reading runtime.json). */
export function checkSecretFileSync(path: string, label: string, warn: Warn): boolean {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const v = secretFileVerdict(st, path, label);
  if (v.refuse) throw new SecretFileError(v.refuse);
  if (v.chmod) {
    try {
      chmodSync(path, 0o600);
      warn(v.chmod);
    } catch (err) {
      warn(cannotChmod(path, label, err));
    }
  }
  if (v.warn) warn(v.warn);
  return true;
}

/**
 * Writes a secret file with mode 0600 whatever was there before: `writeFile`'s mode only
 * applies when it creates the file, so an existing 0644 file would keep its mode. A fresh
 * temporary file renamed over the target is created 0600 and replaces it atomically.
 */
export async function writeSecretFile(path: string, content: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
