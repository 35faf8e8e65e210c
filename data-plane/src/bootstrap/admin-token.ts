import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A secret the operator may configure; when unset, one is generated once and kept (0600) under
 * the state dir, so a local operator can read it and it survives restarts. Its value is never
 * logged: only the file path is. Used for ADMIN_TOKEN and, outside production, JWT_SECRET.
 */
export async function ensureSecret(
  configured: string | undefined,
  stateDir: string,
  fileName: string,
  minLength = 16,
): Promise<{ token: string; path: string | null }> {
  if (configured) return { token: configured, path: null };
  const path = join(stateDir, fileName);
  try {
    const existing = (await readFile(path, 'utf8')).trim();
    if (existing.length >= minLength) return { token: existing, path };
  } catch {
    // absent: generate below
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return { token, path };
}

export const ensureAdminToken = (configured: string | undefined, stateDir: string) => ensureSecret(configured, stateDir, 'admin-token');
