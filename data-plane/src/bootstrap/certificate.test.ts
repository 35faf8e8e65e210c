import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureCertificate, provideCertificatePair } from './certificate.js';
import { ensureAdminToken } from './admin-token.js';

const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'fg-cert-'));
  dirs.push(d);
  return d;
};
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('self-signed certificate', () => {
  it('is generated once for localhost and reused', async () => {
    const dir = await tempDir();
    const first = await ensureCertificate({ stateDir: dir });
    expect(first.generated).toBe(true);
    const cert = new X509Certificate(await readFile(first.certPath));
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect((await stat(first.keyPath)).mode & 0o777).toBe(0o600);
    const second = await ensureCertificate({ stateDir: dir });
    expect(second.generated).toBe(false);
    expect(second.certPath).toBe(first.certPath);
  });
  it('refuses half a configured pair', async () => {
    await expect(ensureCertificate({ stateDir: await tempDir(), certPath: '/x.crt' })).rejects.toThrow(/must be set together/);
  });
  it('refuses an unreadable configured file', async () => {
    await expect(ensureCertificate({ stateDir: await tempDir(), certPath: '/nope.crt', keyPath: '/nope.key' })).rejects.toThrow(
      /TLS_CERT_PATH points to a file that cannot be read/,
    );
  });
});

describe('admin token', () => {
  it('prefers the configured token', async () => {
    expect((await ensureAdminToken('configured-token-123456', await tempDir())).token).toBe('configured-token-123456');
  });
  it('generates one, stores it 0600 and reuses it', async () => {
    const dir = await tempDir();
    const a = await ensureAdminToken(undefined, dir);
    expect(a.token.length).toBeGreaterThanOrEqual(32);
    expect((await stat(a.path!)).mode & 0o777).toBe(0o600);
    expect((await ensureAdminToken(undefined, dir)).token).toBe(a.token);
  });
});

describe('provideCertificatePair (compose’s frontend certificate)', () => {
  it('generates a pair for the given names once, then keeps it (or the operator’s)', async () => {
    const dir = join(await tempDir(), 'tls');
    const first = await provideCertificatePair(dir, ['fluxgate.example', 'localhost']);
    expect(first).toEqual({ certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key'), generated: true });
    const cert = new X509Certificate(await readFile(first.certPath));
    expect(cert.subjectAltName).toContain('DNS:fluxgate.example');
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(first.keyPath)))).toBe(true);
    expect((await stat(first.keyPath)).mode & 0o777).toBe(0o600);
    const pem = await readFile(first.certPath, 'utf8');
    expect((await provideCertificatePair(dir, ['other.example'])).generated).toBe(false);
    expect(await readFile(first.certPath, 'utf8')).toBe(pem);
  });
  it('refuses half a pair instead of overwriting it', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'tls.crt'), 'operator certificate');
    await expect(provideCertificatePair(dir, [])).rejects.toThrow(/holds tls\.crt without tls\.key/);
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe('operator certificate');
  });
});
