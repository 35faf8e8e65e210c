/** Builds the guard in-process against the test Redis (prefixed) and a fresh database, on a controllable clock. */
import { randomBytes } from 'node:crypto';
import { redisKeys } from '@fluxgate/contracts';
import { pino } from 'pino';
import { Ollama } from 'ollama';
import { createBulkReader } from '../../src/collect/bulk-reader.js';
import { configWith } from '../../src/config/load.js';
import { createGuard, type Guard } from '../../src/guard/guard.js';
import { createGuardMetrics, type GuardMetrics } from '../../src/metrics/registry.js';
import { timeoutFetch } from '../../src/summarise/ollama-client.js';
import type { Sql } from '../../src/store/db.js';
import type { TestRedis } from './services.js';

export interface TestGuard {
  guard: Guard;
  metrics: GuardMetrics;
  clock: { now: number };
  close(): Promise<void>;
}

export async function buildGuard(tr: TestRedis, sql: Sql | null, env: Record<string, string> = {}, redisUrl = tr.url): Promise<TestGuard> {
  const config = configWith({ POLL_INTERVAL: '1', OLLAMA_HOST: 'http://127.0.0.1:9', LLM_TIMEOUT_MS: '1000', ...env });
  // 5 s into a 10 s window, so the previous window is final.
  const clock = { now: Math.floor(Date.now() / 10_000) * 10_000 + 5_000 };
  const metrics = createGuardMetrics();
  const redis = await tr.connect();
  const reader = createBulkReader({ url: redisUrl, keyPrefix: tr.prefix, connectTimeoutMs: 1000, timeoutMs: 3000 });
  const ollama = new Ollama({ host: config.OLLAMA_HOST!, fetch: timeoutFetch(config.LLM_TIMEOUT_MS) });
  const guard = createGuard({ config, redis, reader, sql, ollama, metrics, log: pino({ level: 'silent' }), now: () => clock.now });
  return {
    guard,
    metrics,
    clock,
    async close() {
      await guard.stop();
    },
  };
}

export async function insertKey(
  sql: Sql,
  tier = 'free',
  email = `u-${randomBytes(4).toString('hex')}@example.com`,
): Promise<{ id: string; prefix: string; email: string }> {
  const [user] = await sql<{ id: string }[]>`INSERT INTO users (email, tier) VALUES (${email}, ${tier}) RETURNING id`;
  const prefix = `fgk_${randomBytes(4).toString('hex')}`;
  const [key] = await sql<
    { id: string }[]
  >`INSERT INTO api_keys (user_id, display_prefix, key_hash) VALUES (${user!.id}, ${prefix}, ${randomBytes(32).toString('hex')}) RETURNING id`;
  return { id: key!.id, prefix, email };
}

/** Writes a key's window as the data plane's counter writer does (contracts names). */
export async function seedKey(
  tr: TestRedis,
  keyId: string,
  atMs: number,
  fields: Record<string, number | string>,
  extra: { ips?: string[]; models?: string[]; prompts?: Record<string, number> } = {},
): Promise<void> {
  const b = Math.floor(atMs / 10_000);
  const p = tr.redis.pipeline();
  p.sadd(redisKeys.activeKeys('s10', b), keyId);
  p.hset(redisKeys.usage(keyId, 's10', b), fields);
  if (extra.ips) p.pfadd(redisKeys.usageIps(keyId, 's10', b), ...extra.ips);
  if (extra.models) p.pfadd(redisKeys.usageModels(keyId, 's10', b), ...extra.models);
  if (extra.prompts) p.hset(redisKeys.usagePrompts(keyId, 's10', b), extra.prompts);
  await p.exec();
}

export async function seedIp(tr: TestRedis, ip: string, atMs: number, fields: Record<string, number>): Promise<void> {
  const b = Math.floor(atMs / 10_000);
  await tr.redis
    .pipeline()
    .sadd(redisKeys.activeIps('s10', b), ip)
    .hset(redisKeys.ipUsage(ip, 's10', b), fields)
    .exec();
}

/** A key flooding huge prompts (free tier: far beyond 165k prompt tokens in 30 s). */
export const FLOOD = { req: 10, ptok: 300_000, ptok_max: 31_000, s2xx: 2, r429: 8 };
