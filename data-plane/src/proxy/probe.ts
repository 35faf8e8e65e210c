/**
 * Active health probe: `GET <base><path>` on every upstream every `intervalMs`. Any answer below
 * 500 passes (the server is up, even when the path needs a credential or does not exist); a 5xx,
 * a connection failure or no answer within `timeoutMs` fails.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { mapUpstreamError } from './failure.js';
import type { PoolUpstream } from './attempt.js';

export interface ProbeOptions {
  /** Path appended to each base URL, e.g. `/` (Ollama answers it) or `/v1/models`. */
  path: string;
  intervalMs: number;
  timeoutMs: number;
}

export const DEFAULT_PROBE: ProbeOptions = { path: '/', intervalMs: 5_000, timeoutMs: 2_000 };

export interface ProbeResult {
  ok: boolean;
  /** Why it failed: a catalogue code, `http_<status>` or `probe_timeout`; null when ok. */
  code: string | null;
}

/** Probes one upstream once. Never rejects. */
export function probeOnce(u: PoolUpstream, opts: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | null = null;
    let status = 0;
    const settle = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      settle({ ok: false, code: 'probe_timeout' });
      controller?.abort(new Error('probe timed out'));
    }, opts.timeoutMs);
    const headers = ['user-agent', 'fluxgate-health-probe'];
    if (u.authorization !== null) headers.push('authorization', u.authorization);
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (settled) c.abort(new Error('probe timed out'));
      },
      onResponseStart(_c, statusCode: number, _h: IncomingHttpHeaders) {
        status = statusCode;
      },
      // The body is read and dropped so the connection stays reusable.
      onResponseData() {},
      onResponseEnd() {
        settle(status < 500 ? { ok: true, code: null } : { ok: false, code: `http_${status}` });
      },
      onResponseError(_c, err) {
        settle({ ok: false, code: mapUpstreamError(err).code });
      },
    };
    try {
      u.dispatcher.dispatch(
        {
          origin: u.origin,
          path: u.basePath + opts.path,
          method: 'GET',
          headers,
          headersTimeout: opts.timeoutMs,
          bodyTimeout: opts.timeoutMs,
        },
        handler,
      );
    } catch (err) {
      settle({ ok: false, code: mapUpstreamError(err).code });
    }
  });
}

/** Runs probes on a timer that never keeps the process alive. */
export class Prober {
  readonly #upstreams: readonly PoolUpstream[];
  readonly #opts: ProbeOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(upstreams: readonly PoolUpstream[], opts: ProbeOptions, now: () => number) {
    this.#upstreams = upstreams;
    this.#opts = opts;
    this.#now = now;
  }

  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    this.#timer = setInterval(() => void this.runOnce(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** One round over all upstreams; a round still running is joined, not duplicated. */
  runOnce(): Promise<void> {
    if (this.#running !== null) return this.#running;
    const round = Promise.all(
      this.#upstreams.map(async (u) => {
        const r = await probeOnce(u, this.#opts);
        if (!this.#stopped) u.health.probe(r.ok, this.#now(), r.code);
      }),
    ).then(() => {
      this.#running = null;
    });
    this.#running = round;
    return round;
  }

  /** Stops the timer; waits for a round in flight (each ends within timeoutMs). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
