/**
 * One attempt of an exchange: the undici dispatch handler (new handler API:
 * onRequestStart/onResponseStart/onResponseData/onResponseEnd/onResponseError, with the
 * controller's pause/resume/abort). It forwards to its owner until cancelled, after which every
 * late callback from undici is ignored.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { GatewayError } from '../errors.js';
import type { BalancedUpstream } from './balancer.js';

export interface PoolUpstream extends BalancedUpstream {
  readonly dispatcher: Dispatcher;
  /** `scheme://host:port` of the base URL. */
  readonly origin: string;
  /** Base URL path without its trailing slash ('' for '/'). */
  readonly basePath: string;
  /** `Bearer …` for the upstream's credential, or null. */
  readonly authorization: string | null;
}

/** What an attempt reports to (the exchange). */
export interface AttemptOwner {
  responseStart(a: Attempt, status: number, headers: IncomingHttpHeaders): void;
  data(a: Attempt, chunk: Buffer): void;
  end(a: Attempt): void;
  attemptError(a: Attempt, err: Error): void;
}

export class Attempt implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | null = null;
  /** The request was handed to a socket (onRequestStart). */
  sent = false;
  /** Counted in `outstanding` until released. */
  released = false;
  cancelled: GatewayError | null = null;

  constructor(
    readonly exchange: AttemptOwner,
    readonly upstream: PoolUpstream,
    private trial: boolean,
  ) {}

  /** Whether this attempt still holds the half-open trial; hands it over exactly once. */
  takeTrial(): boolean {
    const t = this.trial;
    this.trial = false;
    return t;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Cancelled while waiting for a connection: undici only now gives us a way to abort.
    if (this.cancelled !== null) controller.abort(this.cancelled);
    else this.sent = true;
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    // 1xx interim responses are not forwarded: the sink has no way to send them.
    if (this.cancelled === null && status >= 200) this.exchange.responseStart(this, status, headers);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.cancelled === null) this.exchange.data(this, chunk);
  }

  onResponseEnd(): void {
    if (this.cancelled === null) this.exchange.end(this);
  }

  onResponseError(_c: Dispatcher.DispatchController | null, err: Error): void {
    if (this.cancelled === null) this.exchange.attemptError(this, err);
  }

  cancel(reason: GatewayError): void {
    if (this.cancelled !== null) return;
    this.cancelled = reason;
    this.controller?.abort(reason);
  }
}
