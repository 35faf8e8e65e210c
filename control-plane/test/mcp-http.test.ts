import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { channels, getPenalty, redisKeys } from '@fluxgate/contracts';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../data-plane/test/support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../../data-plane/test/support/mock-upstream.js';
import { ADMIN_TOKEN, startControlPlane, type ControlPlaneProcess } from './support/process.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from './support/services.js';

// The real control-plane process (MCP on its HTTP listener) driven by the SDK's own
// StreamableHTTPClientTransport, with a real data plane on the same private redis-server and
// Postgres database: what an operator's assistant does reaches the gateway.
const OPERATOR_TOKEN = randomBytes(32).toString('base64url');
const READER_TOKEN = randomBytes(32).toString('base64url');

let redisServer: SpawnedRedis;
let redis: Redis;
let upstream: MockUpstream;
let gw: Gateway;
let cp: ControlPlaneProcess;
const clients: Client[] = [];
/** Every tool call of the operator session, for the issue's transcript (MCP_TRANSCRIPT=<file>). */
const transcript: Array<{ tool: string; arguments: Record<string, unknown>; isError: boolean; answer: unknown }> = [];

beforeAll(async () => {
  redisServer = await spawnRedisServer();
  redis = new Redis(redisServer.url);
  upstream = await startMockUpstream({ models: ['mock-model'] });
  gw = await startGateway({ upstreams: upstream.url, redisUrl: redisServer.url });
  cp = await startControlPlane({
    REDIS_URL: redisServer.url,
    DATABASE_URL: gw.db.url,
    POLL_INTERVAL: '1',
    MCP_TOKENS: `alice:${OPERATOR_TOKEN},rita:reader:${READER_TOKEN}`,
  });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  if (process.env.MCP_TRANSCRIPT) writeFileSync(process.env.MCP_TRANSCRIPT, JSON.stringify(transcript, null, 2));
  redis?.disconnect();
  await cp?.stop();
  await gw?.stop();
  await upstream?.close();
  await redisServer?.kill();
});

async function mcpClient(token: string | null, headers: Record<string, string> = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), {
    requestInit: { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } },
  });
  const client = new Client({ name: 'fluxgate-e2e', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function call(client: Client, tool: string, args: Record<string, unknown>): Promise<CallToolResult> {
  const r = (await client.callTool({ name: tool, arguments: args })) as CallToolResult;
  transcript.push({
    tool,
    arguments: args,
    isError: r.isError === true,
    answer: r.isError ? (r.content as Array<{ text: string }>)[0]?.text : r.structuredContent,
  });
  return r;
}

const raw = (headers: Record<string, string>, method: 'POST' | 'GET' | 'OPTIONS' = 'POST') =>
  request(`${cp.url}/mcp`, {
    method,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: method === 'POST' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) : null,
  });

const tierSeen = async (secret: string): Promise<string> => {
  const res = await request(`${gw.url}/v1/models`, { dispatcher: gw.dispatcher, headers: { authorization: `Bearer ${secret}` } });
  await res.body.text();
  return String(res.headers['x-fluxgate-tier']);
};

describe('MCP over Streamable HTTP: who may connect', () => {
  it('no token, a wrong token: 401 with a Bearer challenge; the SDK client sees the status', async () => {
    await expect(mcpClient(null)).rejects.toMatchObject({ code: 401 });
    await expect(mcpClient(randomBytes(32).toString('base64url'))).rejects.toMatchObject({ code: 401 });
    const missing = await raw({});
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="fluxgate-mcp"');
    expect(await missing.body.json()).toMatchObject({
      jsonrpc: '2.0',
      error: { message: expect.stringMatching(/^Unauthorized: send Authorization: Bearer/) },
    });
    const wrong = await raw({ authorization: `Bearer ${OPERATOR_TOKEN}x` });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    await wrong.body.text();
    expect(cp.output()).not.toContain(OPERATOR_TOKEN);
  });

  it('a foreign Origin or Host: 403, even with a valid token (DNS-rebinding protection)', async () => {
    await expect(mcpClient(OPERATOR_TOKEN, { origin: 'https://evil.example' })).rejects.toMatchObject({ code: 403 });
    const origin = await raw({ authorization: `Bearer ${OPERATOR_TOKEN}`, origin: 'https://evil.example' });
    expect(origin.statusCode).toBe(403);
    expect(await origin.body.json()).toMatchObject({ error: { message: expect.stringMatching(/Origin is not allowed/) } });
    const host = await raw({ authorization: `Bearer ${OPERATOR_TOKEN}`, host: `evil.example:${cp.port}` });
    expect(host.statusCode).toBe(403);
    expect(await host.body.json()).toMatchObject({ error: { message: expect.stringMatching(/Host is not allowed/) } });
    // A loopback browser origin (MCP Inspector's direct mode) gets CORS, and still needs the token.
    const preflight = await raw({ origin: 'http://localhost:6274', 'access-control-request-method': 'POST' }, 'OPTIONS');
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('http://localhost:6274');
    expect(String(preflight.headers['access-control-allow-headers'])).toContain('authorization');
    await preflight.body.text();
    const inspector = await mcpClient(OPERATOR_TOKEN, { origin: 'http://localhost:6274' });
    expect((await inspector.listTools()).tools.length).toBeGreaterThan(10);
    const get = await raw({ authorization: `Bearer ${OPERATOR_TOKEN}` }, 'GET');
    expect(get.statusCode).toBe(405);
    await get.body.text();
  });

  it('a reader lists and calls no acting tool; an operator can', async () => {
    const reader = await mcpClient(READER_TOKEN);
    const readerTools = (await reader.listTools()).tools.map((t) => t.name);
    expect(readerTools).toContain('explain_key');
    for (const t of ['throttle_key', 'pardon_key', 'pardon_identity', 'add_allowlist_entry', 'set_detector_mode'])
      expect(readerTools).not.toContain(t);
    const refused = (await reader.callTool({
      name: 'pardon_key',
      arguments: { key: '00000000-0000-4000-8000-000000000000', reason: 'let me' },
    })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(await redis.xlen(redisKeys.incidents())).toBe(0);
    const operator = await mcpClient(OPERATOR_TOKEN);
    expect((await operator.listTools()).tools.map((t) => t.name)).toEqual(
      expect.arrayContaining(['throttle_key', 'pardon_key', 'set_detector_mode']),
    );
  });
});

describe('MCP over Streamable HTTP: acting on a real data plane', () => {
  it('throttle_key puts the key on its penalty tier on the gateway within a second; pardon_key restores it', async () => {
    const { secret, id } = await gw.issueKey(undefined, 'pro');
    expect(await tierSeen(secret)).toBe('pro');
    const listener = new Redis(redisServer.url);
    const events: Array<{ type: string; keyId: string }> = [];
    listener.on('message', (_c: string, m: string) => events.push(JSON.parse(m)));
    await listener.subscribe(channels.penalties);
    try {
      const op = await mcpClient(OPERATOR_TOKEN);
      const profile = await call(op, 'get_key_profile', { key: id });
      const prefix = (profile.structuredContent as { key: { prefix: string } }).key.prefix;
      expect(prefix).toMatch(/^fgk_/);

      const dry = await call(op, 'throttle_key', {
        key: prefix,
        level: 'penalty-1',
        duration: '15m',
        reason: 'scraping the catalogue',
        detector: 'repeated_prompt',
        dryRun: true,
      });
      expect(dry.structuredContent).toMatchObject({
        changed: false,
        before: { effectiveTier: 'pro' },
        after: { effectiveTier: 'penalty-1' },
      });
      expect((dry.structuredContent as { replicas: unknown[] }).replicas).toHaveLength(1);
      expect(await tierSeen(secret)).toBe('pro');

      const over = await call(op, 'throttle_key', {
        key: prefix,
        level: 'penalty-2',
        duration: '3d',
        reason: 'scraping the catalogue',
        detector: 'repeated_prompt',
      });
      expect(over.isError).toBe(true);

      const setAt = performance.now();
      const done = await call(op, 'throttle_key', {
        key: prefix,
        level: 'penalty-1',
        duration: '15m',
        reason: 'scraping the catalogue',
        detector: 'repeated_prompt',
      });
      expect(done.isError).toBeFalsy();
      await waitUntil(async () => (await tierSeen(secret)) === 'penalty-1', {
        timeoutMs: 1000,
        intervalMs: 20,
        message: 'the gateway did not apply the penalty within a second',
      });
      const appliedMs = Math.round(performance.now() - setAt);
      expect(events).toContainEqual(expect.objectContaining({ type: 'set', keyId: id }));
      const incidentId = (done.structuredContent as { incidentId: string }).incidentId;
      expect((await getPenalty(redis, id))?.incidentId).toBe(incidentId);

      const why = await call(op, 'explain_key', { key: prefix });
      expect((why.structuredContent as { explanation: string }).explanation).toMatch(
        /limited by penalty-1 instead of its own tier pro, set by an operator \(mcp:alice\).*Reason given: scraping the catalogue\./,
      );

      const pardonedAt = performance.now();
      const pardon = await call(op, 'pardon_key', { key: prefix, reason: 'customer confirmed a one-off migration' });
      expect(pardon.structuredContent).toMatchObject({ changed: true, after: { effectiveTier: 'pro' }, pardonedIncidentId: incidentId });
      await waitUntil(async () => (await tierSeen(secret)) === 'pro', {
        timeoutMs: 1000,
        intervalMs: 20,
        message: 'the gateway did not lift the penalty within a second',
      });
      const liftedMs = Math.round(performance.now() - pardonedAt);
      expect(events).toContainEqual(expect.objectContaining({ type: 'lifted', keyId: id }));

      const incidents = await call(op, 'list_incidents', { key: prefix });
      const list = (
        incidents.structuredContent as {
          incidents: Array<{ id: string; action: string; actor: string; status: string; relatesTo?: string }>;
        }
      ).incidents;
      // Two acts, two closed operator incidents; the pardon names the throttle it undid.
      expect(list.map((i) => [i.action, i.actor, i.status])).toEqual([
        ['pardon', 'mcp:alice', 'closed'],
        ['operator_throttle', 'mcp:alice', 'closed'],
      ]);
      expect(list[0]!.relatesTo).toBe(incidentId);
      const metrics = await request(`${cp.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const text = await metrics.body.text();
      expect(text).toMatch(/fluxgate_mcp_tool_calls_total\{tool="throttle_key",outcome="ok"\} 2/);
      expect(text).toMatch(/fluxgate_mcp_tool_calls_total\{tool="throttle_key",outcome="bad_arguments"\} 1/);
      for (const reason of ['missing_token', 'invalid_token', 'origin', 'host'])
        expect(text).toMatch(new RegExp(`fluxgate_mcp_http_refused_total\\{reason="${reason}"\\} [1-9]`));
      expect(text).not.toContain('alice');
      // For the report: how long the gateway took to answer with the new tier.
      transcript.push({
        tool: '(measured)',
        arguments: {},
        isError: false,
        answer: { penaltyAppliedMs: appliedMs, pardonAppliedMs: liftedMs },
      });
    } finally {
      listener.disconnect();
    }
  });
});

describe('boot checks', () => {
  it('a weak or malformed MCP token stops the control plane with one line naming the variable, never the token', async () => {
    const weak = 'changeme-changeme-changeme-changeme';
    await expect(startControlPlane({ REDIS_URL: redisServer.url, MCP_TOKENS: `bob:${weak}` })).rejects.toThrow(
      /invalid MCP_TOKENS: entry 1 \(bob\): the token is too weak/,
    );
    await expect(startControlPlane({ REDIS_URL: redisServer.url, MCP_TOKEN: 'short' })).rejects.toThrow(
      /invalid MCP_TOKEN: the token must be at least 32 characters/,
    );
    try {
      await startControlPlane({ REDIS_URL: redisServer.url, MCP_TOKENS: `bob:${weak}` });
    } catch (err) {
      expect((err as Error).message).not.toContain(weak);
    }
  });
});
