import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger.js';

export interface ChannelSubscription {
  close(): Promise<void>;
}

/**
 * Subscribes `subscriber` (a dedicated connection: a subscribed ioredis client can run nothing
 * else; it may be shared with other channels, each listener filters on its own) to one channel.
 * ioredis re-subscribes after a reconnect by itself, but messages published while it was down
 * are gone, so `onResync` runs after every reconnect — the same contract as auth/key-events.ts.
 */
export async function subscribeChannel(
  subscriber: Redis,
  channel: string,
  handlers: { onMessage: (message: string) => void; onResync: () => void; logger?: Logger | undefined },
): Promise<ChannelSubscription> {
  const onMessage = (ch: string, message: string): void => {
    if (ch !== channel) return;
    try {
      handlers.onMessage(message);
    } catch (err) {
      // A handler bug must not take down the subscriber every other channel shares.
      handlers.logger?.error({ err, channel }, 'pub/sub handler failed');
    }
  };
  let connectedBefore = subscriber.status === 'ready';
  const onReady = (): void => {
    if (connectedBefore) {
      handlers.logger?.info({ channel }, 'subscriber reconnected; resyncing');
      handlers.onResync();
    }
    connectedBefore = true;
  };
  subscriber.on('message', onMessage);
  subscriber.on('ready', onReady);
  await subscriber.subscribe(channel);
  return {
    async close() {
      subscriber.off('message', onMessage);
      subscriber.off('ready', onReady);
      if (subscriber.status === 'ready') await subscriber.unsubscribe(channel);
    },
  };
}

/** JSON.parse that answers undefined instead of throwing (messages come from other processes). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
