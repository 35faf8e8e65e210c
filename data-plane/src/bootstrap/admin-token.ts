import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkSecretFile, writeSecretFile, type Warn } from './secret-file.js';

/**
 * A secret the operator may configure; when unset, one is generated once and kept (0600) under
 * the state dir, so a local operator can read it and it survives restarts. Its value is never
 * logged: only the file path is. Used for ADMIN_TOKEN and, outside production, JWT_SECRET.
 * An existing file is checked first (secret-file.ts): another user's file is refused, a loose
 * mode is narrowed to 0600 with a warning.
 */
export async function ensureSecret(
  configured: string | undefined,
  stateDir: string,
  fileName: string,
  minLength = 16,
  warn: Warn = () => undefined,
): Promise<{ token: string; path: string | null }> {
  if (configured) return { token: configured, path: null };
  const path = join(stateDir, fileName);
  if (await checkSecretFile(path, fileName, warn)) {
    const existing = (await readFile(path, 'utf8')).trim();
    if (existing.length >= minLength) return { token: existing, path };
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  await writeSecretFile(path, `${token}\n`);
  return { token, path };
}

export const ensureAdminToken = (configured: string | undefined, stateDir: string, warn?: Warn) =>
  ensureSecret(configured, stateDir, 'admin-token', 16, warn);
