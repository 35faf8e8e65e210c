/**
 * One forwarded exchange: pick an upstream, dispatch an Attempt (undici's handler API), fail
 * over before the first response byte, and report to the ForwardHandler exactly once.
 *
 * Retries: only while nothing has been forwarded, and only when the request cannot have been
 * processed (it never reached a socket: connect refused/timeout, DNS) or the upstream answered
 * with a retryable 5xx status. RFC 9110 §9.2.2 allows automatic retries of non-idempotent
 * requests only when the request is known not to have been acted on; a status in
 * `retryStatuses` is taken as that signal by configuration.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import { Attempt, type AttemptOwner, type PoolUpstream } from './attempt.js';
import type { Balancer } from './balancer.js';
import { abortError, countsAgainstUpstream, mapUpstreamError } from './failure.js';
import { filterRequestHeaders, filterResponseHeaders, withCredential } from './headers.js';
import type { ForwardControl, ForwardHandler, ForwardRequest } from './types.js';

export interface ExchangeSettings {
  /** Further attempts after the first. */
  maxRetries: number;
  retryStatuses: ReadonlySet<number>;
  /** Whole exchange, headers and body included; 0 disables. */
  totalTimeoutMs: number;
  now: () => number;
}

export class Exchange implements ForwardControl, AttemptOwner {
  readonly #req: ForwardRequest;
  readonly #handler: ForwardHandler;
  readonly #balancer: Balancer<PoolUpstream>;
  readonly #s: ExchangeSettings;
  readonly #headers: string[];
  readonly #path: string;
  readonly #tried: PoolUpstream[] = [];
  #attempt: Attempt | null = null;
  #started = false;
  #done = false;
  #starting = true;
  #inData = false;
  #resumeWanted = false;
  #timer: NodeJS.Timeout | null = null;
  #listening = false;
  readonly #onAbort = (): void => this.abort(this.#req.signal?.reason);

  constructor(balancer: Balancer<PoolUpstream>, settings: ExchangeSettings, req: ForwardRequest, handler: ForwardHandler) {
    this.#balancer = balancer;
    this.#s = settings;
    this.#req = req;
    this.#handler = handler;
    this.#headers = filterRequestHeaders(req.headers, { forwardedFor: req.remoteAddress ?? null, requestId: req.requestId ?? null });
    this.#path = req.query === '' ? req.path : `${req.path}?${req.query}`;
  }

  start(): this {
    const signal = this.#req.signal;
    if (signal?.aborted) {
      this.abort(signal.reason);
    } else if (this.#req.method === 'CONNECT') {
      // RFC 9110 §9.3.6: CONNECT asks for a tunnel; this gateway forwards requests only.
      this.#fail(new GatewayError('method_not_allowed'));
    } else {
      if (signal) {
        signal.addEventListener('abort', this.#onAbort, { once: true });
        this.#listening = true;
      }
      if (this.#s.totalTimeoutMs > 0) {
        this.#timer = setTimeout(() => this.abort(new GatewayError('upstream_total_timeout')), this.#s.totalTimeoutMs);
      }
      this.#next(null);
    }
    this.#starting = false;
    return this;
  }

  resume(): void {
    if (this.#done) return;
    // undici's parser cannot be resumed from inside its own data callback.
    if (this.#inData) this.#resumeWanted = true;
    else this.#attempt?.controller?.resume();
  }

  abort(reason?: unknown): void {
    if (this.#done) return;
    const err = abortError(reason);
    const a = this.#attempt;
    if (a !== null && !a.released) {
      a.cancel(err);
      this.#release(a);
      a.upstream.health.release(a.takeTrial());
    }
    this.#fail(err);
  }

  responseStart(a: Attempt, status: number, headers: IncomingHttpHeaders): void {
    const health = a.upstream.health;
    if (this.#s.retryStatuses.has(status)) {
      health.failure(this.#s.now(), `http_${status}`, a.takeTrial());
      // Fail over only if another attempt can actually be made; otherwise this answer is final.
      const next = this.#canRetry() ? this.#balancer.pick(this.#req.model, this.#tried, this.#s.now()) : null;
      if (next !== null) {
        a.cancel(new GatewayError('upstream_failed', `Upstream answered ${status}.`));
        this.#release(a);
        this.#dispatch(next.upstream, next.trial);
        return;
      }
    } else {
      health.success(a.takeTrial());
    }
    this.#started = true;
    const filtered = filterResponseHeaders(headers);
    try {
      this.#handler.onResponseStart(status, filtered.headers, a.upstream.def.name, filtered.contentLength);
    } catch (e) {
      this.#handlerThrew(e);
    }
  }

  data(a: Attempt, chunk: Buffer): void {
    if (this.#done) return;
    this.#inData = true;
    let more: boolean;
    try {
      more = this.#handler.onData(chunk);
    } catch (e) {
      this.#inData = false;
      this.#handlerThrew(e);
      return;
    }
    this.#inData = false;
    if (!more && !this.#resumeWanted && !this.#done) a.controller?.pause();
    this.#resumeWanted = false;
  }

  /** A throwing handler is a gateway bug, not an upstream failure: end the exchange with it. */
  #handlerThrew(e: unknown): void {
    this.abort(new GatewayError('internal_error', undefined, { cause: e }));
  }

  end(a: Attempt): void {
    this.#release(a);
    if (this.#done) return;
    this.#done = true;
    this.#cleanup();
    this.#handler.onComplete();
  }

  attemptError(a: Attempt, err: Error): void {
    this.#release(a);
    if (this.#done) return;
    const mapped = mapUpstreamError(err);
    const health = a.upstream.health;
    if (countsAgainstUpstream(mapped)) health.failure(this.#s.now(), mapped.code, a.takeTrial());
    else health.release(a.takeTrial());
    // Never retry once the response started, nor a request that may have reached the upstream.
    if (!this.#started && !a.sent && this.#canRetry()) {
      this.#next(mapped);
      return;
    }
    this.#fail(mapped);
  }

  #canRetry(): boolean {
    return !this.#started && this.#tried.length <= this.#s.maxRetries && this.#req.signal?.aborted !== true;
  }

  #next(lastError: GatewayError | null): void {
    const p = this.#balancer.pick(this.#req.model, this.#tried, this.#s.now());
    if (p === null) {
      this.#fail(lastError ?? new GatewayError('upstream_unavailable'));
      return;
    }
    this.#dispatch(p.upstream, p.trial);
  }

  #dispatch(upstream: PoolUpstream, trial: boolean): void {
    this.#tried.push(upstream);
    const a = new Attempt(this, upstream, trial);
    this.#attempt = a;
    upstream.outstanding++;
    const opts: Dispatcher.DispatchOptions = {
      origin: upstream.origin,
      path: upstream.basePath + this.#path,
      method: this.#req.method as Dispatcher.HttpMethod,
      headers: withCredential(this.#headers, upstream.authorization),
      body: this.#req.body,
    };
    try {
      upstream.dispatcher.dispatch(opts, a);
    } catch (err) {
      a.onResponseError(null, err as Error);
    }
  }

  #release(a: Attempt): void {
    if (a.released) return;
    a.released = true;
    a.upstream.outstanding--;
  }

  #fail(err: GatewayError): void {
    if (this.#done) return;
    this.#done = true;
    this.#cleanup();
    const started = this.#started;
    // Callers get their callbacks after forward() has returned its control object.
    if (this.#starting) queueMicrotask(() => this.#handler.onError(err, started));
    else this.#handler.onError(err, started);
  }

  #cleanup(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#listening) this.#req.signal?.removeEventListener('abort', this.#onAbort);
    this.#listening = false;
  }
}
