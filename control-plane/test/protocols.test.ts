import { channels, getIpBlock, ipBlockEventSchema, liftIpBlock, listIpBlocks, redisKeys, setIpBlock } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTestRedis, waitUntil, type TestRedis } from './support/services.js';

describe('IP-block protocol (contracts/src/ip-block.ts)', () => {
  let tr: TestRedis;
  beforeAll(async () => {
    tr = await connectTestRedis();
  });
  afterAll(async () => {
    await tr?.close();
  });

  it('sets, reads, lists and lifts a block, announcing both on channels.ipBlocks', async () => {
    const sub = await tr.connect();
    const heard: unknown[] = [];
    sub.on('message', (ch: string, m: string) => ch === channels.ipBlocks && heard.push(ipBlockEventSchema.parse(JSON.parse(m))));
    await sub.subscribe(channels.ipBlocks);
    const now = Date.now();
    const rec = {
      ip: '198.51.100.7',
      expiresAt: now + 60_000,
      reason: 'credential_stuffing (guard)',
      incidentId: null,
      setBy: 'guard' as const,
      setAt: now,
    };
    await setIpBlock(tr.redis, rec, now);
    expect(await getIpBlock(tr.redis, '198.51.100.7', now)).toEqual(rec);
    expect(await tr.redis.pttl(redisKeys.ipBlock('198.51.100.7'))).toBeGreaterThan(55_000);
    expect((await listIpBlocks(tr.redis, now)).map((r) => r.ip)).toContain('198.51.100.7');
    // Past its expiry it no longer counts, whatever Redis still holds.
    expect(await getIpBlock(tr.redis, '198.51.100.7', rec.expiresAt)).toBeNull();
    expect(await liftIpBlock(tr.redis, '198.51.100.7')).toBe(true);
    expect(await getIpBlock(tr.redis, '198.51.100.7')).toBeNull();
    await waitUntil(() => heard.filter((e) => (e as { ip: string }).ip === '198.51.100.7').length === 2, {
      message: 'set and lifted not both published',
    });
    await expect(setIpBlock(tr.redis, { ...rec, expiresAt: now - 1 }, now)).rejects.toThrow(/past/);
  });
});
