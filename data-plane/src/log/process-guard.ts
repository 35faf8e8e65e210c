import type { Logger } from './logger.js';

/** Socket-level failures of a connection to Postgres, Redis or a peer: transient, never a bug of ours. */
const TRANSIENT = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

export function isTransientSocketError(err: unknown): boolean {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && TRANSIENT.has(code);
}

/**
 * A database killed mid-connection can leave a driver's internal promise rejected with the raw
 * socket error and no handler (seen here: the embedded Postgres SIGKILLed under the supervisor
 * took the control plane down with `read ECONNRESET` from TCP.onStreamRead). Node's default for an
 * unhandled rejection is to exit; for a transient socket error that turns one dropped connection
 * into a restart of the whole process, while the clients reconnect by themselves anyway. So such
 * rejections are logged and survived; anything else is still fatal (logged, exit 1), because an
 * unknown rejection means our own state may be wrong.
 */
export function installProcessGuards(log: Logger): void {
  process.on('unhandledRejection', (reason) => {
    if (isTransientSocketError(reason)) {
      log.warn({ err: reason }, 'a connection failed with no one waiting on it; continuing (the client reconnects)');
      return;
    }
    log.fatal({ err: reason }, 'unhandled promise rejection');
    process.exit(1);
  });
}
