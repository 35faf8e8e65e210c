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
  const pems = await selfSignedPair(['localhost']);
  await writeSecretFile(keyPath, pems.private);
  await writeFile(certPath, pems.cert, { mode: 0o644 });
  return { certPath, keyPath, generated: true };
}

/** An ECDSA P-256 pair valid for a year, for the given DNS names plus 127.0.0.1 and ::1. */
async function selfSignedPair(names: string[]): Promise<{ cert: string; private: string }> {
  const now = new Date();
  return generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
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
          ...names.map((value) => ({ type: 2 as const, value })),
          { type: 7 as const, ip: '127.0.0.1' },
          { type: 7 as const, ip: '::1' },
        ],
      },
    ],
  });
}

/**
 * A certificate pair for another server (compose's nginx): `<dir>/tls.crt` and `<dir>/tls.key`
 * are kept when both exist (the operator's, mounted there) and generated self-signed for
 * `names` when neither does. Half a pair is an error, never overwritten.
 */
export async function provideCertificatePair(
  dir: string,
  names: string[],
): Promise<{ certPath: string; keyPath: string; generated: boolean }> {
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  const [hasCert, hasKey] = await Promise.all([exists(certPath), exists(keyPath)]);
  if (hasCert && hasKey) return { certPath, keyPath, generated: false };
  if (hasCert || hasKey)
    throw new Error(`${dir} holds ${hasCert ? 'tls.crt' : 'tls.key'} without ${hasCert ? 'tls.key' : 'tls.crt'}: provide both or neither`);
  await mkdir(dir, { recursive: true });
  const pems = await selfSignedPair(names.length > 0 ? [...new Set(names)] : ['localhost']);
  await writeSecretFile(keyPath, pems.private);
  await writeFile(certPath, pems.cert, { mode: 0o644 });
  return { certPath, keyPath, generated: true };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

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
