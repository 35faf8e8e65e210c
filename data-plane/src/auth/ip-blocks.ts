import { channels, ipBlockEventSchema, listIpBlocks, getIpBlock, type IpBlockRecord } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { parseJson } from '../limits/subscription.js';
import { SyncedRecords, type SyncedRecordsStats } from '../limits/synced-records.js';
import type { Logger } from '../log/logger.js';
import { normaliseIp } from '../metrics/counters.js';

/**
 * Client addresses the control plane blocked for credential abuse (contracts ip-block.ts), held
 * in process like the penalty box (synced-records.ts: channels.ipBlocks, a periodic resync,
 * local expiry), so checking a request costs a map lookup and never a Redis round trip.
 *
 * The guard blocks an address as the counters spelled it (metrics/counters.ts normaliseIp: the
 * client address after TRUSTED_PROXIES, lower case, IPv4-mapped IPv6 as plain IPv4), so a
 * request's address is looked up spelled the same way.
 */
export interface IpBlocks {
  /** The live block of this client address, or null; counts the refusal when there is one. */
  check(clientAddress: string): IpBlockRecord | null;
  start(): Promise<void>;
  close(): Promise<void>;
  stats(): SyncedRecordsStats & { refused: number };
}

export interface IpBlocksOptions {
  redis: Redis;
  subscriber: Redis;
  resyncIntervalMs?: number;
  now?: () => number;
  logger?: Logger;
}

export function createIpBlocks(opts: IpBlocksOptions): IpBlocks {
  const records = new SyncedRecords<IpBlockRecord>({
    what: 'IP block',
    redis: opts.redis,
    subscriber: opts.subscriber,
    channel: channels.ipBlocks,
    parseEvent: (m) => {
      const e = ipBlockEventSchema.safeParse(parseJson(m));
      return e.success ? { id: e.data.ip, type: e.data.type } : null;
    },
    list: (redis, now) => listIpBlocks(redis, now),
    get: (redis, ip, now) => getIpBlock(redis, ip, now),
    idOf: (r) => r.ip,
    resyncIntervalMs: opts.resyncIntervalMs,
    now: opts.now,
    logger: opts.logger,
  });
  let refused = 0;
  return {
    check(clientAddress) {
      // The common case (no address blocked anywhere) costs one size check.
      if (records.size === 0) return null;
      const rec = records.get(normaliseIp(clientAddress));
      if (rec) refused++;
      return rec;
    },
    start: () => records.start(),
    close: () => records.close(),
    stats: () => ({ ...records.stats(), refused }),
  };
}
