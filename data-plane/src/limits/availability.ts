import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';

/**
 * Whether the rate limiter may use Redis right now. Declared down on the first failed or
 * timed-out call (the hot-path client has no offline queue, so an outage fails at once instead
 * of piling commands up); back up on the client's 'ready' event (it reconnected) or on a
 * successful probe — a Redis that hung without dropping the connection never emits 'ready', so
 * while degraded one call per `probeMs` is still let through to find out.
 */
export class RedisAvailability {
  readonly #redis: Redis;
  readonly #probeMs: number;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #onRecover: () => void;
  readonly #onReady = (): void => this.recovered('reconnected');
  #degraded = false;
  #nextProbeAt = 0;
  errors = 0;
  outages = 0;

  constructor(redis: Redis, opts: { probeMs: number; now: () => number; logger?: Logger | undefined; onRecover: () => void }) {
    this.#redis = redis;
    this.#probeMs = opts.probeMs;
    this.#now = opts.now;
    this.#log = opts.logger;
    this.#onRecover = opts.onRecover;
    redis.on('ready', this.#onReady);
  }

  get degraded(): boolean {
    return this.#degraded;
  }

  /** Decide locally: degraded, and not yet time (or no connection) to probe. */
  offline(now: number): boolean {
    return this.#degraded && (this.#redis.status !== 'ready' || now < this.#nextProbeAt);
  }

  /** Background work (give-backs) waits for a real connection, probes or not. */
  usable(now: number): boolean {
    return !this.offline(now) && this.#redis.status === 'ready';
  }

  markDown(err: unknown, policy: string): void {
    this.errors++;
    this.#nextProbeAt = this.#now() + this.#probeMs;
    if (this.#degraded) return;
    this.#degraded = true;
    this.outages++;
    this.#log?.warn({ err: (err as Error)?.message, policy }, 'rate limiter: Redis unavailable, deciding locally');
  }

  recovered(why: string): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    this.#onRecover();
    this.#log?.info({ why }, 'rate limiter: Redis is back, shared limits resumed');
  }

  detach(): void {
    this.#redis.off('ready', this.#onReady);
  }
}
