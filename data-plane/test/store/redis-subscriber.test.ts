/**
 * The pub/sub connection main.ts builds (store/redis-subscriber.ts), against a real Redis. The
 * start-up failure of issue 12 item 10 ("Connection in subscriber mode") needs a SUBSCRIBE
 * issued while ioredis is still in its connection handshake; the 'connect' event is exactly
 * that moment, so subscribing there reproduces it every time instead of by chance.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { subscribeChannel } from '../../src/limits/subscription.js';
import { createSubscriber } from '../../src/store/redis-subscriber.js';
import { spawnRedisServer, TEST_REDIS_URL, waitUntil } from '../support/services.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const channel = () => `fgtest:sub:${randomBytes(6).toString('hex')}`;

/** A subscriber with every 'error' event and every (re)connect recorded. */
function watched(url: string) {
  const sub = createSubscriber(url);
  const errors: string[] = [];
  let connects = 0;
  sub.on('error', (err: Error) => errors.push(err.message));
  sub.on('connect', () => connects++);
  cleanups.push(() => sub.disconnect());
  return { sub, errors, connects: () => connects };
}

function publisher(url: string): Redis {
  const pub = new Redis(url, { maxRetriesPerRequest: 1 });
  pub.on('error', () => undefined);
  cleanups.push(() => pub.disconnect());
  return pub;
}

describe('the pub/sub connection', () => {
  it('subscribes during the connection handshake without failing it, and receives messages', async () => {
    const { sub, errors, connects } = watched(TEST_REDIS_URL);
    const ch = channel();
    const received: string[] = [];
    const subscribed = new Promise<void>((resolve, reject) => {
      sub.once('connect', () => {
        subscribeChannel(sub, ch, { onMessage: (m) => received.push(m), onResync: () => undefined }).then(() => resolve(), reject);
      });
    });
    const failed = new Promise<string>((resolve) => sub.once('error', (err: Error) => resolve(err.message)));
    await subscribed;
    const pub = publisher(TEST_REDIS_URL);
    const delivered = waitUntil(async () => (await pub.publish(ch, 'hello')) === 1 && received.includes('hello'), {
      message: 'message delivered',
    });
    // Whichever comes first: the message, or the connection's error (the bug's symptom).
    expect(await Promise.race([delivered.then(() => 'delivered'), failed])).toBe('delivered');

    expect(errors).toEqual([]);
    // One connection: no failed ready check tore it down and reconnected.
    expect(connects()).toBe(1);
    expect(sub.mode).toBe('subscriber');
  });

  it('after Redis restarts, re-subscribes by itself and reports the reconnect for a resync', async () => {
    const server = await spawnRedisServer();
    cleanups.push(() => server.kill());
    const { sub } = watched(server.url);
    const ch = channel();
    const received: string[] = [];
    let resyncs = 0;
    await subscribeChannel(sub, ch, { onMessage: (m) => received.push(m), onResync: () => resyncs++ });
    const pub = publisher(server.url);
    await waitUntil(async () => (await pub.publish(ch, 'before')) === 1, { message: 'subscribed before the restart' });

    await server.kill();
    await server.start();
    await waitUntil(() => resyncs === 1, { timeoutMs: 10_000, message: 'reconnect noticed' });
    await waitUntil(async () => (await pub.publish(ch, 'after').catch(() => 0)) === 1 && received.includes('after'), {
      timeoutMs: 10_000,
      message: 'message delivered after the restart',
    });
    expect(received).toContain('before');
  });
});
