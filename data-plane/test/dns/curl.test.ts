/**
 * A real DoH client against the endpoint (DESIGN §3): curl resolves an override name through
 * `--doh-url` on our uWS TLS listener, then fetches from it. `svc.test` is under the reserved
 * .test TLD (RFC 6761), which the system resolver cannot resolve, so the fetch can only work
 * through our answer.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOverrides } from '../../src/dns/overrides.js';
import { createResolver, type Resolver } from '../../src/dns/resolver.js';
import { startDnsEndpoint, type DnsEndpointServer } from './endpoint-server.js';

const run = promisify(execFile);

let srv: DnsEndpointServer;
let web: Server;
let webPort: number;
const questions: string[] = [];

beforeAll(async () => {
  const { stdout } = await run('curl', ['--version']);
  // DoH arrived in curl 7.62; the feature list must not say it was built without it.
  expect(stdout).toMatch(/^curl (\d+)\.(\d+)/);
  const [, major, minor] = /^curl (\d+)\.(\d+)/.exec(stdout)!;
  expect(Number(major) * 100 + Number(minor)).toBeGreaterThanOrEqual(762);

  const resolver: Resolver = createResolver({ overrides: createOverrides({ hosts: '127.0.0.1 svc.test' }), upstream: null });
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
});

describe('curl --doh-url', () => {
  it('resolves an override name through /dns-query and fetches from it', async () => {
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
  });

  it('reports a name the endpoint answers NXDOMAIN for (RFC 6761 .invalid) as unresolvable', async () => {
    const err = await run('curl', ['--silent', '--max-time', '10', '--doh-url', `https://127.0.0.1:${srv.port}/dns-query`, '--doh-insecure', `http://nope.invalid:${webPort}/`]).catch(
      (e: { code?: number }) => e,
    );
    expect((err as { code?: number }).code).toBe(6); // CURLE_COULDNT_RESOLVE_HOST
  });
});
