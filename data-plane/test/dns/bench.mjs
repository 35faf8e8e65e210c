#!/usr/bin/env node
/**
 * DNS benchmarks (not part of the test suite): run `npx tsc -b` first, then
 *   node data-plane/test/dns/bench.mjs
 * 1. in-process lookups/s: cached upstream answers through resolve() and through undici's
 *    lookup callback, and override answers;
 * 2. /dns-query requests/s on loopback over TLS with autocannon (separate process, 5 s each),
 *    answered as production does, by the public resolver: GET of a cached public name and POST
 *    of an internal (override) name, which is NXDOMAIN there.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';

const dist = (p) => new URL(`../../dist/${p}`, import.meta.url).href;
const { createResolver } = await import(dist('dns/resolver.js'));
const { createOverrides } = await import(dist('dns/overrides.js'));
const { createPublicResolver, internalNames } = await import(dist('dns/public-resolver.js'));
const { dnsQueryRoute } = await import(dist('dns/endpoint.js'));
const { bind } = await import(dist('http/bind.js'));
const { loadUws, createTlsApp, listen, closeAll } = await import(dist('http/uws.js'));
const { createLogger } = await import(dist('log/logger.js'));

const soa = { name: 'example', type: 'SOA', ttl: 300, data: { mname: 'ns', rname: 'h', minimum: 300 } };
const upstream = {
  async query(name, type) {
    if (type !== 'A') return { set: { rcode: 'NOERROR', answers: [], authority: [soa] }, bytes: 64 };
    return {
      set: { rcode: 'NOERROR', answers: [{ name, type: 'A', class: 'IN', ttl: 3600, data: '203.0.113.1' }], authority: [] },
      bytes: 64,
    };
  },
  close: async () => undefined,
};
const overrides = createOverrides({ hosts: '127.0.0.1 svc.test' });
const resolver = createResolver({ overrides, upstream });
const publicResolver = createPublicResolver({ isInternal: internalNames(overrides, null), upstream });

async function perSecond(label, n, fn) {
  for (let i = 0; i < 10_000; i++) await fn(); // warm-up (and fills the cache)
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn();
  const s = (performance.now() - t) / 1000;
  console.log(
    `${label.padEnd(44)} ${Math.round(n / s)
      .toLocaleString('en-US')
      .padStart(12)} /s  (${((s / n) * 1e6).toFixed(2)} µs each)`,
  );
}

const origin = new URL('http://cached.example/');
const viaLookup = () => new Promise((res, rej) => resolver.lookup(origin, {}, (err, a) => (err ? rej(err) : res(a))));
await perSecond('resolve() cached upstream answer', 1_000_000, () => resolver.resolve('cached.example', 'A'));
await perSecond('lookup() cached upstream answer (undici cb)', 500_000, viaLookup);
await perSecond('resolve() override', 1_000_000, () => resolver.resolve('svc.test', 'A'));
const q = dnsPacket.encode({ type: 'query', id: 0, flags: 1 << 8, questions: [{ name: 'cached.example', type: 'A' }] });
await perSecond('answerQuery() cached, wire in/out', 200_000, () => resolver.answerQuery(q));
await perSecond('public answerQuery() cached, wire in/out', 200_000, () => publicResolver.answerQuery(q));

// ---- /dns-query over TLS on loopback
const dir = await mkdtemp(join(tmpdir(), 'fluxgate-dns-bench-'));
const certPath = join(dir, 'cert.pem');
const keyPath = join(dir, 'key.pem');
await promisify(execFile)('openssl', [
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
  'subjectAltName=IP:127.0.0.1',
  '-keyout',
  keyPath,
  '-out',
  certPath,
]);
const app = createTlsApp(loadUws(), { certPath, keyPath });
bind(app, 'any', '/dns-query', dnsQueryRoute(publicResolver, { rateLimit: null }), createLogger({ level: 'silent', name: 'bench' }));
const listening = await listen(app, '127.0.0.1', 0);
const base = `https://127.0.0.1:${listening.port}/dns-query`;
const autocannon = fileURLToPath(new URL('../../../node_modules/.bin/autocannon', import.meta.url));

function cannon(label, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(autocannon, ['-j', '-d', '5', '-c', '32', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('exit', () => {
      const r = JSON.parse(out);
      console.log(
        `${label.padEnd(44)} ${Math.round(r.requests.average).toLocaleString('en-US').padStart(12)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  non-2xx ${r.non2xx}  errors ${r.errors}`,
      );
      resolve();
    });
  });
}

await cannon('GET /dns-query?dns= (cached upstream name)', [`${base}?dns=${q.toString('base64url')}`]);
const post = dnsPacket.encode({ type: 'query', id: 0, flags: 1 << 8, questions: [{ name: 'svc.test', type: 'A' }] });
const bodyFile = join(dir, 'q.bin');
await (await import('node:fs/promises')).writeFile(bodyFile, post);
await cannon('POST /dns-query (internal name: NXDOMAIN)', [
  '-m',
  'POST',
  '-H',
  'content-type=application/dns-message',
  '-i',
  bodyFile,
  base,
]);

listening.close();
closeAll(app);
await rm(dir, { recursive: true, force: true });
