import type { Redis } from 'ioredis';
import type { Ollama } from 'ollama';
import { pollIntervalMs } from '../config/load.js';
import type { ControlPlaneConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { GuardMetrics } from '../metrics/registry.js';
import type { Sql } from '../store/db.js';

export interface GuardDeps {
  config: ControlPlaneConfig;
  redis: Redis;
  redisUrl: string;
  sql: Sql | null;
  ollama: Ollama;
  metrics: GuardMetrics;
  log: Logger;
}

export interface Guard {
  start(isLeader: () => boolean): void;
  stop(): Promise<void>;
  /** Called when this process becomes the leader (warm caches may be stale). */
  onLeadership(): void;
  status(): Record<string, unknown>;
}

export function createGuard(deps: GuardDeps): Guard {
  const intervalMs = pollIntervalMs(deps.config);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let stopped = false;
  let cycles = 0;
  let lastCycleAt = 0;

  const cycle = async (): Promise<void> => {
    cycles++;
    lastCycleAt = Date.now();
  };

  const schedule = (isLeader: () => boolean): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      if (!isLeader()) {
        deps.metrics.cycles.inc({ outcome: 'standby' });
        return schedule(isLeader);
      }
      running = cycle()
        .then(() => deps.metrics.cycles.inc({ outcome: 'ok' }))
        .catch((err: unknown) => {
          deps.metrics.cycles.inc({ outcome: 'error' });
          deps.log.warn({ err: (err as Error).message }, 'guard cycle failed; retrying at the next poll');
        })
        .finally(() => {
          running = null;
          schedule(isLeader);
        });
    }, intervalMs);
  };

  return {
    start: (isLeader) => schedule(isLeader),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
    onLeadership() {},
    status: () => ({ cycles, lastCycleAt }),
  };
}
