/**
 * Composition root: config → clients → lease → guard loop → HTTP → drain.
 * Every client is created here and passed down; nothing else reads process.env.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ReadinessFailure } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { Ollama } from 'ollama';
import { adminTokenSource } from './config/admin-token.js';
import { ConfigError, loadConfig, ollamaHost, pollIntervalMs } from './config/load.js';
import type { ControlPlaneConfig } from './config/schema.js';
import { createHttpServer, listen } from './http/server.js';
import { createLease } from './lease/lease.js';
import { createLogger, type Logger } from './log/logger.js';
import { installProcessGuards } from './log/process-guard.js';
import { createGuardMetrics } from './metrics/registry.js';
import { createBulkReader } from './collect/bulk-reader.js';
import { createSql } from './store/db.js';
import { createGuard } from './guard/guard.js';
import { timeoutFetch } from './summarise/ollama-client.js';
import { createMcpContext } from './mcp/context.js';
import { createMcpHttpHandler } from './mcp/http.js';
import { createMcpMetrics } from './mcp/metrics.js';
import { createTokenTable, mcpTokenEntries } from './mcp/identity.js';
import { createOriginPolicy } from './mcp/origin.js';
import { MCP_SERVER_VERSION } from './mcp/server.js';

async function main(config: ControlPlaneConfig, log: Logger): Promise<void> {
  const redisUrl = config.REDIS_URL ?? 'redis://127.0.0.1:6379';
  // The guard is out of band: queueing commands through a short outage is fine (maxRetriesPerRequest
  // bounds it), and a failed cycle is simply retried at the next poll.
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 5000 });
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis error'));
  if (!config.DATABASE_URL) log.warn('DATABASE_URL not set: no key metadata (tiers default to free), no incident archive');
  const sql = config.DATABASE_URL ? createSql(config.DATABASE_URL, { logger: log }) : null;
  const ollama = new Ollama({ host: ollamaHost(config), fetch: timeoutFetch(config.LLM_TIMEOUT_MS) });
  const metrics = createGuardMetrics();
  const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const intervalMs = pollIntervalMs(config);

  // The snapshot's bulk reads go over a lean connection of their own (collect/bulk-reader.ts).
  const reader = createBulkReader({ url: redisUrl });
  const guard = createGuard({ config, redis, reader, sql, ollama, metrics, log });
  const lease = createLease({
    redis,
    pollIntervalMs: intervalMs,
    holder,
    log,
    onChange: (leader) => {
      metrics.leader.set(leader ? 1 : 0);
      if (leader) guard.onLeadership();
    },
  });

  const adminToken = adminTokenSource(config.ADMIN_TOKEN, config.FLUXGATE_STATE_DIR);
  const mcp = createMcpHttpHandler({
    ctx: createMcpContext({ config, redis, sql, ollama, log, metrics: createMcpMetrics(metrics.registry) }),
    tokens: createTokenTable({ tokens: mcpTokenEntries(config), adminToken }),
    origins: createOriginPolicy({
      listenHost: config.CONTROL_PLANE_HOST,
      allowedHosts: config.MCP_ALLOWED_HOSTS,
      allowedOrigins: config.MCP_ALLOWED_ORIGINS,
    }),
    version: MCP_SERVER_VERSION,
  });
  const server = createHttpServer({
    registry: metrics.registry,
    adminToken,
    health: () => ({ role: lease.isLeader() ? 'leader' : 'standby', holder, ...guard.status() }),
    readiness: {
      redis: async () => {
        // With the offline queue a PING would wait for the reconnect: say the connection's state instead.
        if (redis.status !== 'ready') throw new ReadinessFailure(`not connected (${redis.status})`);
        return (await redis.ping()) === 'PONG';
      },
      postgres: sql ? async () => sql`SELECT 1` : null,
    },
    log,
    mcp,
  });
  const port = await listen(server, config.CONTROL_PLANE_HOST, config.CONTROL_PLANE_PORT);
  log.info({ port, host: config.CONTROL_PLANE_HOST, pollIntervalMs: intervalMs, holder }, 'control plane listening');
  // One machine-readable line for launchers and tests.
  process.stdout.write(`${JSON.stringify({ event: 'listening', port, holder })}\n`);

  await lease.start();
  guard.start(() => lease.isLeader());

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await guard.stop();
    await lease.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([redis.quit(), sql?.end({ timeout: 5 })]);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** One line per problem, each naming the control plane (it runs beside the data plane's output). */
const fatalLines = (message: string): string =>
  message
    .split('\n')
    .map((l) => `fluxgate control plane: ${l}\n`)
    .join('');

let config: ControlPlaneConfig;
try {
  config = loadConfig(process.env);
} catch (e) {
  process.stderr.write(fatalLines(e instanceof Error ? e.message : String(e)));
  process.exit(2);
}
const log = createLogger({ level: config.LOG_LEVEL });
installProcessGuards(log);
main(config, log).catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(fatalLines(err.message));
  else log.fatal({ err }, 'control plane failed to start');
  process.exit(1);
});
