import { z } from 'zod';
import { ipBlockEventSchema } from './events.js';
import { incidentIdSchema } from './incident.js';
import { channels, redisKeys } from './redis-keys.js';
import { asString, asStrings, parseJsonSafe, runSteps, type RedisLike } from './redis-client.js';

/**
 * IP blocks, written by the guard for credential abuse (and later by operators); the data plane
 * answers a blocked IP 403 before authentication, in the family's error shape. Same protocol as
 * the penalty box (penalty-protocol.ts): the record under redisKeys.ipBlock with PX is the truth,
 * redisKeys.ipBlockIndex only a hint, channels.ipBlocks tells replicas at once; set = index,
 * record, publish; lift = record, index, publish.
 */
export const DEFAULT_IP_BLOCK_SECONDS = 15 * 60;

export const ipBlockRecordSchema = z.object({
  /** Normalised as the data plane counts it (IPv4-mapped IPv6 as plain IPv4, lower case). */
  ip: z.string().min(1).max(64),
  expiresAt: z.number().int().positive(),
  reason: z.string().max(500),
  incidentId: incidentIdSchema.nullable(),
  setBy: z.enum(['guard', 'operator']),
  setAt: z.number().int().positive(),
});
export type IpBlockRecord = z.infer<typeof ipBlockRecordSchema>;

const event = (type: 'set' | 'lifted', ip: string, at: number): string => JSON.stringify(ipBlockEventSchema.parse({ type, ip, at }));

export async function setIpBlock(redis: RedisLike, record: IpBlockRecord, now: number = Date.now()): Promise<void> {
  const rec = ipBlockRecordSchema.parse(record);
  const ttl = rec.expiresAt - now;
  if (ttl <= 0) throw new RangeError(`IP block for ${rec.ip} expires in the past`);
  await runSteps(redis, [
    ['ZADD', redisKeys.ipBlockIndex(), rec.expiresAt, rec.ip],
    ['SET', redisKeys.ipBlock(rec.ip), JSON.stringify(rec), 'PX', ttl],
    ['ZREMRANGEBYSCORE', redisKeys.ipBlockIndex(), '-inf', now],
    ['PUBLISH', channels.ipBlocks, event('set', rec.ip, now)],
  ]);
}

export async function liftIpBlock(redis: RedisLike, ip: string, now: number = Date.now()): Promise<boolean> {
  const [deleted] = await runSteps(redis, [
    ['DEL', redisKeys.ipBlock(ip)],
    ['ZREM', redisKeys.ipBlockIndex(), ip],
    ['PUBLISH', channels.ipBlocks, event('lifted', ip, now)],
  ]);
  return deleted === 1;
}

export function parseIpBlock(text: string | null, now: number): IpBlockRecord | null {
  if (text === null) return null;
  const parsed = ipBlockRecordSchema.safeParse(parseJsonSafe(text));
  return parsed.success && parsed.data.expiresAt > now ? parsed.data : null;
}

export async function getIpBlock(redis: RedisLike, ip: string, now: number = Date.now()): Promise<IpBlockRecord | null> {
  return parseIpBlock(asString(await redis.call('GET', redisKeys.ipBlock(ip))), now);
}

export async function listIpBlocks(redis: RedisLike, now: number = Date.now()): Promise<IpBlockRecord[]> {
  const ips = asStrings(await redis.call('ZRANGEBYSCORE', redisKeys.ipBlockIndex(), `(${now}`, '+inf'));
  const texts = await Promise.all(ips.map(async (ip) => asString(await redis.call('GET', redisKeys.ipBlock(ip)))));
  return texts.flatMap((text, i) => {
    const rec = parseIpBlock(text, now);
    return rec && rec.ip === ips[i] ? [rec] : [];
  });
}
