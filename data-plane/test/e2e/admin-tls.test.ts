/**
 * The admin listener off loopback (issue 16): a non-loopback ADMIN_HOST in plain HTTP is refused
 * at config parse, naming the variable; with TLS it serves /metrics to a real TLS client that
 * verifies the certificate and sends the bearer token, and refuses plain HTTP on the same port.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway } from '../support/gateway.js';
import { startInProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { makeTestCert, type TestCert } from '../support/tls.js';

let mock: MockUpstream;
let adminCert: TestCert;
let publicCert: TestCert;
const gateways: Array<{ stop(): Promise<unknown> }> = [];

beforeAll(async () => {
  mock = await startMockUpstream();
  adminCert = await makeTestCert();
  publicCert = await makeTestCert();
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await mock?.close();
  await adminCert?.cleanup();
  await publicCert?.cleanup();
});

/** GET over TLS, verifying the server against `ca` (no rejectUnauthorized: false anywhere). */
function getTls(url: string, ca: string, token?: string): Promise<{ status: number; body: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, servername: 'localhost', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
    });
    req.on('error', reject);
    req.end();
  });
}

const fingerprintOf = async (certPath: string) => new X509Certificate(await readFile(certPath)).fingerprint256;

describe('admin listener on a non-loopback address', () => {
  it('is refused in plain HTTP: the data plane exits 2 naming ADMIN_HOST before listening', async () => {
    // The exit code is the process's: this one stays spawned.
    const failure = await startGateway({ upstreams: mock.url, env: { ADMIN_HOST: '0.0.0.0' } }).then(
      (g) => {
        gateways.push(g);
        return null;
      },
      (e: unknown) => (e as Error).message,
    );
    expect(failure).toMatch(/exited with 2 before listening/);
    expect(failure).toMatch(/invalid ADMIN_HOST: 0\.0\.0\.0 is not a loopback address/);
    expect(failure).toContain('ADMIN_TLS');
  });

  it('serves /metrics over TLS with its own certificate and the token, and nothing in plain HTTP', async () => {
    const gw = await startInProcessGateway({
      upstreams: mock.url,
      env: { ADMIN_HOST: '0.0.0.0', ADMIN_TLS_CERT_PATH: adminCert.certPath, ADMIN_TLS_KEY_PATH: adminCert.keyPath },
    });
    gateways.push(gw);
    expect(gw.adminUrl).toMatch(/^https:/);
    const ca = await readFile(adminCert.certPath, 'utf8');

    const metrics = await getTls(`${gw.adminUrl}/metrics`, ca, ADMIN_TOKEN);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('fluxgate_http_requests_total');
    expect(metrics.fingerprint).toBe(await fingerprintOf(adminCert.certPath));
    expect((await getTls(`${gw.adminUrl}/metrics`, ca, 'wrong-token-wrong-token')).status).toBe(401);
    expect((await getTls(`${gw.adminUrl}/admin/upstreams`, ca)).status).toBe(401);

    // The same port in plain HTTP gets no HTTP answer at all (a TLS server sees garbage and closes).
    const plain = await new Promise<string>((resolve) => {
      const req = httpRequest(`http://127.0.0.1:${new URL(gw.adminUrl).port}/metrics`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      req.on('response', (res) => resolve(`HTTP ${res.statusCode}`));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.end();
    });
    expect(plain).not.toMatch(/^HTTP /);
  });

  it('with ADMIN_TLS=true uses the public listener’s certificate', async () => {
    const gw = await startInProcessGateway({
      upstreams: mock.url,
      env: { ADMIN_HOST: '0.0.0.0', ADMIN_TLS: 'true', TLS_CERT_PATH: publicCert.certPath, TLS_KEY_PATH: publicCert.keyPath },
    });
    gateways.push(gw);
    const ca = await readFile(publicCert.certPath, 'utf8');
    const res = await getTls(`${gw.adminUrl}/admin/upstreams`, ca, ADMIN_TOKEN);
    expect(res.status).toBe(200);
    expect(res.fingerprint).toBe(await fingerprintOf(publicCert.certPath));
  });
});
