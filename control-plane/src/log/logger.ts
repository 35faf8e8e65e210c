import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Credentials never reach a log line: these paths are redacted wherever a config or request is logged. */
export const REDACT_PATHS = [
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'config.ADMIN_TOKEN',
  'config.DATABASE_URL',
  'config.REDIS_URL',
  'token',
  'password',
  'key',
  'apiKey',
];

export function createLogger(opts: { level: string; name?: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      name: opts.name ?? 'control-plane',
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
