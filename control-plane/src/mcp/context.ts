import type { Incident } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Ollama } from 'ollama';
import type { ControlPlaneConfig } from '../config/schema.js';
import { archiveIncident } from '../incidents/archive.js';
import { createIncidentStore, type IncidentStore } from '../incidents/store.js';
import type { Logger } from '../log/logger.js';
import type { Sql } from '../store/db.js';
import type { McpMetrics } from './metrics.js';
import { createSummariser } from '../summarise/summariser.js';

/**
 * What every MCP tool reads and writes through: the same clients and stores as the guard (one
 * Redis, one `sql`), created once per process (main.ts for HTTP, stdio.ts for stdio).
 */
export interface McpContext {
  config: ControlPlaneConfig;
  redis: Redis;
  /** Null when DATABASE_URL is unset: no key metadata, allowlist or archive. */
  sql: Sql | null;
  store: IncidentStore;
  /** Asks the model for a summary of this incident now and stores it (template on failure). */
  summarise(incident: Incident): Promise<void>;
  /** Upserts the incident into the Postgres archive; a failure is logged, never thrown. */
  archive(id: string): Promise<void>;
  log: Logger;
  now(): number;
  /** Absent under stdio (no /metrics there). */
  metrics?: McpMetrics;
}

export function createMcpContext(deps: {
  config: ControlPlaneConfig;
  redis: Redis;
  sql: Sql | null;
  ollama: Pick<Ollama, 'chat'>;
  log: Logger;
  now?: () => number;
  metrics?: McpMetrics;
}): McpContext {
  const { config, redis, sql, log } = deps;
  const now = deps.now ?? Date.now;
  const store = createIncidentStore(redis, config.INCIDENT_CAPACITY);
  const archive = async (id: string): Promise<void> => {
    if (!sql) return;
    try {
      const incident = await store.get(id);
      if (incident) await archiveIncident(sql, incident);
    } catch (err) {
      // The guard's leader re-archives the newest incidents when it takes the lead.
      log.warn({ err: (err as Error).message, incident: id }, 'MCP: incident archive write failed');
    }
  };
  // A summariser of its own (no retry timer): MCP asks for one summary at a time and waits for it.
  const summariser = createSummariser({
    ollama: deps.ollama,
    model: config.LLM_MODEL,
    concurrency: config.LLM_CONCURRENCY,
    retryMs: config.LLM_RETRY_MS,
    retryQueue: 0,
    save: async (s) => {
      // A regeneration the model failed falls back to the template: it never replaces a model's summary.
      if (s.source === 'template' && (await store.get(s.id))?.summarySource === 'model') return true;
      const saved = await store.saveSummary(s);
      if (saved) await archive(s.id);
      return saved;
    },
    load: (id) => store.get(id),
    log,
    now,
  });
  return {
    config,
    redis,
    sql,
    store,
    async summarise(incident) {
      summariser.enqueue(incident);
      await summariser.idle();
    },
    archive,
    log,
    now,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  };
}
