import { Counter, Gauge, type Registry } from 'prom-client';
import type { PenaltyCache } from './penalties.js';
import { DECISION_KINDS, type RateLimiter } from './rate-limiter.js';

/**
 * Prometheus view of the limiter and the penalty box, on the process's own Registry. Values are
 * read from the modules' `stats()` at scrape time (prom-client `collect`), so the hot path never
 * touches prom-client. Labels are the bounded decision kinds only — no key ids.
 */
export function registerLimitsMetrics(registry: Registry, deps: { limiter: RateLimiter; penalties?: PenaltyCache }): void {
  const { limiter, penalties } = deps;
  const registers = [registry];
  // Counters only go up: each scrape adds what was counted since the previous scrape.
  const seen: Record<string, number> = {};
  const delta = (name: string, value: number): number => {
    const d = value - (seen[name] ?? 0);
    seen[name] = value;
    return Math.max(0, d);
  };
  new Counter({
    name: 'fluxgate_rate_limit_decisions_total',
    help: 'Rate-limit decisions by how they were made: lease_admit (in process, from a lease), redis_admit/redis_refuse (after a Redis round trip), cached_refuse (known refusal, no round trip), too_large, fallback_admit/fallback_refuse (Redis unavailable: local limits).',
    labelNames: ['decision'] as const,
    registers,
    collect() {
      const d = limiter.stats().decisions;
      for (const kind of DECISION_KINDS) this.inc({ decision: kind }, delta(kind, d[kind]));
    },
  });
  new Counter({
    name: 'fluxgate_rate_limit_redis_calls_total',
    help: 'Lease calls to Redis (draws, top-ups and give-backs).',
    registers,
    collect() {
      this.inc(delta('calls', limiter.stats().redisCalls));
    },
  });
  new Counter({
    name: 'fluxgate_rate_limit_redis_errors_total',
    help: 'Lease calls to Redis that failed or timed out.',
    registers,
    collect() {
      this.inc(delta('errors', limiter.stats().redisErrors));
    },
  });
  new Gauge({
    name: 'fluxgate_rate_limit_degraded',
    help: '1 while Redis is unavailable and rate limits are decided locally (LIMITS_REDIS_DOWN_POLICY).',
    registers,
    collect() {
      this.set(limiter.degraded ? 1 : 0);
    },
  });
  new Gauge({
    name: 'fluxgate_rate_limit_keys',
    help: 'API keys with rate-limit state held in this process.',
    registers,
    collect() {
      this.set(limiter.stats().keys);
    },
  });
  new Gauge({
    name: 'fluxgate_rate_limit_accounts',
    help: 'Accounts (per account tier) with rate-limit state held in this process.',
    registers,
    collect() {
      this.set(limiter.stats().accounts);
    },
  });
  if (penalties) {
    new Gauge({
      name: 'fluxgate_penalty_box_size',
      help: 'Keys in the penalty box as this replica sees it.',
      registers,
      collect() {
        this.set(penalties.size);
      },
    });
  }
}
