/**
 * The upstream pool: one long-lived undici dispatcher per upstream (STYLE practice 7), a
 * balancer, per-upstream health (breaker + probe) and the exchanges that use them.
 */
import { Agent, interceptors, type Dispatcher } from 'undici';
import { Balancer } from './balancer.js';
import type { PoolUpstream } from './attempt.js';
import { Exchange } from './forward.js';
import { bearer } from './headers.js';
import { DEFAULT_HEALTH, UpstreamHealth, type HealthOptions, type UpstreamState } from './health.js';
import { DEFAULT_PROBE, Prober, type ProbeOptions } from './probe.js';
import type { ForwardControl, ForwardHandler, ForwardRequest, UpstreamDefinition, UpstreamPool, UpstreamStatus } from './types.js';

/** The `lookup` of undici's DNS interceptor (the DoH resolver plugs in here). */
export type DnsLookup = NonNullable<NonNullable<Parameters<typeof interceptors.dns>[0]>['lookup']>;

export interface DispatcherSettings {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  connections: number | null;
  keepAliveTimeoutMs: number;
  lookup: DnsLookup | null;
}

export interface UpstreamPoolOptions {
  /** TCP (+TLS) connect. Default 5 s. */
  connectTimeoutMs?: number;
  /** Request sent → response headers. Non-streamed completions only answer when done: 300 s. */
  headersTimeoutMs?: number;
  /** Longest silence between body chunks (undici bodyTimeout). Default 120 s. */
  idleTimeoutMs?: number;
  /** Whole exchange; 0 disables. Default 600 s. */
  totalTimeoutMs?: number;
  /** Attempts after the first, each to another upstream when one is available. Default 2. */
  maxRetries?: number;
  /** Statuses that fail over (before the first byte) and count as upstream failures. */
  retryStatuses?: readonly number[];
  /** Connections per upstream origin; null = unlimited (one HTTP/1.1 stream each). */
  connections?: number | null;
  keepAliveTimeoutMs?: number;
  health?: Partial<HealthOptions>;
  /** Active probe; false disables it. */
  probe?: Partial<ProbeOptions> | false;
  /** Resolver for upstream host names, composed as `interceptors.dns({ lookup })`. */
  lookup?: DnsLookup | null;
  /** Builds each upstream's dispatcher; the pool owns and closes it. */
  createDispatcher?: (def: UpstreamDefinition, settings: DispatcherSettings) => Dispatcher;
  /** close(): how long to let requests still in undici finish before destroying them. Default 2 s. */
  closeTimeoutMs?: number;
  now?: () => number;
  onStateChange?: (upstream: string, from: UpstreamState, to: UpstreamState) => void;
}

/** Default factory: an Agent (so the DNS interceptor can rewrite the origin to an address). */
export function createUpstreamDispatcher(_def: UpstreamDefinition, s: DispatcherSettings): Dispatcher {
  const agent = new Agent({
    connectTimeout: s.connectTimeoutMs,
    headersTimeout: s.headersTimeoutMs,
    bodyTimeout: s.idleTimeoutMs,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    connections: s.connections,
  });
  return s.lookup === null ? agent : agent.compose(interceptors.dns({ lookup: s.lookup }));
}

export interface ManagedUpstreamPool extends UpstreamPool {
  /** Runs one probe round now (readiness right after boot, tests), even if `probe` is false. */
  probeNow(): Promise<void>;
}

export function createUpstreamPool(defs: readonly UpstreamDefinition[], opts: UpstreamPoolOptions = {}): ManagedUpstreamPool {
  if (defs.length === 0) throw new Error('createUpstreamPool: at least one upstream is required');
  const now = opts.now ?? Date.now;
  const healthOpts: HealthOptions = { ...DEFAULT_HEALTH, ...opts.health };
  const settings: DispatcherSettings = {
    connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
    headersTimeoutMs: opts.headersTimeoutMs ?? 300_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 120_000,
    connections: opts.connections ?? null,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 4_000,
    lookup: opts.lookup ?? null,
  };
  const factory = opts.createDispatcher ?? createUpstreamDispatcher;

  const upstreams: PoolUpstream[] = defs.map((def) => {
    const path = def.baseUrl.pathname;
    return {
      def,
      dispatcher: factory(def, settings),
      origin: def.baseUrl.origin,
      basePath: path.endsWith('/') ? path.slice(0, -1) : path,
      authorization: bearer(def.credential),
      outstanding: 0,
      health: new UpstreamHealth(healthOpts, (from, to) => opts.onStateChange?.(def.name, from, to)),
    };
  });
  const balancer = new Balancer(upstreams);
  const exchangeSettings = {
    maxRetries: opts.maxRetries ?? 2,
    retryStatuses: new Set(opts.retryStatuses ?? [500, 502, 503, 504]),
    totalTimeoutMs: opts.totalTimeoutMs ?? 600_000,
    now,
  };
  // probeNow() works even with the periodic probe disabled.
  const prober = new Prober(upstreams, { ...DEFAULT_PROBE, ...(opts.probe === false ? {} : opts.probe) }, now);
  if (opts.probe !== false) prober.start();
  let closed = false;

  return {
    forward(req: ForwardRequest, handler: ForwardHandler): ForwardControl {
      return new Exchange(balancer, exchangeSettings, req, handler).start();
    },

    status(): UpstreamStatus[] {
      const t = now();
      return upstreams.map((u) => ({
        name: u.def.name,
        url: u.def.baseUrl.href,
        state: u.health.state(t),
        outstanding: u.outstanding,
        consecutiveFailures: u.health.consecutiveFailures,
        ejectedUntil: u.health.openUntil,
        lastError: u.health.lastError,
        requests: u.health.requests,
        failures: u.health.failures,
      }));
    },

    anyHealthy(): boolean {
      const t = now();
      return !closed && upstreams.some((u) => u.health.available(t));
    },

    probeNow(): Promise<void> {
      return prober.runOnce();
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await prober.stop();
      // Callers drain their exchanges first; what is left in undici is abandoned work (e.g. an
      // aborted request still waiting for its connection), which must not hold shutdown up.
      await Promise.all(upstreams.map((u) => closeWithin(u.dispatcher, opts.closeTimeoutMs ?? 2_000)));
    },
  };
}

async function closeWithin(d: Dispatcher, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  const result = await Promise.race([d.close().then(() => 'closed' as const), late]);
  clearTimeout(timer);
  if (result === 'late') await d.destroy();
}
