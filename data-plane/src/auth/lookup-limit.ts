/**
 * Admission for store lookups: at most `maxConcurrent` at once, a bounded queue behind them,
 * and a deadline covering queueing and the lookup itself. What does not fit fails at once with
 * `onReject()`'s error, so a flood of uncached keys cannot pile requests up behind Postgres.
 */
export function createLookupLimit(opts: {
  maxConcurrent: number;
  maxQueued: number;
  timeoutMs: number;
  onReject: (why: 'queue_full' | 'timeout') => Error;
}): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];

  async function admitted<T>(fn: () => Promise<T>): Promise<T> {
    if (active >= opts.maxConcurrent) {
      if (queue.length >= opts.maxQueued) throw opts.onReject('queue_full');
      await new Promise<void>((resolve) => queue.push(resolve));
    } else {
      active++;
    }
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter, or release it.
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  }

  return <T>(fn: () => Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(opts.onReject('timeout')), opts.timeoutMs);
    });
    // A lookup that loses the race still finishes and may fill the cache for the next request.
    return Promise.race([admitted(fn), deadline]).finally(() => clearTimeout(timer));
  };
}
