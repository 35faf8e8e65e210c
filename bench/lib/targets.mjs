// The mock upstream and the direct and nginx targets. A target is
//   { name, origin, headers, pids() → proxy pids, stop() }.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnChild } from './children.mjs';
import { freePort, processTree, sleep, waitForPort } from './proc.mjs';
import { getOk } from './http.mjs';

const MOCK = fileURLToPath(new URL('../mock-upstream.mjs', import.meta.url));
const BARE = fileURLToPath(new URL('../bare-relay.mjs', import.meta.url));

/** The mock as a mutable handle: restart() brings up a fresh process on the same port. */
export async function startMock() {
  const mock = {};
  const launch = async (port) => {
    const child = spawnChild('mock', process.execPath, [MOCK], { env: { ...process.env, MOCK_PORT: String(port) } });
    const [, got] = await child.waitFor(/MOCK_LISTENING (\d+)/, 10_000);
    Object.assign(mock, { port: Number(got), pid: child.pid, origin: `http://127.0.0.1:${got}`, stop: child.stop, dead: child.dead });
  };
  await launch(0);
  mock.restart = async () => {
    await mock.stop();
    await launch(mock.port);
  };
  return mock;
}

/** Throwaway self-signed certificate for 127.0.0.1 (ECDSA P-256 unless keyType is "rsa"). */
export function makeCert(dir, keyType = 'ec') {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const newkey = keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...newkey,
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  return { cert, key };
}

export function directTarget(mock) {
  return { name: 'direct', origin: mock.origin, headers: {}, pids: () => [mock.pid], restart: mock.restart, stop: async () => {} };
}

const nginxConf = ({ dir, port, mockPort, tls, keepalive }) => `
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream mock {
    server 127.0.0.1:${mockPort};
    keepalive ${keepalive};
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;

/**
 * nginx over TLS. `keepalive` idle upstream connections are kept per worker: at least the load's
 * connection count, or nginx opens a fresh upstream connection for most requests and pays for it.
 */
export async function nginxTarget({ dir, mock, tls, nginx = '/usr/sbin/nginx', keepalive = 64, cpus = '' }) {
  const port = await freePort();
  const origin = `https://127.0.0.1:${port}`;
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf({ dir, port, mockPort: mock.port, tls, keepalive }));
  let child;
  const launch = async () => {
    child = spawnChild('nginx', nginx, ['-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', conf], { cpus });
    try {
      await waitForPort(port, 10_000, child.dead);
      await getOk(origin, '/healthz', 5_000); // proxied to the mock: the whole path works
      while (processTree(child.pid).length < 2) await sleep(20); // the worker is up
    } catch (err) {
      await child.stop();
      throw err;
    }
  };
  await launch();
  return {
    name: 'nginx',
    origin,
    headers: {},
    pids: () => processTree(child.pid),
    restart: async () => (await child.stop(), await launch()),
    stop: () => child.stop(),
  };
}

/** The bare uWS + undici relay (bare-relay.mjs): the runtime's own floor, over the same TLS. */
export async function bareTarget({ mock, tls, cpus = '' }) {
  const port = await freePort();
  const origin = `https://127.0.0.1:${port}`;
  const env = { ...process.env, BARE_PORT: String(port), BARE_UPSTREAM: mock.origin, BARE_CERT: tls.cert, BARE_KEY: tls.key };
  let child;
  const launch = async () => {
    child = spawnChild('bare', process.execPath, ['--trace-gc-nvp', BARE], { env, cpus, gc: true });
    try {
      await child.waitFor(/BARE_LISTENING (\d+)/, 10_000);
      await getOk(origin, '/healthz', 5_000);
    } catch (err) {
      await child.stop();
      throw err;
    }
  };
  await launch();
  return {
    name: 'bare',
    origin,
    headers: {},
    pids: () => processTree(child.pid),
    gcStats: () => child.gcStats(),
    restart: async () => (await child.stop(), await launch()),
    stop: () => child.stop(),
  };
}
