import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { checkSecretFile, writeSecretFile, type Warn } from './secret-file.js';

export interface TlsFiles {
  certPath: string;
  keyPath: string;
  /** True when the pair was generated on this start. */
  generated: boolean;
}

/**
 * The public listener always speaks TLS. With TLS_CERT_PATH/TLS_KEY_PATH we use the operator's
 * pair; otherwise a self-signed pair for localhost is generated once under the state dir and
 * reused (regenerated when it is about to expire). The key file is written 0600, and an existing
 * key (configured or generated) is checked like every secret file (secret-file.ts).
 */
export async function ensureCertificate(opts: {
  certPath?: string | undefined;
  keyPath?: string | undefined;
  stateDir: string;
  warn?: Warn;
  /** The variables errors name (default TLS_CERT_PATH/TLS_KEY_PATH; the admin listener's own pair has its own). */
  variables?: { cert: string; key: string };
}): Promise<TlsFiles> {
  const warn = opts.warn ?? (() => undefined);
  const names = opts.variables ?? { cert: 'TLS_CERT_PATH', key: 'TLS_KEY_PATH' };
  if (opts.certPath || opts.keyPath) {
    if (!opts.certPath || !opts.keyPath) throw new Error(`${names.cert} and ${names.key} must be set together`);
    await assertReadable(opts.certPath, names.cert);
    await assertReadable(opts.keyPath, names.key);
    await checkSecretFile(opts.keyPath, names.key, warn);
    return { certPath: opts.certPath, keyPath: opts.keyPath, generated: false };
  }
  const dir = join(opts.stateDir, 'tls');
  const certPath = join(dir, 'localhost.crt');
  const keyPath = join(dir, 'localhost.key');
  if ((await stillValid(certPath)) && (await checkSecretFile(keyPath, 'TLS key', warn))) return { certPath, keyPath, generated: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  await writeSecretFile(keyPath, pems.private);
  await writeFile(certPath, pems.cert, { mode: 0o644 });
  return { certPath, keyPath, generated: true };
}

async function assertReadable(path: string, variable: string): Promise<void> {
  try {
    await stat(path);
  } catch {
    throw new Error(`${variable} points to a file that cannot be read: ${path}`);
  }
}

/** A generated certificate is reused while it has more than a week left. */
async function stillValid(certPath: string): Promise<boolean> {
  try {
    const cert = new X509Certificate(await readFile(certPath));
    return new Date(cert.validTo).getTime() - Date.now() > 7 * 24 * 3600 * 1000;
  } catch {
    return false;
  }
}
