/**
 * A throwaway self-signed certificate for tests that need real TLS on 127.0.0.1, made with the
 * system's openssl (as an operator would) into a fresh temp dir.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCert {
  dir: string;
  certPath: string;
  keyPath: string;
  cleanup(): Promise<void>;
}

export async function makeTestCert(): Promise<TestCert> {
  const dir = await mkdtemp(join(tmpdir(), 'fluxgate-tls-'));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? 'openssl is not on PATH: install it to run the TLS tests' : `openssl failed: ${String(e)}`, { cause: e });
  }
  return { dir, certPath, keyPath, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
