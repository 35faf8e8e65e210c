import type { GatewayError } from '../errors.js';
import type { HeaderList } from '../http/types.js';

/** One upstream model server, from DOWNSTREAM_AI_URLS or the upstreams file. */
export interface UpstreamDefinition {
  name: string;
  /** Base URL; the client's path (e.g. /v1/chat/completions) is appended to its pathname. */
  baseUrl: URL;
  /** Credential injected as `Authorization: Bearer …` (never logged). */
  credential: string | null;
  /** Models this upstream serves; empty = any. */
  models: readonly string[];
  weight: number;
}

export interface ForwardRequest {
  method: string;
  /** Path as received, e.g. /v1/chat/completions or /api/chat. */
  path: string;
  /** Raw query string without '?'. */
  query: string;
  /** Client headers, lower-case names; the pool filters hop-by-hop and credentials itself. */
  headers: ReadonlyMap<string, string>;
  /** Whole request body (read up front, bounded by the body limit), or null. */
  body: Uint8Array | null;
  /** Model asked for, used for routing; null when unknown. */
  model: string | null;
  /**
   * Aborts the exchange when it fires (a caller without the ForwardControl at hand). Optional:
   * the proxy route calls control.abort() itself, sparing an AbortController per request.
   */
  signal?: AbortSignal;
  /** X-Forwarded-For to send (the client's address, or the trusted chain); replaces the client's. */
  remoteAddress?: string | null;
  /** Gateway request id, sent upstream as X-Request-Id when given. */
  requestId?: string | null;
}

/** Receives one forwarded exchange. Exactly one of onComplete/onError is called, once. */
export interface ForwardHandler {
  /**
   * Upstream status and (already filtered) headers; from here on nothing is retried.
   * `contentLength` is the upstream's Content-Length (the field itself is filtered out, since the
   * sink frames the client hop), or null for a body of unknown length.
   */
  onResponseStart(status: number, headers: HeaderList, upstream: string, contentLength: number | null): void;
  /** A body chunk, valid only during the call. Return false to pause until control.resume(). */
  onData(chunk: Uint8Array): boolean;
  onComplete(): void;
  /** `started` tells whether onResponseStart was already called. */
  onError(err: GatewayError, started: boolean): void;
}

export interface ForwardControl {
  /** Continue reading the upstream after onData returned false. */
  resume(): void;
  /** Abort the upstream request now (client gone, token budget exhausted, …). */
  abort(reason?: unknown): void;
}

export interface UpstreamStatus {
  name: string;
  url: string;
  state: 'healthy' | 'ejected' | 'open' | 'half_open';
  outstanding: number;
  consecutiveFailures: number;
  ejectedUntil: number | null;
  lastError: string | null;
  requests: number;
  failures: number;
}

export interface UpstreamPool {
  forward(req: ForwardRequest, handler: ForwardHandler): ForwardControl;
  status(): UpstreamStatus[];
  /** At least one upstream can take traffic now. */
  anyHealthy(): boolean;
  /** How many upstreams can take traffic now, of how many (readiness says so). */
  availability(): { available: number; total: number };
  close(): Promise<void>;
}
