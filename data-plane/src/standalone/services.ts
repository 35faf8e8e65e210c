import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lineMatching } from './lines.js';
import { describeExit, type Launch, type Unit } from './supervisor.js';

/**
 * A backing service as the supervisor found it: its URL, where it came from, and for an embedded
 * one the unit that runs it (started, and restarted after a crash, by the supervisor on the same
 * port with the same password, so the URL the planes were given stays right).
 */
export interface PlannedService {
  url: string;
  source: 'configured' | 'local' | 'embedded';
  /** Where an embedded service keeps its data. */
  dir: string | null;
  unit: Unit<void> | null;
}

/** The one-line hint when there is no Redis at all (DESIGN §2). */
export const REDIS_MISSING =
  'Redis is not reachable: set REDIS_URL, start Redis on 127.0.0.1:6379, or install redis-server (Debian: apt-get install redis-server)';

/**
 * Ask a Redis server for PONG without any client library (the launcher stays tiny), after AUTH
 * when a password is given (RESP: inline commands, one reply line each).
 */
export function redisAnswers(host: string, port: number, timeoutMs = 500, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let replies = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write(password === undefined ? 'PING\r\n' : `AUTH ${password}\r\nPING\r\n`));
    socket.on('data', (buf) => {
      replies += buf.toString('latin1');
      const lines = replies.split('\r\n');
      if (lines.length <= (password === undefined ? 1 : 2)) return;
      done(password === undefined ? lines[0] === '+PONG' : lines[0] === '+OK' && lines[1] === '+PONG');
    });
  });
}

/** A password for an embedded service: hex, so it needs no escaping in a URL or a config line. */
const servicePassword = (): string => randomBytes(24).toString('hex');

/** A TCP port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * REDIS_URL if set; else 127.0.0.1:6379 if it answers; else redis-server from PATH on a private
 * port with AOF persistence under the state dir (incidents must survive restarts) and a
 * generated password; when there is no redis-server either, its start fails with REDIS_MISSING.
 *
 * The private server's configuration, password included, goes in on stdin (`redis-server -`):
 * on the command line `requirepass` would be readable by every user in `ps`.
 */
export async function planRedis(
  configured: string | undefined,
  stateDir: string,
  opts: { local?: { host: string; port: number } | null; command?: string; startTimeoutMs?: number } = {},
): Promise<PlannedService> {
  if (configured) return { url: configured, source: 'configured', dir: null, unit: null };
  const local = opts.local === undefined ? { host: '127.0.0.1', port: 6379 } : opts.local;
  if (local && (await redisAnswers(local.host, local.port)))
    return { url: `redis://${local.host}:${local.port}`, source: 'local', dir: null, unit: null };
  const dir = join(stateDir, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const password = servicePassword();
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const unit: Unit<void> = {
    name: 'embedded Redis',
    role: 'service',
    launch(): Launch<void> {
      // detached: a terminal's Ctrl-C must not stop it before the planes have flushed into it.
      const child = spawn(opts.command ?? 'redis-server', ['-'], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
      // redis.conf syntax: a double-quoted string takes JSON-like escapes (sdssplitargs).
      child.stdin.on('error', () => undefined);
      child.stdin.end(
        [
          `bind 127.0.0.1`,
          `port ${port}`,
          `dir ${JSON.stringify(dir)}`,
          'appendonly yes',
          'save ""',
          'protected-mode yes',
          `requirepass ${password}`,
        ].join('\n') + '\n',
      );
      const ready = (async () => {
        const spawned = await new Promise<boolean>((resolve) => {
          child.once('error', () => resolve(false));
          child.once('spawn', () => resolve(true));
        });
        if (!spawned) throw new Error(REDIS_MISSING);
        const deadline = Date.now() + timeoutMs;
        while (!(await redisAnswers('127.0.0.1', port, 500, password))) {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`redis-server ${describeExit(child.exitCode, child.signalCode)} before it answered on 127.0.0.1:${port}`);
          if (Date.now() > deadline) throw new Error(`redis-server did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
          await sleep(100);
        }
      })();
      return { child, ready };
    },
  };
  return { url: `redis://:${password}@127.0.0.1:${port}`, source: 'embedded', dir, unit };
}

/**
 * DATABASE_URL if set; otherwise embedded Postgres (PGlite over the wire protocol) in a child
 * process with its data under the state dir, behind a generated password (sent on its stdin).
 * Its port is chosen here, so a restart after a crash comes back at the same URL. It refuses
 * connections beyond `maxConnections` (default 16): size it for every client's pool.
 */
export async function planPostgres(
  configured: string | undefined,
  stateDir: string,
  opts: { startTimeoutMs?: number; maxConnections?: number } = {},
): Promise<PlannedService> {
  if (configured) return { url: configured, source: 'configured', dir: null, unit: null };
  const maxConnections = opts.maxConnections ?? 16;
  const script = fileURLToPath(new URL('./embedded-postgres.js', import.meta.url));
  const dir = join(stateDir, 'pg');
  const password = servicePassword();
  const port = await freePort();
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const unit: Unit<void> = {
    name: 'embedded Postgres',
    role: 'service',
    launch(): Launch<void> {
      // The IPC channel is its lifeline: it stops itself when the supervisor is gone ('disconnect').
      const child = spawn(process.execPath, [script, dir, String(port), String(maxConnections)], {
        stdio: ['pipe', 'pipe', 'inherit', 'ipc'],
        detached: true,
      });
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(`${password}\n`);
      const exited = new Promise<never>((_, reject) =>
        child.once('exit', (code, signal) => reject(new Error(`embedded Postgres ${describeExit(code, signal)} before it was ready`))),
      );
      exited.catch(() => undefined);
      const announced = lineMatching(child.stdout!, () => true, timeoutMs, 'embedded Postgres').then((line) => {
        let said: unknown;
        try {
          said = (JSON.parse(line) as { port?: unknown }).port;
        } catch {
          said = undefined;
        }
        if (said !== port) throw new Error(`embedded Postgres said something unexpected: ${line.slice(0, 200)}`);
        // Nothing else is expected on its stdout; keep it flowing so a stray write never blocks it.
        child.stdout!.resume();
      });
      // Its output ends as it exits: say how it exited rather than that it went quiet.
      const told = announced.catch((err: unknown) => Promise.race([exited, sleep(2_000)]).then(() => Promise.reject(err)));
      return { child, ready: Promise.race([told, exited]) };
    },
  };
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, source: 'embedded', dir, unit };
}
