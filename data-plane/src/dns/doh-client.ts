/**
 * RFC 8484 client for the upstream DoH servers (DOH_UPSTREAMS): POST application/dns-message,
 * servers tried in configured order, each with its own timeout; a server that failed is skipped
 * for a backoff period (and only tried again early when every other server failed too).
 *
 * Upstream URLs are IP literals by default (https://1.1.1.1/dns-query): connecting needs no
 * DNS, so the resolver never depends on the resolver it implements. Unless `allowHostnames`,
 * the connector's `lookup` refuses, which makes that guarantee hold rather than just be likely.
 */
import { isIP } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { buildUpstreamQuery, parseUpstreamAnswer } from './message.js';
import type { DnsMetrics } from './metrics.js';
import type { RecordSet } from './records.js';

/** Cloudflare and Quad9 by address: both certificates carry these IPs as subjectAltNames. */
export const DEFAULT_DOH_UPSTREAMS = 'https://1.1.1.1/dns-query,https://9.9.9.9/dns-query';

/** DOH_UPSTREAMS → URLs (comma-separated, blanks ignored); the DohClient constructor validates them. */
export const parseDohUpstreams = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

export interface DohClientOptions {
  /** Absolute https:// URLs, in order of preference. */
  servers: readonly string[];
  /** Per server: connect + answer. Default 1500 ms. */
  timeoutMs?: number;
  /** How long a failed server is skipped. Default 30 s. */
  backoffMs?: number;
  /** Largest answer accepted (a DNS message is at most 65535 octets). */
  maxAnswerBytes?: number;
  /** Extra trust for the upstreams' certificates (tests: a self-signed CA). */
  tls?: { ca?: string | Buffer | Array<string | Buffer>; rejectUnauthorized?: boolean };
  /** Permit upstream URLs with host names, resolved by the system resolver (a bootstrap lookup). */
  allowHostnames?: boolean;
  /** Connections per upstream. Default 4 (HTTP/1.1 keep-alive). */
  connections?: number;
  metrics?: DnsMetrics | null;
  now?: () => number;
}

/** The upstream seam of the resolver (a stub in unit tests and benchmarks). */
export interface DnsUpstream {
  /** Answers (name, type) or throws a DnsUpstreamError. `name` is canonical (records.ts). */
  query(name: string, type: string, signal?: AbortSignal): Promise<{ set: RecordSet; bytes: number }>;
  close(): Promise<void>;
}

/**
 * No upstream produced an answer. `code` follows getaddrinfo's: EAI_AGAIN (temporary, the
 * proxy maps it to a 502 upstream_unavailable), with `rcode` when servers answered but only
 * with SERVFAIL/REFUSED.
 */
export class DnsUpstreamError extends Error {
  readonly code = 'EAI_AGAIN';
  constructor(
    message: string,
    readonly rcode: string = 'SERVFAIL',
  ) {
    super(message);
    this.name = 'DnsUpstreamError';
  }
}

export interface DohServerStatus {
  index: number;
  url: string;
  skipUntil: number;
  consecutiveFailures: number;
  lastError: string | null;
}

interface Server extends DohServerStatus {
  origin: string;
  path: string;
}

export class DohClient implements DnsUpstream {
  readonly #servers: Server[];
  readonly #agent: Dispatcher;
  readonly #timeoutMs: number;
  readonly #backoffMs: number;
  readonly #maxBytes: number;
  readonly #metrics: DnsMetrics | null;
  readonly #now: () => number;

  constructor(opts: DohClientOptions) {
    if (opts.servers.length === 0) throw new Error('DohClient: at least one upstream URL is required');
    this.#servers = opts.servers.map((text, index) => {
      const url = new URL(text);
      if (url.protocol !== 'https:') throw new Error(`DoH upstream must be https:// (RFC 8484 §5): ${text}`);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host) === 0 && !opts.allowHostnames) {
        throw new Error(`DoH upstream must be an IP-literal URL so that no bootstrap DNS lookup is needed: ${text}`);
      }
      return {
        index,
        url: url.href,
        origin: url.origin,
        path: url.pathname + url.search,
        skipUntil: 0,
        consecutiveFailures: 0,
        lastError: null,
      };
    });
    this.#timeoutMs = opts.timeoutMs ?? 1_500;
    this.#backoffMs = opts.backoffMs ?? 30_000;
    this.#maxBytes = opts.maxAnswerBytes ?? 65_535;
    this.#metrics = opts.metrics ?? null;
    this.#now = opts.now ?? (() => Date.now());
    const refuseLookup = (hostname: string, _o: unknown, cb: (err: Error) => void): void =>
      cb(Object.assign(new Error(`DoH client does not resolve names (${hostname})`), { code: 'ENOTFOUND' }));
    this.#agent = new Agent({
      connections: opts.connections ?? 4,
      keepAliveTimeout: 30_000,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
      connect: {
        timeout: this.#timeoutMs,
        ...(opts.tls?.ca !== undefined ? { ca: opts.tls.ca } : {}),
        ...(opts.tls?.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
        ...(opts.allowHostnames ? {} : { lookup: refuseLookup }),
      },
    });
  }

  status(): DohServerStatus[] {
    return this.#servers.map(({ index, url, skipUntil, consecutiveFailures, lastError }) => ({
      index,
      url,
      skipUntil,
      consecutiveFailures,
      lastError,
    }));
  }

  async query(name: string, type: string, signal?: AbortSignal): Promise<{ set: RecordSet; bytes: number }> {
    const body = buildUpstreamQuery(name, type);
    let dnsFailure: string | null = null;
    for (const server of this.#order()) {
      if (signal?.aborted) break;
      const started = performance.now();
      try {
        const answer = await this.#exchange(server, body, signal);
        const parsed = parseUpstreamAnswer(answer, name, type);
        if (parsed.ok === 'invalid') throw new Error(parsed.reason);
        this.#succeeded(server, started);
        if (parsed.ok) return { set: parsed.set, bytes: answer.length };
        // SERVFAIL/REFUSED: the server works but could not answer; another one might.
        dnsFailure = parsed.rcode;
      } catch (err) {
        // The caller gave up (not the server's fault): stop without marking anyone down.
        if (signal?.aborted) break;
        this.#failed(server, err);
      }
    }
    if (dnsFailure !== null) throw new DnsUpstreamError(`every DoH upstream answered ${dnsFailure} for ${name} ${type}`, dnsFailure);
    throw new DnsUpstreamError(`no DoH upstream answered for ${name} ${type}`);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  /** Healthy servers in configured order, then skipped ones, soonest to recover first. */
  #order(): Server[] {
    const t = this.#now();
    const healthy = this.#servers.filter((s) => s.skipUntil <= t);
    const skipped = this.#servers.filter((s) => s.skipUntil > t).sort((a, b) => a.skipUntil - b.skipUntil);
    return [...healthy, ...skipped];
  }

  async #exchange(server: Server, body: Buffer, signal: AbortSignal | undefined): Promise<Buffer> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const res = await this.#agent.request({
      origin: server.origin,
      path: server.path,
      method: 'POST',
      headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message' },
      body,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const type = String(res.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim()
      .toLowerCase();
    if (res.statusCode !== 200 || type !== 'application/dns-message') {
      await res.body.dump();
      throw new Error(`HTTP ${res.statusCode} ${type ?? ''}`.trim());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > this.#maxBytes) {
        res.body.destroy();
        throw new Error('answer larger than a DNS message');
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks, size);
  }

  #succeeded(server: Server, started: number): void {
    server.consecutiveFailures = 0;
    server.skipUntil = 0;
    this.#metrics?.upstreamLatency.labels(String(server.index)).observe((performance.now() - started) / 1000);
  }

  #failed(server: Server, err: unknown): void {
    server.consecutiveFailures++;
    server.skipUntil = this.#now() + this.#backoffMs;
    const e = err as { code?: unknown; message?: unknown };
    server.lastError = typeof e.code === 'string' ? e.code : String(e.message ?? err);
    this.#metrics?.upstreamFailures.labels(String(server.index)).inc();
  }
}
