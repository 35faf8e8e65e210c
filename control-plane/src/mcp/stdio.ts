/**
 * `npm run mcp:stdio` (or `node control-plane/dist/mcp/stdio.js`): the MCP server over stdio for
 * desktop clients. stdout carries the protocol only: every log line goes to stderr. It runs as
 * MCP_STDIO_ROLE (default reader) under the name MCP_STDIO_NAME, against the same Redis and
 * Postgres as the control plane (REDIS_URL, DATABASE_URL); it runs no guard of its own.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { Redis } from 'ioredis';
import { Ollama } from 'ollama';
import { pino } from 'pino';
import { loadConfig, ollamaHost } from '../config/load.js';
import type { ControlPlaneConfig } from '../config/schema.js';
import { createLogger } from '../log/logger.js';
import { createSql } from '../store/db.js';
import { timeoutFetch } from '../summarise/ollama-client.js';
import { createMcpContext } from './context.js';
import { createFluxgateMcpServer, MCP_SERVER_VERSION } from './server.js';

let config: ControlPlaneConfig;
try {
  config = loadConfig(process.env);
} catch (e) {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(
    message
      .split('\n')
      .map((l) => `fluxgate mcp (stdio): ${l}\n`)
      .join(''),
  );
  process.exit(2);
}

const log = createLogger({ level: config.LOG_LEVEL, name: 'mcp-stdio', destination: pino.destination(2) });
const redis = new Redis(config.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 2, connectTimeout: 5000 });
redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis error'));
const sql = config.DATABASE_URL ? createSql(config.DATABASE_URL, { logger: log, max: 2 }) : null;
if (!sql) log.warn('DATABASE_URL not set: keys only by id, no allowlist, no archive');
const ollama = new Ollama({ host: ollamaHost(config), fetch: timeoutFetch(config.LLM_TIMEOUT_MS) });
const ctx = createMcpContext({ config, redis, sql, ollama, log });
const server = createFluxgateMcpServer(ctx, { name: config.MCP_STDIO_NAME, role: config.MCP_STDIO_ROLE, via: 'stdio' }, MCP_SERVER_VERSION);
const transport = new StdioServerTransport();

let closing = false;
async function close(why: string): Promise<void> {
  if (closing) return;
  closing = true;
  log.info({ why }, 'mcp stdio stopping');
  await server.close().catch(() => undefined);
  await Promise.allSettled([redis.quit(), sql?.end({ timeout: 5 })]);
  process.exit(0);
}
// The client closing our stdin is the normal end of a stdio session.
transport.onclose = () => void close('stdin closed');
process.stdin.on('end', () => void close('stdin closed'));
process.on('SIGTERM', () => void close('SIGTERM'));
process.on('SIGINT', () => void close('SIGINT'));

server
  .connect(transport)
  .then(() => log.info({ role: config.MCP_STDIO_ROLE, actor: config.MCP_STDIO_NAME }, 'mcp stdio ready'))
  .catch((err: unknown) => {
    log.fatal({ err: (err as Error).message }, 'mcp stdio failed to start');
    process.exit(1);
  });
