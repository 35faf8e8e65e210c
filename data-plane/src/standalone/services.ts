import { spawn, type ChildProcess } from 'node:child_process';
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

/** Ask a Redis server for PONG without any client library (the launcher stays tiny). */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (buf) => done(buf.toString('latin1').startsWith('+PONG')));
  });
}

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
 * port with AOF persistence under the state dir (incidents must survive restarts); else a
 * one-line error saying how to get Redis.
 */
export async function resolveRedis(configured: string | undefined, stateDir: string): Promise<ResolvedService> {
  if (configured) return { url: configured, child: null, source: 'configured' };
  if (await redisAnswers('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', child: null, source: 'local' };
  const dir = join(stateDir, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--save', '', '--protected-mode', 'yes'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) {
    throw new Error('Redis is not reachable: set REDIS_URL, start Redis on 127.0.0.1:6379, or install redis-server (Debian: apt-get install redis-server)');
  }
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers('127.0.0.1', port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `redis://127.0.0.1:${port}`, child, source: 'embedded' };
}

/**
 * DATABASE_URL if set; otherwise embedded Postgres (PGlite over the wire protocol) in a child
 * process with its data under the state dir.
 */
export async function resolvePostgres(configured: string | undefined, stateDir: string): Promise<ResolvedService> {
  if (configured) return { url: configured, child: null, source: 'configured' };
  const script = fileURLToPath(new URL('./embedded-postgres.js', import.meta.url));
  const child = spawn(process.execPath, [script, join(stateDir, 'pg'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, child, source: 'embedded' };
}
