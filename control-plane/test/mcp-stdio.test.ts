import { fileURLToPath } from 'node:url';
import { getPenalty } from '@fluxgate/contracts';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIncidentStore } from '../src/incidents/store.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from './support/services.js';

// `node control-plane/dist/mcp/stdio.js` as a desktop client starts it: the SDK's
// StdioClientTransport spawns it; stdout must carry the protocol only (logs go to stderr).
const STDIO = fileURLToPath(new URL('../dist/mcp/stdio.js', import.meta.url));

let redisServer: SpawnedRedis;
let redis: Redis;
beforeAll(async () => {
  redisServer = await spawnRedisServer();
  redis = new Redis(redisServer.url);
});
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.kill();
});

async function start(
  env: Record<string, string>,
): Promise<{ client: Client; errors: Error[]; stderr: () => string; close: () => Promise<void> }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [STDIO],
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redisServer.url, OLLAMA_HOST: 'http://127.0.0.1:9', LOG_LEVEL: 'info', ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const errors: Error[] = [];
  const client = new Client({ name: 'fluxgate-stdio-test', version: '1.0.0' });
  client.onerror = (e) => errors.push(e);
  await client.connect(transport);
  return { client, errors, stderr: () => stderr, close: () => client.close() };
}

describe('MCP over stdio', () => {
  it('answers tools/list as a reader by default, with logs on stderr and nothing but protocol on stdout', async () => {
    const s = await start({});
    try {
      const tools = (await s.client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['list_incidents', 'explain_key', 'get_gateway_metrics', 'get_security_incidents']));
      expect(tools).not.toContain('throttle_key');
      const health = (await s.client.callTool({ name: 'get_upstream_health', arguments: {} })) as CallToolResult;
      expect(health.structuredContent).toMatchObject({ status: 'no_data' });
      expect(s.client.getServerVersion()).toMatchObject({ name: 'fluxgate' });
      // Any non-JSON line on stdout would have reached the client as a parse error.
      expect(s.errors).toEqual([]);
      expect(s.stderr()).toMatch(/"msg":"mcp stdio ready"/);
      expect(s.stderr()).toMatch(/"role":"reader"/);
    } finally {
      await s.close();
    }
  });

  it('MCP_STDIO_ROLE=operator lists the acting tools; actions are recorded under MCP_STDIO_NAME', async () => {
    const s = await start({ MCP_STDIO_ROLE: 'operator', MCP_STDIO_NAME: 'desk' });
    try {
      const tools = (await s.client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['throttle_key', 'pardon_key', 'set_detector_mode']));
      const keyId = '7b0c6a52-1f9e-4c3a-9d55-2a8e0f6b1c44';
      const r = (await s.client.callTool({
        name: 'throttle_key',
        arguments: { key: keyId, level: 'penalty-1', duration: '10m', reason: 'seen in the desk app', detector: 'rate_spike' },
      })) as CallToolResult;
      expect(r.isError).toBeFalsy();
      const incidentId = (r.structuredContent as { incidentId: string }).incidentId;
      expect(await getPenalty(redis, keyId)).toMatchObject({ level: 'penalty-1', setBy: 'operator', incidentId });
      expect(await createIncidentStore(redis, 100).get(incidentId)).toMatchObject({ source: 'operator', actor: 'mcp:desk' });
      expect(s.errors).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('a bad setting stops it at once with one line on stderr naming the variable', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [STDIO],
      env: { PATH: process.env.PATH ?? '', MCP_STDIO_ROLE: 'admin' },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    await expect(new Client({ name: 't', version: '1' }).connect(transport)).rejects.toThrow();
    await waitUntil(() => stderr.includes('\n'), { message: 'nothing on stderr' });
    expect(stderr).toMatch(/^fluxgate mcp \(stdio\): invalid MCP_STDIO_ROLE: /);
  });
});
