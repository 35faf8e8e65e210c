import { asGatewayError, GatewayError } from '../errors.js';
import type { HeaderList } from '../http/types.js';
import type { ConcurrencyGate } from '../limits/concurrency.js';
import type { KeyLimits, KeyTier, Ticket } from '../limits/key-limits.js';
import type { Logger } from '../log/logger.js';
import { createSurface, MANAGEMENT_FORBIDDEN, mayManageModels } from '../proxy/surface.js';
import type { ForwardControl, UpstreamPool } from '../proxy/types.js';
import type { RouteContext, RouteHandler } from './context.js';
import type { BodyInfo, PresentedKey, Principal, ProxyPorts } from './proxy-ports.js';
import { Relay } from './relay.js';
import { createUsageTracker, type UsageTracker } from '../proxy/usage.js';
import { flavorOf, sendError } from './respond.js';

export interface ProxyOptions {
  maxBodyBytes: number;
  /** Ceiling on one key's open requests in this replica (the tier's concurrentStreams applies below it). */
  perKeyConcurrency: number;
  heartbeatMs: number;
  /** PROXY_MODEL_MANAGEMENT: Ollama model management for operator keys (otherwise 404). */
  modelManagement: boolean;
}

export interface ProxyDeps {
  pool: UpstreamPool;
  gate: ConcurrencyGate;
  limits: KeyLimits;
  ports: ProxyPorts;
  log: Logger;
  options: ProxyOptions;
}

/** What the synchronous checks established before any body byte or lookup. */
interface Admitted {
  key: PresentedKey;
  /** A model-management call: the key's owner must be an operator. */
  management: boolean;
}

const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'OPTIONS']);

const CUT_MESSAGE =
  "Rate limit exceeded: this stream used the API key's remaining tokens and was stopped; retry after the x-ratelimit-reset-tokens delay.";

/**
 * `/v1/*` and `/api/*`: the allow-list and the key's format, synchronously (an anonymous or
 * misdirected client never makes the gateway read its body or look anything up) → read the
 * body while the key is looked up → effective tier and per-key concurrency → rate-limit
 * admission (requests + reserved tokens) → forward with backpressure, cutting a stream that
 * outruns the key's tokens → settle usage and the reservation exactly once. Every ending goes
 * through `finish`. Any answer sent before the body was read closes the connection (the sink
 * does that, see http/exchange.ts closesAfterResponse), so a refused upload stops at once.
 */
export function proxyRoute(deps: ProxyDeps): RouteHandler {
  const { ports } = deps;
  const surface = createSurface({ modelManagement: deps.options.modelManagement });
  const serve = serveAdmitted(deps);
  return (ctx) => {
    const { req, sink } = ctx;
    let admitted: Admitted;
    try {
      const verdict = surface.check(req.method, req.path);
      if (!verdict.ok) throw verdict.error;
      admitted = { key: ports.checkKey(req), management: verdict.management };
    } catch (e) {
      const err = asGatewayError(e);
      const flavor = flavorOf(req.path);
      sendError(sink, err, flavor, [['x-request-id', ctx.requestId]]);
      const durationMs = performance.now() - req.receivedAt;
      ports.observe({
        family: flavor === 'ollama' ? 'ollama' : 'openai',
        status: err.status,
        durationMs,
        ttfbMs: null,
        outcome: 'rejected',
      });
      return;
    }
    return serve(ctx, admitted);
  };
}

/** Everything after the synchronous checks: body, lookup, limits, forwarding. */
function serveAdmitted(deps: ProxyDeps) {
  const { pool, gate, limits, ports, log, options } = deps;
  return async (ctx: RouteContext, admittedBy: Admitted): Promise<void> => {
    const { req, sink } = ctx;
    const flavor = flavorOf(req.path);
    const family = flavor === 'ollama' ? 'ollama' : 'openai';
    // uWS only delivers body bytes to a handler registered before this function first awaits.
    const bodyPromise = METHODS_WITHOUT_BODY.has(req.method) ? null : ctx.readBody(options.maxBodyBytes);
    bodyPromise?.catch(() => undefined);

    let principal: Principal | null = null;
    let tier: KeyTier | null = null;
    let ticket: Ticket | null = null;
    let cut = false;
    let info: BodyInfo | null = null;
    let control: ForwardControl | null = null;
    let heldGlobal = false;
    let heldKey = false;
    let ttfbMs: number | null = null;
    let status = 0;
    let done = false;
    let meter: UsageTracker | null = null;
    const extraHeaders = (): HeaderList => [
      ['x-request-id', ctx.requestId],
      ...(tier ? ([['x-fluxgate-tier', tier.id]] as const) : []),
      ...(ticket ? ticket.headers : []),
    ];
    const relay = new Relay(sink, flavor, extraHeaders);

    const finish = (outcome: string, err?: GatewayError) => {
      if (done) return;
      done = true;
      relay.stopHeartbeat();
      if (heldGlobal) gate.releaseGlobal();
      if (heldKey && principal) gate.releaseKey(principal.keyId);
      if (heldGlobal) ports.onStreamOpen(-1);
      const finalStatus = status || err?.status || 0;
      const durationMs = performance.now() - req.receivedAt;
      ports.observe({ family, status: finalStatus, durationMs, ttfbMs, outcome });
      if (principal && info) {
        const usage = meter?.result() ?? { promptTokens: info.promptTokensEstimate, completionTokens: 0, estimated: true };
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
          responseBytes: relay.bytesOut,
          ttfbMs,
          durationMs,
          clientIp: req.remoteAddress,
          model: info.model,
          promptFingerprint: info.promptFingerprint,
          streamed: relay.responseFormat === 'sse' || relay.responseFormat === 'ndjson',
          cut,
          upstreamError: err !== undefined && err.status >= 502,
        });
      }
    };

    // uWS invokes these from native callbacks: an exception escaping them would take the
    // process down, so each is contained and logged.
    const guarded = (what: string, fn: () => void) => () => {
      try {
        fn();
      } catch (err) {
        log.error({ err, requestId: ctx.requestId }, `proxy ${what} callback failed`);
      }
    };
    sink.onAbort(
      guarded('abort', () => {
        // Client gone: abort the upstream at once and never touch the response again.
        control?.abort();
        finish('client_abort');
      }),
    );

    try {
      if (!gate.tryAcquireGlobal()) throw new GatewayError('server_busy', undefined, { headers: [['retry-after', '1']] });
      heldGlobal = true;
      ports.onStreamOpen(1);
      const authenticated = ports.authenticate(admittedBy.key, req);
      principal = authenticated instanceof Promise ? await authenticated : authenticated;
      if (sink.aborted) return;
      if (admittedBy.management && !mayManageModels(principal.role)) throw new GatewayError('forbidden', MANAGEMENT_FORBIDDEN);
      const found = limits.tierOf(principal.keyId, principal.tier, principal.userId);
      tier = found instanceof Promise ? await found : found;
      if (sink.aborted) return;
      const streams = Math.min(tier.concurrentStreams, options.perKeyConcurrency);
      if (!gate.tryAcquireKey(principal.keyId, streams)) {
        throw new GatewayError(
          'too_many_streams',
          `Too many concurrent requests for this API key (at most ${streams} under tier ${tier.id}).`,
          { headers: [['retry-after', '1']] },
        );
      }
      heldKey = true;
      const body = bodyPromise ? await bodyPromise : null;
      if (sink.aborted) return;
      info = ports.inspectBody(req, body);
      const admission = limits.admit(principal.keyId, tier, info.promptTokensEstimate, info.maxTokens, info.model !== null);
      const admitted = admission instanceof Promise ? await admission : admission;
      // The client left while Redis answered: nothing was forwarded, so nothing is charged.
      if (sink.aborted) return admitted.refund();
      ticket = admitted;
    } catch (e) {
      const err = asGatewayError(e);
      if (err.code === 'internal_error') log.error({ err: e, requestId: ctx.requestId }, 'proxy admission failed');
      sendError(sink, err, flavor, extraHeaders());
      return finish('rejected', err);
    }

    const admittedTicket = ticket as Ticket;
    /**
     * Past its reservation a stream may go on while the key has tokens to spare; beyond that it
     * is cut after the event just forwarded (wholeEvents keeps the output at a boundary): one
     * rate_limit_exceeded event, a clean end, and the upstream aborted.
     */
    const checkBudget = (m: UsageTracker) => {
      const streamed = relay.responseFormat === 'sse' || relay.responseFormat === 'ndjson';
      if (!streamed || !m.atEventBoundary || m.completionTokens <= admittedTicket.budget()) return;
      cut = true;
      const err = new GatewayError('rate_limit_exceeded', CUT_MESSAGE);
      relay.fail(err);
      control?.abort(err);
      finish('token_cut');
    };

    // After each upstream read is metered and written (relay.ts): a stream past its reservation.
    relay.onFlushed(() => {
      if (meter !== null && meter.completionTokens > admittedTicket.reservedCompletion) checkBudget(meter);
    });
    if (info.stream) relay.startHeartbeat(options.heartbeatMs, flavor === 'ollama' ? 'ndjson' : 'sse');
    const bodyInfo = info;
    control = pool.forward(
      {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: bodyInfo.body,
        model: bodyInfo.model,
        // The whole chain when a trusted proxy is in front, else the peer (proxy/headers.ts).
        remoteAddress: req.forwardedFor ?? req.remoteAddress,
        requestId: ctx.requestId,
      },
      {
        onResponseStart(upstreamStatus, headers, _upstream, contentLength) {
          if (sink.aborted) return;
          ttfbMs = performance.now() - req.receivedAt;
          status = upstreamStatus;
          const header = (name: string) => headers.find(([k]) => k === name)?.[1] ?? null;
          meter = createUsageTracker({
            contentType: header('content-type'),
            contentEncoding: header('content-encoding'),
            promptText: bodyInfo.promptText,
            stripInjectedUsage: bodyInfo.injectedIncludeUsage,
            // A stream that may have to be cut is forwarded whole event by whole event.
            wholeEvents: admittedTicket.reservedCompletion !== Infinity,
          });
          if (!relay.start(upstreamStatus, headers, contentLength, meter, bodyInfo.injectedIncludeUsage)) {
            const err = new GatewayError('upstream_failed', `The upstream model server answered ${upstreamStatus}.`);
            relay.fail(err);
            control?.abort(err);
          }
        },
        onData(chunk) {
          if (sink.finished) return true;
          return relay.data(chunk);
        },
        onComplete() {
          relay.complete();
          finish('ok');
        },
        onError(err) {
          // Abort errors caused by the client going away are already settled in onAbort.
          if (sink.aborted) return finish('client_abort');
          relay.fail(err);
          finish(err.code, err);
        },
      },
    );
    relay.onDrain(guarded('drain', () => control?.resume()));
  };
}
