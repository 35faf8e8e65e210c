/**
 * The data plane booted inside the test process (src/boot.ts, the same boot main.ts runs) over
 * TLS on port 0, against a fresh Postgres database and the given Redis: the source under test,
 * never a possibly stale `dist/`. Same shape as support/gateway.ts's `Gateway` minus the child
 * process; its log lines are captured in memory. Tests about the process itself (signals,
 * crashes, RSS, launcher, per-process CPU) keep using startGateway.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { issueKey } from '../../src/auth/issue.js';
import { startDataPlane } from '../../src/boot.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { ADMIN_TOKEN, type Gateway } from './gateway.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from './services.js';

export interface InProcessGateway extends Omit<Gateway, 'child' | 'stop'> {
  /** Every log line so far (JSON, one per line), as `output()` of the spawned gateway gives stderr. */
  output: () => string;
  /** The log lines parsed. */
  logs: () => Array<Record<string, unknown>>;
  /** Requests in flight (the concurrency gate). */
  readonly open: number;
  /**
   * Still serving: /healthz answers 200. Where a spawned gateway's test asserts the process did
   * not exit, this asserts the same of the data plane in process (a crash of it would surface as
   * an uncaught error that fails the test run).
   */
  serving(): Promise<boolean>;
  /** The data plane's drain (what SIGTERM runs), then the test database and state directory. */
  stop(): Promise<void>;
}

export async function startInProcessGateway(opts: {
  upstreams: string;
  env?: Record<string, string>;
  redisUrl?: string;
  db?: TestDatabase;
}): Promise<InProcessGateway> {
  const db = opts.db ?? (await createTestDatabase());
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-inproc-'));
  const cleanup = async () => {
    if (!opts.db) await db.drop();
    await rm(stateDir, { recursive: true, force: true });
  };
  const lines: string[] = [];
  let dp;
  try {
    // The spawned gateway's environment (support/gateway.ts), through the same parser.
    const config = loadConfig({
      PUBLIC_HOST: '127.0.0.1',
      PUBLIC_PORT: '0',
      ADMIN_PORT: '0',
      ADMIN_TOKEN,
      DATABASE_URL: db.url,
      REDIS_URL: opts.redisUrl ?? TEST_REDIS_URL,
      DOWNSTREAM_AI_URLS: opts.upstreams,
      FLUXGATE_STATE_DIR: stateDir,
      LOG_LEVEL: 'warn',
      COUNTER_FLUSH_MS: '200',
      UPSTREAM_PROBE_INTERVAL_MS: '60000',
      // The spawned gateway's stop() kills after 8 s; a stream a test left open is cut at the same point.
      DRAIN_TIMEOUT_MS: '8000',
      ...opts.env,
    });
    const log = createLogger({
      level: config.LOG_LEVEL,
      name: 'data-plane',
      destination: { write: (line: string) => void lines.push(line) },
    });
    dp = await startDataPlane(config, log);
  } catch (err) {
    await cleanup();
    throw new Error(`in-process gateway did not start: ${err instanceof Error ? err.message : String(err)}\n${lines.join('')}`, {
      cause: err,
    });
  }
  const running = dp;
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false }, keepAliveTimeout: 1000 });
  return {
    url: `https://127.0.0.1:${running.publicPort}`,
    adminUrl: `${running.adminTls ? 'https' : 'http'}://127.0.0.1:${running.adminPort}`,
    publicPort: running.publicPort,
    replicaId: running.replicaId,
    db,
    output: () => lines.join(''),
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    get open() {
      return running.open;
    },
    dispatcher,
    async serving() {
      const res = await request(`https://127.0.0.1:${running.publicPort}/healthz`, { dispatcher });
      await res.body.dump();
      return res.statusCode === 200;
    },
    async issueKey(email = `user-${Math.random().toString(36).slice(2)}@example.com`, tier?: string) {
      const issued = await issueKey(db.sql, tier ? { email, tier } : { email });
      return { secret: issued.secret, id: issued.key.id };
    },
    async stop() {
      await dispatcher.close().catch(() => undefined);
      await running.stop('test');
      await cleanup();
    },
  };
}
