/**
 * The total-timeout deadlines of one pool's exchanges, checked by one coarse timer instead of a
 * setTimeout (and its clearTimeout) per exchange. Every deadline is `timeoutMs` after its add(),
 * so the Map's insertion order is deadline order and a sweep stops at the first one not due.
 * A deadline fires at most `tick` late: a tenth of the timeout, between 10 ms and 1 s. The timer
 * runs only while deadlines are pending (it stops itself at the first sweep that finds none), and
 * never keeps the process alive.
 */
export interface Expiring {
  expire(): void;
}

export class Deadlines {
  readonly timeoutMs: number;
  readonly tick: number;
  readonly #pending = new Map<Expiring, number>();
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;

  constructor(timeoutMs: number, now: () => number = () => performance.now()) {
    this.timeoutMs = timeoutMs;
    this.tick = Math.min(1000, Math.max(10, Math.floor(timeoutMs / 10)));
    this.#now = now;
  }

  get size(): number {
    return this.#pending.size;
  }

  add(item: Expiring): void {
    this.#pending.set(item, this.#now() + this.timeoutMs);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.sweep(), this.tick);
      this.#timer.unref();
    }
  }

  delete(item: Expiring): void {
    this.#pending.delete(item);
  }

  /** Expire what is due (exported for tests; the timer calls it). */
  sweep(): void {
    const t = this.#now();
    for (const [item, deadline] of this.#pending) {
      if (deadline > t) break;
      this.#pending.delete(item);
      item.expire();
    }
    if (this.#pending.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}
