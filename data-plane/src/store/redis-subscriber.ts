import { Redis } from 'ioredis';

/**
 * The dedicated pub/sub connection (key events, tiers, penalties). A subscribed connection may
 * only run (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT and RESET, so this client must never
 * send anything else on its own.
 *
 * ioredis does, by default: once TCP connects it sends CLIENT SETINFO and then INFO (the ready
 * check). Since ioredis 5.8.2 a SUBSCRIBE issued while that handshake runs is written at once
 * (it is a `loading`-flagged command), so its reply can put the connection in subscriber mode
 * before INFO goes out; INFO is then refused ("Connection in subscriber mode, only subscriber
 * commands may be used"), the ready check fails as a fatal error, and the pending SUBSCRIBE
 * rejects with it: the data plane failed to start whenever anything awaited between creating
 * this client and subscribing (redis/ioredis#2037). Both handshake extras are turned off here:
 * the ready check only waits out a LOADING server, and SUBSCRIBE is allowed while loading.
 */
export function createSubscriber(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: false, disableClientInfo: true });
}
