/**
 * When to restart a child that died: exponential backoff (1 s, 2 s, 4 s, … by default) capped at
 * `maxMs`, so a child that crashes at once on every start does not spin the CPU, while a child
 * that stayed up for `resetAfterMs` before it died counts as healthy and is restarted quickly
 * again (the rule systemd's RestartSec/StartLimitInterval and supervisord's backoff follow).
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  resetAfterMs: number;
}

export class RestartBackoff {
  #crashes = 0;

  constructor(private readonly policy: BackoffPolicy) {}

  /** Restarts so far in the current run of crashes. */
  get crashes(): number {
    return this.#crashes;
  }

  /**
   * The delay before the next start, given how long the child had been up (ready) when it died;
   * null when it never became ready.
   */
  next(upMs: number | null): number {
    if (upMs !== null && upMs >= this.policy.resetAfterMs) this.#crashes = 0;
    const delay = Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** Math.min(this.#crashes, 30));
    this.#crashes += 1;
    return delay;
  }
}
