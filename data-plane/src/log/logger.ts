import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Structured JSON lines. Credentials never reach a log line: these paths are redacted wherever
 * a request's headers or a config object is logged.
 */
export const REDACT_PATHS = [
  'authorization',
  'cookie',
  'x-api-key',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'config.ADMIN_TOKEN',
  'config.JWT_SECRET',
  'config.DATABASE_URL',
  'config.REDIS_URL',
  'key',
  'apiKey',
  'token',
  'password',
];

export function createLogger(opts: { level: string; name: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
