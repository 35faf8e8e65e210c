import { isIP } from 'node:net';
import type { DataPlaneConfig } from './schema.js';

type AdminSettings = Pick<DataPlaneConfig, 'ADMIN_HOST' | 'ADMIN_TLS' | 'ADMIN_TLS_CERT_PATH' | 'ADMIN_TLS_KEY_PATH'>;

/** 127.0.0.0/8, ::1 (also bracketed or IPv4-mapped) and `localhost`: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    // WHATWG URL parsing writes every IPv6 form canonically (0:0:…:1 → ::1, ::ffff:127.0.0.1 → ::ffff:7f00:1).
    const canonical = new URL(`http://[${h}]/`).hostname.slice(1, -1);
    return canonical === '::1' || /^::ffff:7f[0-9a-f]{2}:/.test(canonical);
  }
  return false;
}

/** The admin listener speaks TLS when ADMIN_TLS says so, or when it has a certificate pair of its own. */
export const adminTlsEnabled = (c: AdminSettings): boolean =>
  c.ADMIN_TLS ?? (c.ADMIN_TLS_CERT_PATH !== undefined || c.ADMIN_TLS_KEY_PATH !== undefined);

/**
 * The admin listener carries the bearer token and the operator routes: in plain HTTP it must
 * stay on loopback. One config-error line naming the variable, or null when the settings hold.
 */
export function adminListenerProblem(c: AdminSettings): string | null {
  if ((c.ADMIN_TLS_CERT_PATH === undefined) !== (c.ADMIN_TLS_KEY_PATH === undefined))
    return 'invalid ADMIN_TLS_CERT_PATH: ADMIN_TLS_CERT_PATH and ADMIN_TLS_KEY_PATH must be set together';
  if (c.ADMIN_TLS === false && c.ADMIN_TLS_CERT_PATH !== undefined)
    return 'invalid ADMIN_TLS: false, but ADMIN_TLS_CERT_PATH/ADMIN_TLS_KEY_PATH are set (unset them, or set ADMIN_TLS=true)';
  if (!adminTlsEnabled(c) && !isLoopbackHost(c.ADMIN_HOST))
    return (
      `invalid ADMIN_HOST: ${c.ADMIN_HOST} is not a loopback address, and the admin listener would serve its bearer token in plain HTTP; ` +
      'set ADMIN_TLS=true (the public listener’s certificate) or ADMIN_TLS_CERT_PATH/ADMIN_TLS_KEY_PATH, or bind ADMIN_HOST to 127.0.0.1'
    );
  return null;
}
