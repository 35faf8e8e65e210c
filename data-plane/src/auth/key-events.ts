import { channels, keyEventSchema, type KeyEvent } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';
import type { KeyCache } from './key-cache.js';

export type KeyEventInput = Omit<KeyEvent, 'at'> & { at?: number };

/**
 * Tells every replica's key cache to drop a key. Call after the change is committed in
 * Postgres, so a replica that reloads on the event reads the new state. Returns the number of
 * subscribers that received it.
 */
export async function publishKeyEvent(redis: Redis, event: KeyEventInput): Promise<number> {
  const msg = keyEventSchema.parse({ ...event, at: event.at ?? Date.now() });
  return redis.publish(channels.keys, JSON.stringify(msg));
}

export interface KeyEventSubscription {
  close(): Promise<void>;
}

/**
 * Subscribes a dedicated connection (a subscribed ioredis client can run nothing else) to
 * channels.keys. ioredis re-subscribes after a reconnect by itself; events published while the
 * connection was down are lost, so `onResync` runs on every reconnect (the cache then refreshes
 * every key on next use).
 */
export async function subscribeKeyEvents(
  subscriber: Redis,
  handlers: { onEvent: (e: KeyEvent) => void; onResync?: () => void; logger?: Logger },
): Promise<KeyEventSubscription> {
  const { logger } = handlers;
  const onMessage = (channel: string, message: string): void => {
    if (channel !== channels.keys) return;
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      json = undefined;
    }
    const parsed = keyEventSchema.safeParse(json);
    if (!parsed.success) {
      logger?.warn({ channel, message: message.slice(0, 200) }, 'ignored malformed key event');
      return;
    }
    handlers.onEvent(parsed.data);
  };
  let connectedBefore = subscriber.status === 'ready';
  const onReady = (): void => {
    if (connectedBefore) {
      logger?.info('key event subscriber reconnected; expiring cached keys');
      handlers.onResync?.();
    }
    connectedBefore = true;
  };
  subscriber.on('message', onMessage);
  subscriber.on('ready', onReady);
  await subscriber.subscribe(channels.keys);
  return {
    async close() {
      subscriber.off('message', onMessage);
      subscriber.off('ready', onReady);
      if (subscriber.status === 'ready') await subscriber.unsubscribe(channels.keys);
    },
  };
}

/** Wires a key cache to channels.keys: events drop entries by hash and id. */
export function attachKeyCache(subscriber: Redis, cache: KeyCache, logger?: Logger): Promise<KeyEventSubscription> {
  return subscribeKeyEvents(subscriber, {
    onEvent: (e) => cache.invalidate({ keyId: e.keyId, keyHash: e.keyHash }),
    onResync: () => cache.expireAll(),
    logger,
  });
}
