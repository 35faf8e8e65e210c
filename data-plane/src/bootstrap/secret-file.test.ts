import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRuntimeFile } from '../cli/config.js';
import { ensureAdminToken, ensureSecret } from './admin-token.js';
import { ensureCertificate } from './certificate.js';
import { SecretFileError, checkSecretFile, secretFileVerdict, writeSecretFile } from './secret-file.js';

const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'fg-secret-'));
  dirs.push(d);
  return d;
};
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
const me = process.getuid!();
/** A uid that is neither ours nor root's. */
const STRANGER = me === 4242 ? 4243 : 4242;

describe('secretFileVerdict (the StrictModes rule)', () => {
  it('accepts our own 0600 file and root-owned 0600 files', () => {
    expect(secretFileVerdict({ uid: 1000, mode: 0o100600 }, '/s', 'x', 1000)).toEqual({});
    expect(secretFileVerdict({ uid: 0, mode: 0o100400 }, '/s', 'x', 1000)).toEqual({});
  });
  it('narrows our own loose file, only warns about a root-owned one, refuses anyone else’s', () => {
    expect(secretFileVerdict({ uid: 1000, mode: 0o100644 }, '/s', 'admin-token', 1000).chmod).toBe(
      'admin-token /s was readable by other users (mode 0644): changed to 0600',
    );
    const rootOwned = secretFileVerdict({ uid: 0, mode: 0o100644 }, '/k', 'TLS_KEY_PATH', 1000);
    expect(rootOwned).toEqual({
      warn: 'TLS_KEY_PATH /k is readable by other users (mode 0644, owned by root): restrict it with chmod 600',
    });
    expect(secretFileVerdict({ uid: 1001, mode: 0o100600 }, '/s', 'jwt-secret', 1000).refuse).toMatch(
      /^jwt-secret \/s is owned by uid 1001, not by this user \(uid 1000\) or root: refusing/,
    );
  });
});

describe('secret files on disk', () => {
  it('an existing admin token with mode 0644 is narrowed to 0600, with a warning, and still used', async () => {
    const dir = await tempDir();
    const path = join(dir, 'admin-token');
    await writeFile(path, 'existing-token-abcdefghijklmnop\n', { mode: 0o644 });
    await chmod(path, 0o644);
    const warnings: string[] = [];
    const got = await ensureAdminToken(undefined, dir, (m) => warnings.push(m));
    expect(got.token).toBe('existing-token-abcdefghijklmnop');
    expect(await modeOf(path)).toBe(0o600);
    expect(warnings).toEqual([`admin-token ${path} was readable by other users (mode 0644): changed to 0600`]);
    expect(warnings.join()).not.toContain('existing-token');
  });

  it('a secret file owned by another user is refused', async () => {
    const dir = await tempDir();
    const path = join(dir, 'jwt-secret');
    await writeFile(path, 'x'.repeat(40), { mode: 0o600 });
    if (me === 0) {
      // As root we can hand the file to a stranger and see the real check refuse it.
      await chown(path, STRANGER, STRANGER);
      await expect(ensureSecret(undefined, dir, 'jwt-secret', 32)).rejects.toThrow(SecretFileError);
      await expect(checkSecretFile(path, 'jwt-secret', () => undefined)).rejects.toThrow(/owned by uid 4242/);
      expect(await readFile(path, 'utf8')).toBe('x'.repeat(40));
    } else {
      expect(secretFileVerdict({ uid: STRANGER, mode: 0o100600 }, path, 'jwt-secret').refuse).toContain(`owned by uid ${STRANGER}`);
    }
  });

  it('regenerating over a short 0644 secret leaves a 0600 file (writeFile’s mode only applies on create)', async () => {
    const dir = await tempDir();
    const path = join(dir, 'jwt-secret');
    await writeFile(path, 'short\n');
    await chmod(path, 0o644);
    const got = await ensureSecret(undefined, dir, 'jwt-secret', 32);
    expect(got.token.length).toBeGreaterThanOrEqual(32);
    expect(await modeOf(path)).toBe(0o600);
    const runtime = join(dir, 'runtime.json');
    await writeFile(runtime, '{}\n', { mode: 0o644 });
    await chmod(runtime, 0o644);
    await writeSecretFile(runtime, '{"REDIS_URL":"redis://:pw@127.0.0.1:1"}\n');
    expect(await modeOf(runtime)).toBe(0o600);
  });

  it('a generated TLS key that became 0644 is narrowed on the next start; a configured one too', async () => {
    const dir = await tempDir();
    const first = await ensureCertificate({ stateDir: dir });
    await chmod(first.keyPath, 0o644);
    const warnings: string[] = [];
    const second = await ensureCertificate({ stateDir: dir, warn: (m) => warnings.push(m) });
    expect(second.generated).toBe(false);
    expect(await modeOf(first.keyPath)).toBe(0o600);
    expect(warnings).toEqual([`TLS key ${first.keyPath} was readable by other users (mode 0644): changed to 0600`]);

    await chmod(first.keyPath, 0o640);
    warnings.length = 0;
    await ensureCertificate({ stateDir: await tempDir(), certPath: first.certPath, keyPath: first.keyPath, warn: (m) => warnings.push(m) });
    expect(await modeOf(first.keyPath)).toBe(0o600);
    expect(warnings[0]).toMatch(/^TLS_KEY_PATH .* \(mode 0640\): changed to 0600$/);
  });

  it('the CLI ignores a runtime.json it does not trust and narrows a loose one', async () => {
    const dir = await tempDir();
    const path = join(dir, 'runtime.json');
    await writeFile(path, JSON.stringify({ DATABASE_URL: 'postgres://postgres:pw@127.0.0.1:1/postgres' }), { mode: 0o644 });
    await chmod(path, 0o644);
    const warnings: string[] = [];
    expect(readRuntimeFile(dir, (m) => warnings.push(m))).toEqual({ DATABASE_URL: 'postgres://postgres:pw@127.0.0.1:1/postgres' });
    expect(await modeOf(path)).toBe(0o600);
    expect(warnings).toHaveLength(1);
    if (me === 0) {
      await chown(path, STRANGER, STRANGER);
      warnings.length = 0;
      expect(readRuntimeFile(dir, (m) => warnings.push(m))).toEqual({});
      expect(warnings[0]).toMatch(/^ignoring it: runtime file .* is owned by uid 4242/);
    }
  });
});
