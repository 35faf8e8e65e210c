import { asGatewayError, GatewayError } from '../errors.js';
import type { HeaderList, RequestSnapshot } from '../http/types.js';
import type { ConcurrencyGate } from '../limits/concurrency.js';
import type { KeyLimits, KeyTier, Ticket } from '../limits/key-limits.js';
import type { Logger } from '../log/logger.js';
import { MANAGEMENT_FORBIDDEN, mayManageModels, type Surface } from '../proxy/surface.js';
import type { ForwardControl, ForwardHandler, UpstreamPool } from '../proxy/types.js';
import { createUsageTracker } from '../proxy/usage.js';
import type { RouteContext } from './context.js';
import type { BodyInfo, PresentedKey, Principal, ProxyPorts } from './proxy-ports.js';
import { Relay } from './relay.js';
import { flavorOf } from './respond.js';

export interface ProxyOptions {
  maxBodyBytes: number;
  /** Ceiling on one key's open requests in this replica (the tier's concurrentStreams applies below it). */
  perKeyConcurrency: number;
  heartbeatMs: number;
  /** PROXY_MODEL_MANAGEMENT: Ollama model management for operator keys (otherwise 404). */
  modelManagement: boolean;
}

/** What every exchange of the route shares (made once, by proxyRoute). */
export interface ProxyShared {
  pool: UpstreamPool;
  gate: ConcurrencyGate;
  limits: KeyLimits;
  ports: ProxyPorts;
  log: Logger;
  options: ProxyOptions;
  surface: Surface;
}

const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'OPTIONS']);

const CUT_MESSAGE =
  "Rate limit exceeded: this stream used the API key's remaining tokens and was stopped; retry after the x-ratelimit-reset-tokens delay.";

function ignore(): void {}

function headerOf(headers: HeaderList, name: string): string | null {
  for (const [k, v] of headers) if (k === name) return v;
  return null;
}

/**
 * One proxied request, start to end, as one object: the request's state (key, principal, tier,
 * ticket, gate holds, meter, status…) as fields, the pipeline as methods, and the forward
 * callbacks (it is the pool's ForwardHandler) and the response writing (it is a Relay) on the
 * same object, so a chunk goes upstream → this → the sink with nothing in between.
 *
 * The pipeline: the allow-list and the key's format, synchronously (an anonymous or misdirected
 * client never makes the gateway read its body or look anything up) → read the body while the
 * key is looked up → effective tier and per-key concurrency → rate-limit admission (requests +
 * reserved tokens) → forward with backpressure, cutting a stream that outruns the key's tokens →
 * settle usage and the reservation exactly once. Every refusal is a thrown GatewayError, answered
 * in one place (reject); every ending goes through finish. Any answer sent before the body was
 * read closes the connection (the sink does that, see http/exchange.ts closesAfterResponse), so
 * a refused upload stops at once.
 */
export class ProxyExchange extends Relay implements ForwardHandler {
  private readonly s: ProxyShared;
  private readonly req: RequestSnapshot;
  private readonly requestId: string;
  private key: PresentedKey | null = null;
  /** A model-management call: the key's owner must be an operator. */
  private management = false;
  private principal: Principal | null = null;
  private tier: KeyTier | null = null;
  private ticket: Ticket | null = null;
  private info: BodyInfo | null = null;
  private control: ForwardControl | null = null;
  private heldGlobal = false;
  private heldKey = false;
  private cut = false;
  private ttfbMs: number | null = null;
  private status = 0;
  private done = false;

  constructor(shared: ProxyShared, ctx: RouteContext) {
    super(ctx.sink, flavorOf(ctx.req.path));
    this.s = shared;
    this.req = ctx.req;
    this.requestId = ctx.requestId;
  }

  /** Runs the request; the promise settles when it has been forwarded or answered. */
  run(ctx: RouteContext): Promise<void> | undefined {
    const { req } = this;
    try {
      const verdict = this.s.surface.check(req.method, req.path);
      if (!verdict.ok) throw verdict.error;
      this.key = this.s.ports.checkKey(req);
      this.management = verdict.management;
    } catch (e) {
      this.reject(e);
      return undefined;
    }
    // uWS only delivers body bytes to a handler registered before the request first awaits.
    const body = METHODS_WITHOUT_BODY.has(req.method) ? null : ctx.readBody(this.s.options.maxBodyBytes);
    body?.catch(ignore);
    // uWS invokes this from a native callback: an exception escaping it would take the process down.
    this.sink.onAbort(() => {
      try {
        this.clientAborted();
      } catch (err) {
        this.callbackThrew('abort', err);
      }
    });
    return this.serve(body);
  }

  /** Body, lookup, limits, admission, then forwarding. */
  private async serve(bodyPromise: Promise<Uint8Array> | null): Promise<void> {
    const { gate, limits, ports, options } = this.s;
    const { sink } = this;
    try {
      if (!gate.tryAcquireGlobal()) throw new GatewayError('server_busy', undefined, { headers: [['retry-after', '1']] });
      this.heldGlobal = true;
      ports.onStreamOpen(1);
      const authenticated = ports.authenticate(this.key as PresentedKey, this.req);
      const principal = authenticated instanceof Promise ? await authenticated : authenticated;
      this.principal = principal;
      if (sink.aborted) return;
      if (this.management && !mayManageModels(principal.role)) throw new GatewayError('forbidden', MANAGEMENT_FORBIDDEN);
      const found = limits.tierOf(principal.keyId, principal.tier, principal.userId);
      const tier = found instanceof Promise ? await found : found;
      this.tier = tier;
      if (sink.aborted) return;
      const streams = Math.min(tier.concurrentStreams, options.perKeyConcurrency);
      if (!gate.tryAcquireKey(principal.keyId, streams)) {
        throw new GatewayError(
          'too_many_streams',
          `Too many concurrent requests for this API key (at most ${streams} under tier ${tier.id}).`,
          { headers: [['retry-after', '1']] },
        );
      }
      this.heldKey = true;
      const body = bodyPromise ? await bodyPromise : null;
      if (sink.aborted) return;
      const info = ports.inspectBody(this.req, body);
      this.info = info;
      const admission = limits.admit(principal.keyId, tier, info.promptTokensEstimate, info.maxTokens, info.model !== null);
      const admitted = admission instanceof Promise ? await admission : admission;
      // The client left while Redis answered: nothing was forwarded, so nothing is charged.
      if (sink.aborted) return admitted.refund();
      this.ticket = admitted;
    } catch (e) {
      return this.reject(e);
    }
    this.forward(this.info);
  }

  private forward(info: BodyInfo): void {
    const { req } = this;
    if (info.stream) this.startHeartbeat(this.s.options.heartbeatMs, this.flavor === 'ollama' ? 'ndjson' : 'sse');
    this.control = this.s.pool.forward(
      {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: info.body,
        model: info.model,
        // The whole chain when a trusted proxy is in front, else the peer (proxy/headers.ts).
        remoteAddress: req.forwardedFor ?? req.remoteAddress,
        requestId: this.requestId,
      },
      this,
    );
    this.sink.onDrain(() => {
      this.sinkOk = true;
      try {
        this.control?.resume();
      } catch (err) {
        this.callbackThrew('drain', err);
      }
    });
  }

  /** The one place a refusal is answered (before anything was forwarded) and the request finished. */
  private reject(e: unknown): void {
    const err = asGatewayError(e);
    if (err.code === 'internal_error') this.s.log.error({ err: e, requestId: this.requestId }, 'proxy admission failed');
    this.failResponse(err);
    this.finish('rejected', err);
  }

  /** Client gone: abort the upstream at once and never touch the response again. */
  private clientAborted(): void {
    this.control?.abort();
    this.finish('client_abort');
  }

  protected callbackThrew(what: string, err: unknown): void {
    this.s.log.error({ err, requestId: this.requestId }, `proxy ${what} callback failed`);
  }

  protected extraHeaders(): HeaderList {
    const headers: Array<readonly [string, string]> = [['x-request-id', this.requestId]];
    if (this.tier) headers.push(['x-fluxgate-tier', this.tier.id]);
    if (this.ticket) headers.push(...this.ticket.headers);
    return headers;
  }

  // ForwardHandler: the pool calls these on this object.

  onResponseStart(upstreamStatus: number, headers: HeaderList, _upstream: string, contentLength: number | null): void {
    if (this.sink.aborted) return;
    const info = this.info as BodyInfo;
    this.ttfbMs = performance.now() - this.req.receivedAt;
    this.status = upstreamStatus;
    const meter = createUsageTracker({
      contentType: headerOf(headers, 'content-type'),
      contentEncoding: headerOf(headers, 'content-encoding'),
      promptText: info.promptText,
      stripInjectedUsage: info.injectedIncludeUsage,
      // A stream that may have to be cut is forwarded whole event by whole event.
      wholeEvents: (this.ticket as Ticket).reservedCompletion !== Infinity,
    });
    if (!this.startResponse(upstreamStatus, headers, contentLength, meter, info.injectedIncludeUsage)) {
      const err = new GatewayError('upstream_failed', `The upstream model server answered ${upstreamStatus}.`);
      this.failResponse(err);
      this.control?.abort(err);
    }
  }

  onData(chunk: Uint8Array): boolean {
    if (this.sink.finished) return true;
    return this.stage(chunk);
  }

  onComplete(): void {
    this.completeResponse();
    this.finish('ok');
  }

  onError(err: GatewayError): void {
    // Abort errors caused by the client going away are already settled in clientAborted.
    if (this.sink.aborted) return this.finish('client_abort');
    this.failResponse(err);
    this.finish(err.code, err);
  }

  /**
   * After each upstream read is metered and written: past its reservation a stream may go on
   * while the key has tokens to spare; beyond that it is cut after the event just forwarded
   * (wholeEvents keeps the output at a boundary): one rate_limit_exceeded event, a clean end,
   * and the upstream aborted.
   */
  protected flushed(): void {
    const meter = this.meter;
    const ticket = this.ticket as Ticket;
    if (meter === null || meter.completionTokens <= ticket.reservedCompletion) return;
    if (!this.streamed || !meter.atEventBoundary || meter.completionTokens <= ticket.budget()) return;
    this.cut = true;
    const err = new GatewayError('rate_limit_exceeded', CUT_MESSAGE);
    this.failResponse(err);
    this.control?.abort(err);
    this.finish('token_cut');
  }

  /** Release the holds, observe, and settle usage and the reservation: exactly once. */
  private finish(outcome: string, err?: GatewayError): void {
    if (this.done) return;
    this.done = true;
    this.stopHeartbeat();
    const { gate, ports } = this.s;
    const { principal, info, ticket, status, ttfbMs, cut } = this;
    if (this.heldGlobal) gate.releaseGlobal();
    if (this.heldKey && principal) gate.releaseKey(principal.keyId);
    if (this.heldGlobal) ports.onStreamOpen(-1);
    const finalStatus = status || err?.status || 0;
    const durationMs = performance.now() - this.req.receivedAt;
    ports.observe({ family: this.flavor === 'ollama' ? 'ollama' : 'openai', status: finalStatus, durationMs, ttfbMs, outcome });
    if (principal === null || info === null) return;
    const usage = this.meter?.result() ?? {
      promptTokens: info.promptTokensEstimate,
      completionTokens: 0,
      estimated: true,
    };
    if (ticket) {
      // The upstream's failure is not the client's spending; anything else is charged as used.
      if (!cut && ((err !== undefined && err.status >= 500) || status >= 500)) ticket.refund();
      else ticket.settle(usage.promptTokens + usage.completionTokens);
    }
    ports.recordUsage(principal, {
      status: finalStatus,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      estimated: usage.estimated,
      requestBytes: info.body?.byteLength ?? 0,
      responseBytes: this.bytesOut,
      ttfbMs,
      durationMs,
      clientIp: this.req.remoteAddress,
      model: info.model,
      promptFingerprint: info.promptFingerprint,
      streamed: this.streamed,
      cut,
      upstreamError: err !== undefined && err.status >= 502,
    });
  }
}
