/**
 * Health of one upstream: a circuit breaker driven by request outcomes (passive health) plus
 * ejection driven by the active probe.
 *
 *   healthy ──N consecutive failures──▶ open (for base·2^k ms, capped)
 *   open ──time elapsed, or a passing probe──▶ half_open (exactly one trial request)
 *   half_open ──trial succeeds──▶ healthy      half_open ──trial fails──▶ open (k+1)
 *   any ──M consecutive failed probes──▶ ejected ──passing probe──▶ healthy
 *
 * A passing probe only half-opens a tripped breaker: `GET /` answering says the server is up,
 * not that inference works, so one real request decides. Time is passed in (no timers here),
 * which keeps the machine deterministic under test.
 */
export type UpstreamState = 'healthy' | 'ejected' | 'open' | 'half_open';

export interface HealthOptions {
  /** Consecutive failed requests that open the breaker. */
  failureThreshold: number;
  /** First open period; doubled for each consecutive re-open, up to `maxOpenMs`. */
  baseOpenMs: number;
  maxOpenMs: number;
  /** Consecutive failed probes that eject the upstream until a probe passes. */
  probeFailureThreshold: number;
}

export const DEFAULT_HEALTH: HealthOptions = {
  failureThreshold: 5,
  baseOpenMs: 2_000,
  maxOpenMs: 60_000,
  probeFailureThreshold: 2,
};

export type StateListener = (from: UpstreamState, to: UpstreamState) => void;

export class UpstreamHealth {
  readonly #opts: HealthOptions;
  readonly #onChange: StateListener | undefined;
  #state: UpstreamState = 'healthy';
  #openUntil = 0;
  /** Consecutive trips of the breaker; sets the exponent of the open period. */
  #trips = 0;
  #trialInFlight = false;
  #probeFailures = 0;

  consecutiveFailures = 0;
  lastError: string | null = null;
  requests = 0;
  failures = 0;

  constructor(opts: HealthOptions, onChange?: StateListener) {
    this.#opts = opts;
    this.#onChange = onChange;
  }

  /** Current state; an open breaker whose period has passed reads as half_open. */
  state(now: number): UpstreamState {
    if (this.#state === 'open' && now >= this.#openUntil) this.#set('half_open');
    return this.#state;
  }

  /** When an open breaker lets a trial through, or null. */
  get openUntil(): number | null {
    return this.#state === 'open' ? this.#openUntil : null;
  }

  /** Whether a request may be sent now (without taking the slot). */
  available(now: number): boolean {
    const s = this.state(now);
    return s === 'healthy' || (s === 'half_open' && !this.#trialInFlight);
  }

  /**
   * Takes a request slot. Returns null when unavailable, otherwise whether this request is the
   * half-open trial (its outcome decides the breaker; release it with success/failure/release).
   */
  acquire(now: number): { trial: boolean } | null {
    if (!this.available(now)) return null;
    this.requests++;
    if (this.#state === 'half_open') {
      this.#trialInFlight = true;
      return { trial: true };
    }
    return { trial: false };
  }

  success(trial: boolean): void {
    if (trial) this.#trialInFlight = false;
    this.consecutiveFailures = 0;
    if (this.#state === 'half_open') {
      this.#trips = 0;
      this.#set('healthy');
    }
  }

  failure(now: number, code: string, trial: boolean): void {
    if (trial) this.#trialInFlight = false;
    this.failures++;
    this.consecutiveFailures++;
    this.lastError = code;
    const s = this.state(now);
    if (s === 'half_open' || (s === 'healthy' && this.consecutiveFailures >= this.#opts.failureThreshold)) {
      this.#trip(now);
    }
    // Failures of requests that were in flight when the breaker opened do not extend it.
  }

  /** The request ended without saying anything about the upstream (client abort, …). */
  release(trial: boolean): void {
    if (trial) this.#trialInFlight = false;
  }

  /** Result of an active probe. */
  probe(ok: boolean, now: number, code: string | null): void {
    if (ok) {
      this.#probeFailures = 0;
      const s = this.state(now);
      if (s === 'ejected') {
        this.consecutiveFailures = 0;
        this.#trips = 0;
        this.#set('healthy');
      } else if (s === 'open') {
        this.#set('half_open');
      }
      return;
    }
    this.#probeFailures++;
    if (code !== null) this.lastError = code;
    if (this.#probeFailures >= this.#opts.probeFailureThreshold && this.#state !== 'ejected') {
      this.#set('ejected');
    }
  }

  #trip(now: number): void {
    const period = Math.min(this.#opts.baseOpenMs * 2 ** this.#trips, this.#opts.maxOpenMs);
    this.#trips++;
    this.#openUntil = now + period;
    this.#set('open');
  }

  #set(to: UpstreamState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#onChange?.(from, to);
  }
}
