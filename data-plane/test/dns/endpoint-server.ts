/**
 * A real uWS TLS listener on 127.0.0.1:0 with /dns-query routes bound the way the data plane
 * binds routes (http/bind.ts), and an undici client that trusts its throwaway certificate.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { dnsQueryRoute, type DnsQueryRouteOptions } from '../../src/dns/endpoint.js';
import type { Resolver } from '../../src/dns/resolver.js';
import { bind } from '../../src/http/bind.js';
import type { RouteHandler } from '../../src/routes/context.js';
import { closeAll, createTlsApp, listen, loadUws } from '../../src/http/uws.js';
import { createLogger } from '../../src/log/logger.js';
import { makeTestCert, type TestCert } from '../support/tls.js';

export interface DnsEndpointServer {
  port: number;
  origin: string;
  cert: TestCert;
  ca: string;
  agent: Agent;
  send(method: string, path: string, opts?: { headers?: Record<string, string>; body?: Uint8Array }): Promise<Answer>;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Buffer;
}

/** `routes`: path → route options; each path is bound for every method (405 is the route's). */
export function startDnsEndpoint(
  resolver: Pick<Resolver, 'answerQuery'>,
  routes: Record<string, DnsQueryRouteOptions>,
): Promise<DnsEndpointServer> {
  return startRoutes(Object.fromEntries(Object.entries(routes).map(([path, opts]) => [path, dnsQueryRoute(resolver, opts)])));
}

/** Binds ready-made route handlers (e.g. a DnsStack's `route`), each path for every method. */
export async function startRoutes(routes: Record<string, RouteHandler>): Promise<DnsEndpointServer> {
  const cert = await makeTestCert();
  const ca = await readFile(cert.certPath, 'utf8');
  const app = createTlsApp(loadUws(), { certPath: cert.certPath, keyPath: cert.keyPath });
  const log = createLogger({ level: 'silent', name: 'dns-test' });
  for (const [path, route] of Object.entries(routes)) bind(app, 'any', path, route, log);
  const listening = await listen(app, '127.0.0.1', 0);
  const origin = `https://127.0.0.1:${listening.port}`;
  const agent = new Agent({ connect: { ca }, pipelining: 1 });
  return {
    port: listening.port,
    origin,
    cert,
    ca,
    agent,
    async send(method, path, opts = {}) {
      const res = await request(`${origin}${path}`, {
        method: method as Dispatcher.HttpMethod,
        dispatcher: agent,
        ...(opts.headers ? { headers: opts.headers } : {}),
        ...(opts.body ? { body: opts.body } : {}),
      });
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    },
    async close() {
      await agent.close();
      listening.close();
      closeAll(app);
      await cert.cleanup();
    },
  };
}
