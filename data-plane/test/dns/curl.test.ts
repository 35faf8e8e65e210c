/**
 * A real DoH client against the endpoint (DESIGN §3): curl resolves a public name through
 * `--doh-url` on our uWS TLS listener (the public resolver, with a local DoH upstream behind
 * it), then fetches from it. `svc.test` is under the reserved .test TLD (RFC 6761), which the
 * system resolver cannot resolve, so the fetch can only work through our answer.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DohClient } from '../../src/dns/doh-client.js';
import { createPublicResolver, type PublicResolver } from '../../src/dns/public-resolver.js';
import { rr, startDohUpstream, type DohUpstream } from './doh-upstream.js';
import { startDnsEndpoint, type DnsEndpointServer } from './endpoint-server.js';

const run = promisify(execFile);

let srv: DnsEndpointServer;
let up: DohUpstream;
let resolver: PublicResolver;
let web: Server;
let webPort: number;
const questions: string[] = [];

beforeAll(async () => {
  const { stdout } = await run('curl', ['--version']);
  // DoH arrived in curl 7.62; the feature list must not say it was built without it.
  expect(stdout).toMatch(/^curl (\d+)\.(\d+)/);
  const [, major, minor] = /^curl (\d+)\.(\d+)/.exec(stdout)!;
  expect(Number(major) * 100 + Number(minor)).toBeGreaterThanOrEqual(762);

  up = await startDohUpstream();
  up.set('svc.test', 'A', { answers: [rr('svc.test', 'A', '127.0.0.1', 60)] });
  resolver = createPublicResolver({
    // `internal.test` stands for the gateway's own names: they must not resolve for curl.
    isInternal: (name) => name === 'internal.test',
    upstream: new DohClient({ servers: [up.url], tls: { ca: up.ca } }),
  });
  // Record what curl asks, then answer as the endpoint would.
  const recording = {
    answerQuery: async (packet: Uint8Array) => {
      questions.push(`${packet.length}`);
      return resolver.answerQuery(packet);
    },
  };
  srv = await startDnsEndpoint(recording, { '/dns-query': { rateLimit: null } });
  web = createServer((req, res) => res.end(`fetched ${req.headers.host}`));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as AddressInfo).port;
});
afterAll(async () => {
  web.closeAllConnections();
  await new Promise<void>((r) => web.close(() => r()));
  await srv.close();
  await resolver.close();
  await up.close();
});

describe('curl --doh-url', () => {
  it('resolves a public name through /dns-query and fetches from it', async () => {
    const { stdout } = await run('curl', [
      '--silent',
      '--show-error',
      '--max-time',
      '10',
      '--doh-url',
      `https://127.0.0.1:${srv.port}/dns-query`,
      '--doh-insecure',
      `http://svc.test:${webPort}/`,
    ]);
    expect(stdout).toBe(`fetched svc.test:${webPort}`);
    // curl asked over DoH (A and AAAA), not the system resolver.
    expect(questions.length).toBeGreaterThanOrEqual(1);
    expect(up.count('svc.test', 'A')).toBe(1);
  });

  it('cannot resolve an internal name (NXDOMAIN)', async () => {
    const err = await run('curl', [
      '--silent',
      '--max-time',
      '10',
      '--doh-url',
      `https://127.0.0.1:${srv.port}/dns-query`,
      '--doh-insecure',
      `http://internal.test:${webPort}/`,
    ]).catch((e: { code?: number }) => e);
    expect((err as { code?: number }).code).toBe(6); // CURLE_COULDNT_RESOLVE_HOST
    expect(up.count('internal.test')).toBe(0);
  });

  it('reports a name the endpoint answers NXDOMAIN for (RFC 6761 .invalid) as unresolvable', async () => {
    const err = await run('curl', [
      '--silent',
      '--max-time',
      '10',
      '--doh-url',
      `https://127.0.0.1:${srv.port}/dns-query`,
      '--doh-insecure',
      `http://nope.invalid:${webPort}/`,
    ]).catch((e: { code?: number }) => e);
    expect((err as { code?: number }).code).toBe(6); // CURLE_COULDNT_RESOLVE_HOST
  });
});
