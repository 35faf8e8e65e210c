/**
 * Starts the real data plane (`data-plane/dist/main.js`, built by `npm test`) as a child process
 * over TLS on port 0, against a fresh Postgres database and the given Redis, and gives tests an
 * undici client that trusts its self-signed certificate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { issueKey } from '../../src/auth/issue.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from './services.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
// Must pass the boot-time strength check (config/secret-strength.ts): no runs, no repeats.
export const ADMIN_TOKEN = 'test-admin-token-5f0c1e9a7b3d8264';

export interface Gateway {
  url: string;
  adminUrl: string;
  publicPort: number;
  /** The process's replica id (its DNS registration and its records in Redis). */
  replicaId: string;
  db: TestDatabase;
  child: ChildProcess;
  /** Everything the process wrote to stderr/stdout, for assertions on logs. */
  output: () => string;
  /** A dispatcher that accepts the self-signed certificate. */
  dispatcher: Agent;
  /** Issue an API key in this gateway's database. */
  issueKey(email?: string, tier?: string): Promise<{ secret: string; id: string }>;
  stop(): Promise<number | null>;
}

export async function startGateway(opts: {
  upstreams: string;
  env?: Record<string, string>;
  redisUrl?: string;
  db?: TestDatabase;
}): Promise<Gateway> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx tsc -b\` (npm test builds first)`);
  const db = opts.db ?? (await createTestDatabase());
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-gw-'));
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
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
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const lines = createInterface({ input: child.stdout! });
  const ports = await new Promise<{ publicPort: number; adminPort: number; adminTls?: boolean; replicaId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start within 20 s:\n${output}`)), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening:\n${output}`));
    });
    lines.on('line', (line) => {
      output += `${line}\n`;
      if (!line.startsWith('{"event":"listening"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as { publicPort: number; adminPort: number; adminTls?: boolean; replicaId: string });
    });
  });
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false }, keepAliveTimeout: 1000 });
  return {
    url: `https://127.0.0.1:${ports.publicPort}`,
    adminUrl: `${ports.adminTls ? 'https' : 'http'}://127.0.0.1:${ports.adminPort}`,
    publicPort: ports.publicPort,
    replicaId: ports.replicaId,
    db,
    child,
    output: () => output,
    dispatcher,
    async issueKey(email = `user-${Math.random().toString(36).slice(2)}@example.com`, tier?: string) {
      const issued = await issueKey(db.sql, tier ? { email, tier } : { email });
      return { secret: issued.secret, id: issued.key.id };
    },
    async stop() {
      await dispatcher.close().catch(() => undefined);
      const code =
        child.exitCode ??
        (await new Promise<number | null>((resolve) => {
          child.once('exit', (c) => resolve(c));
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 8_000).unref();
        }));
      if (!opts.db) await db.drop();
      await rm(stateDir, { recursive: true, force: true });
      return code;
    },
  };
}
