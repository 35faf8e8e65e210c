import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A backing service the launcher resolved: a URL, and the child process when it started one. */
export interface ResolvedService {
  url: string;
  child: ChildProcess | null;
  source: 'configured' | 'local' | 'embedded';
}

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

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * REDIS_URL if set; else 127.0.0.1:6379 if it answers; else redis-server from PATH on a private
 * port with AOF persistence under the state dir (incidents must survive restarts) and a
 * generated password; else a one-line error saying how to get Redis.
 *
 * The private server's configuration, password included, goes in on stdin (`redis-server -`):
 * on the command line `requirepass` would be readable by every user in `ps`.
 */
export async function resolveRedis(configured: string | undefined, stateDir: string, opts: { local?: { host: string; port: number } | null } = {}): Promise<ResolvedService> {
  if (configured) return { url: configured, child: null, source: 'configured' };
  const local = opts.local === undefined ? { host: '127.0.0.1', port: 6379 } : opts.local;
  if (local && (await redisAnswers(local.host, local.port))) return { url: `redis://${local.host}:${local.port}`, child: null, source: 'local' };
  const dir = join(stateDir, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const password = servicePassword();
  const child = spawn('redis-server', ['-'], { stdio: ['pipe', 'ignore', 'inherit'] });
  // redis.conf syntax: a double-quoted string takes JSON-like escapes (sdssplitargs).
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(
    [`bind 127.0.0.1`, `port ${port}`, `dir ${JSON.stringify(dir)}`, 'appendonly yes', 'save ""', 'protected-mode yes', `requirepass ${password}`].join('\n') + '\n',
  );
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) {
    throw new Error('Redis is not reachable: set REDIS_URL, start Redis on 127.0.0.1:6379, or install redis-server (Debian: apt-get install redis-server)');
  }
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers('127.0.0.1', port, 500, password))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `redis://:${password}@127.0.0.1:${port}`, child, source: 'embedded' };
}

/**
 * DATABASE_URL if set; otherwise embedded Postgres (PGlite over the wire protocol) in a child
 * process with its data under the state dir, behind a generated password (sent on its stdin).
 */
export async function resolvePostgres(configured: string | undefined, stateDir: string): Promise<ResolvedService> {
  if (configured) return { url: configured, child: null, source: 'configured' };
  const script = fileURLToPath(new URL('./embedded-postgres.js', import.meta.url));
  const password = servicePassword();
  const child = spawn(process.execPath, [script, join(stateDir, 'pg'), '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(`${password}\n`);
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('embedded Postgres did not start within 60 s')), 60_000);
    child.once('exit', (code) => reject(new Error(`embedded Postgres exited with code ${code}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { port: number }).port);
      } catch {
        reject(new Error(`embedded Postgres said something unexpected: ${line.slice(0, 200)}`));
      }
    });
  });
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, child, source: 'embedded' };
}
