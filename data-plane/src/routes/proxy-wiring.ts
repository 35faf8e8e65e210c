import { createHash } from 'node:crypto';
import { PROMPT_FINGERPRINT_HEX } from '@fluxgate/contracts';
import type { Authenticate, Principal } from '../auth/authenticate.js';
import { GatewayError } from '../errors.js';
import type { Counters } from '../metrics/counters.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { ReplicaStats } from '../metrics/replica-stats.js';
import { inspectRequestBody } from '../proxy/request-body.js';
import { BYTES_PER_TOKEN } from '../proxy/usage.js';
import type { ProxyPorts } from './proxy-ports.js';

/** Normalise a prompt so trivially different copies (case, spacing) share one fingerprint. */
export function promptFingerprint(promptText: string): string | null {
  const normalised = promptText.trim().replace(/\s+/g, ' ').toLowerCase();
  if (normalised === '') return null;
  return createHash('sha256').update(normalised).digest('hex').slice(0, PROMPT_FINGERPRINT_HEX);
}

function principalOrThrow(result: Principal | GatewayError): Principal {
  if (result instanceof GatewayError) throw result;
  return result;
}

/** Adapt the auth, counters and metrics modules to the ports the proxy route needs. */
export function createProxyPorts(deps: {
  authenticate: Authenticate;
  counters: Counters;
  metrics: GatewayMetrics;
  stats?: ReplicaStats;
}): ProxyPorts {
  const { authenticate, counters, metrics, stats } = deps;
  return {
    checkKey(req) {
      const result = authenticate.check(req);
      if (result instanceof GatewayError) throw result;
      return result;
    },
    authenticate(key, req) {
      // A cache hit answers synchronously: no promise, no microtask.
      const result = authenticate.lookup(key, req);
      if (result instanceof Promise) return result.then(principalOrThrow);
      return principalOrThrow(result);
    },
    inspectBody(req, body) {
      const inspected = inspectRequestBody({ path: req.path, contentType: req.headers.get('content-type') ?? null, body });
      return {
        ...inspected,
        promptTokensEstimate: Math.ceil(Buffer.byteLength(inspected.promptText) / BYTES_PER_TOKEN),
        promptFingerprint: promptFingerprint(inspected.promptText),
      };
    },
    recordUsage: (principal, sample) => counters.record(principal.keyId, sample),
    observe: ({ family, status, durationMs, ttfbMs }) => {
      metrics.observeRequest(family, status, durationMs / 1000, ttfbMs === null ? undefined : ttfbMs / 1000);
      stats?.observe(status, durationMs, ttfbMs);
    },
    onStreamOpen: (delta) => {
      if (delta > 0) metrics.openStreams.inc();
      else metrics.openStreams.dec();
      stats?.streamOpened(delta);
    },
  };
}
