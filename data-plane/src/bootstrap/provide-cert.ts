/**
 * `node data-plane/dist/bootstrap/provide-cert.js <dir> [dns name…]`: compose's one-shot
 * `frontend-cert` service. Keeps an operator's `<dir>/tls.crt` + `<dir>/tls.key`, or generates a
 * self-signed pair there for nginx's TLS port (bootstrap/certificate.ts, provideCertificatePair).
 */
import { provideCertificatePair } from './certificate.js';

const [dir, ...names] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: provide-cert.js <dir> [dns name…]\n');
  process.exit(2);
}
provideCertificatePair(dir, names).then(
  (pair) => {
    process.stdout.write(`${pair.generated ? 'generated a self-signed certificate' : 'keeping the certificate'} ${pair.certPath}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`provide-cert: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
