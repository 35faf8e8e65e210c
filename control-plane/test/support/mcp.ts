/** MCP test helpers: the SDK's Client linked in memory to our server, built for one identity. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Ollama } from 'ollama';
import { pino } from 'pino';
import { configWith } from '../../src/config/load.js';
import { createMcpContext, type McpContext } from '../../src/mcp/context.js';
import type { McpIdentity } from '../../src/mcp/identity.js';
import { createFluxgateMcpServer } from '../../src/mcp/server.js';
import type { Sql } from '../../src/store/db.js';
import { timeoutFetch } from '../../src/summarise/ollama-client.js';
import type { TestRedis } from './services.js';

export const OPERATOR: McpIdentity = { name: 'alice', role: 'operator', via: 'http' };
export const READER: McpIdentity = { name: 'rita', role: 'reader', via: 'http' };

export async function mcpContext(
  tr: TestRedis,
  sql: Sql | null,
  env: Record<string, string> = {},
  clock?: { now: number },
): Promise<McpContext> {
  const config = configWith({ OLLAMA_HOST: 'http://127.0.0.1:9', LLM_TIMEOUT_MS: '2000', ...env });
  const ollama = new Ollama({ host: config.OLLAMA_HOST!, fetch: timeoutFetch(config.LLM_TIMEOUT_MS) });
  const redis = await tr.connect();
  return createMcpContext({ config, redis, sql, ollama, log: pino({ level: 'silent' }), ...(clock ? { now: () => clock.now } : {}) });
}

export interface Connected {
  client: Client;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** structuredContent of a successful call (fails the test on a tool error). */
  ok<T = any>(name: string, args?: Record<string, unknown>): Promise<T>;
  /** The text of a tool error (fails the test when the call succeeded). */
  error(name: string, args?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function connect(ctx: McpContext, identity: McpIdentity): Promise<Connected> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const server = createFluxgateMcpServer(ctx, identity, 'test');
  const client = new Client({ name: 'fluxgate-test', version: '1.0.0' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  const call = async (name: string, args: Record<string, unknown> = {}) =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;
  return {
    client,
    call,
    async ok(name, args) {
      const r = await call(name, args);
      if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content)}`);
      return r.structuredContent as any;
    },
    async error(name, args) {
      const r = await call(name, args);
      if (!r.isError) throw new Error(`${name} succeeded: ${JSON.stringify(r.structuredContent)}`);
      return (r.content as Array<{ text: string }>).map((c) => c.text).join('\n');
    },
    async close() {
      await client.close();
      await server.close();
    },
  };
}
