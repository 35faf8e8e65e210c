/**
 * The compose frontend for real (issue 16): the repository's nginx.conf run by nginx, with the
 * certificate compose's frontend-cert generates (dist/bootstrap/provide-cert.js), in front of a real
 * data plane. TLS on its port, /health and the API proxied, streams unbuffered, the SPA with the
 * data plane's headers, and X-Forwarded-For handled as TRUSTED_PROXIES says.
 *
 * Only what cannot exist here is rewritten, each rewrite checked against the file so a change of
 * nginx.conf cannot slip past: the paths, the ports, Docker's DNS (127.0.0.11 and the service name),
 * and the two directives newer than Debian 12's nginx 1.22 (`http2 on`, the upstream's `resolve`).
 * nginx binds its upstream connections to 127.0.0.2, as it has its own address on the compose
 * network, so the data plane can tell it from the client (127.0.0.1).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPA_CSP } from '../../src/static/headers.js';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { freePort, waitUntil } from '../support/services.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const PROVIDE_CERT = fileURLToPath(new URL('../../dist/bootstrap/provide-cert.js', import.meta.url));
let mock: MockUpstream;
let gw: InProcessGateway;
let dir: string;
let nginx: ChildProcess;
let nginxLog = '';
let base: string;
let dispatcher: Agent;

/** nginx's version, or a clear failure: these tests need the real server. */
function nginxVersion(): [number, number, number] {
  // `nginx -v` writes its version to stderr.
  const run = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
    throw new Error('nginx is not on PATH: install it (Debian: apt-get install nginx-light) to test nginx.conf');
  const out = `${run.stdout}${run.stderr}`;
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(out);
  if (!m) throw new Error(`cannot read nginx's version from: ${out}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}
const atLeast = (v: number[], w: number[]) => v[0]! * 1e6 + v[1]! * 1e3 + v[2]! >= w[0]! * 1e6 + w[1]! * 1e3 + w[2]!;

function rewrite(conf: string, from: string | RegExp, to: string): string {
  const found = typeof from === 'string' ? conf.includes(from) : from.test(conf);
  if (!found) throw new Error(`nginx.conf no longer contains ${String(from)}: update this test with it`);
  return conf.replace(from, to);
}

beforeAll(async () => {
  const version = nginxVersion();
  mock = await startMockUpstream({ events: 5 });
  // nginx connects from 127.0.0.2 (proxy_bind below): the one trusted proxy.
  gw = await startInProcessGateway({ upstreams: mock.url, env: { TRUSTED_PROXIES: '127.0.0.2' } });
  dir = await mkdtemp(join(tmpdir(), 'fg-nginx-'));
  // As compose's one-shot frontend-cert runs it; a second run keeps the pair.
  const provide = () => spawnSync(process.execPath, [PROVIDE_CERT, join(dir, 'tls'), 'localhost'], { encoding: 'utf8' }).stdout.trim();
  expect(provide()).toBe(`generated a self-signed certificate ${join(dir, 'tls', 'tls.crt')}`);
  expect(provide()).toBe(`keeping the certificate ${join(dir, 'tls', 'tls.crt')}`);
  const cert = { certPath: join(dir, 'tls', 'tls.crt'), keyPath: join(dir, 'tls', 'tls.key') };
  const port = await freePort();
  let conf = await readFile(`${root}nginx.conf`, 'utf8');
  conf = rewrite(conf, /^resolver 127\.0\.0\.11 .*;$/m, '');
  conf = rewrite(
    conf,
    'server data-plane:8443 resolve;',
    `server 127.0.0.1:${gw.publicPort}${atLeast(version, [1, 27, 3]) ? ' resolve' : ''};`,
  );
  conf = rewrite(conf, '    listen 8443 ssl;', `    listen 127.0.0.1:${port} ssl;`);
  if (!atLeast(version, [1, 25, 1])) conf = rewrite(conf, /^ {4}http2 on;$/m, '');
  conf = rewrite(conf, 'ssl_certificate /etc/nginx/tls/tls.crt;', `ssl_certificate ${cert.certPath};`);
  conf = rewrite(conf, 'ssl_certificate_key /etc/nginx/tls/tls.key;', `ssl_certificate_key ${cert.keyPath};`);
  conf = rewrite(conf, 'root /usr/share/nginx/html;', `root ${root}frontend/dist;`);
  conf = rewrite(conf, 'proxy_pass https://fluxgate_data_plane;', 'proxy_pass https://fluxgate_data_plane;\n        proxy_bind 127.0.0.2;');
  await writeFile(join(dir, 'default.conf'), conf);
  for (const d of ['logs', 'tmp']) await mkdir(join(dir, d));
  await writeFile(
    join(dir, 'main.conf'),
    [
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/logs/error.log warn;`,
      'events {}',
      'http {',
      '  include /etc/nginx/mime.types;',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/tmp/${t};`),
      `  include ${dir}/default.conf;`,
      '}',
    ].join('\n'),
  );
  nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'main.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  nginx.stderr!.on('data', (b: Buffer) => (nginxLog += b.toString()));
  await waitUntil(
    () =>
      new Promise<boolean>((resolve) => {
        if (nginx.exitCode !== null) return resolve(false);
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    { timeoutMs: 10_000, message: 'nginx listening' },
  ).catch(async (e: unknown) => {
    throw new Error(`${(e as Error).message}\n${nginxLog}\n${await readFile(join(dir, 'logs/error.log'), 'utf8').catch(() => '')}`);
  });
  base = `https://localhost:${port}`;
  // Verifies nginx's certificate: the generated one, for localhost.
  dispatcher = new Agent({
    connect: { ca: await readFile(cert.certPath, 'utf8'), lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) },
  });
});
afterAll(async () => {
  await dispatcher?.close();
  nginx?.kill('SIGQUIT');
  await gw?.stop();
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const get = async (path: string, headers: Record<string, string> = {}) => {
  const res = await request(`${base}${path}`, { dispatcher, headers });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
};

describe('nginx.conf in front of the data plane', () => {
  it('serves TLS with the generated certificate and proxies /health, /healthz and /readyz', async () => {
    for (const path of ['/health', '/healthz']) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(JSON.parse(r.text)).toEqual({ status: 'ok' });
    }
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toMatchObject({ status: 'ready', checks: { postgres: { status: 'ok' } } });
  });

  it('serves the SPA itself, with the data plane’s CSP, and sends a client-side route to index.html', async () => {
    const index = await get('/');
    expect(index.status).toBe(200);
    expect(index.text).toContain('<div');
    expect(index.headers['content-security-policy']).toBe(SPA_CSP);
    expect(index.headers['cache-control']).toBe('no-store');
    const route = await get('/operator/incidents');
    expect(route.status).toBe(200);
    expect(route.text).toBe(index.text);
    expect((await get('/assets/missing-0000.js')).status).toBe(404);
  });

  it('streams a completion through, and the data plane names the client, not what the client claims', async () => {
    const { secret } = await gw.issueKey();
    mock.reset();
    const res = await request(`${base}/v1/chat/completions`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' },
      body: JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const body = await res.body.text();
    expect(body.match(/^data: /gm)?.length).toBeGreaterThanOrEqual(5);
    expect(body).toContain('data: [DONE]');
    // nginx (127.0.0.2, trusted) appended the real client (127.0.0.1): the data plane takes the
    // rightmost untrusted address, so the forged 203.0.113.9 never becomes the client.
    const seen = mock.requests.at(-1)!.headers['x-forwarded-for'];
    expect(seen).toBe('127.0.0.1, 127.0.0.2');
  });
});
