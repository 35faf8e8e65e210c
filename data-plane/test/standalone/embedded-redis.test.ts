/**
 * Which Redis `npm start` uses: REDIS_URL, else one answering on 127.0.0.1:6379, else a private
 * redis-server. That one must not accept anyone who finds its port: a generated password, handed
 * over on stdin so no `ps` shows it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
// The built launcher module, as `npm start` runs it.
import { planRedis, REDIS_MISSING, redisAnswers } from '../../dist/standalone/services.js';
import { spawnRedisServer } from '../support/services.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

it('the private redis-server requires the generated password, listens on loopback, and keeps it out of argv', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-embedded-redis-'));
  dirs.push(stateDir);
  // As if nothing answered on 127.0.0.1:6379.
  const resolved = await planRedis(undefined, stateDir, { local: null });
  const { child, ready } = resolved.unit!.launch();
  try {
    await ready;
    expect(resolved.source).toBe('embedded');
    const url = new URL(resolved.url);
    expect(url.hostname).toBe('127.0.0.1');
    const port = Number(url.port);
    // Without the password: NOAUTH.
    expect(await redisAnswers('127.0.0.1', port)).toBe(false);
    const anonymous = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    anonymous.on('error', () => undefined);
    await expect(anonymous.connect().then(() => anonymous.get('x'))).rejects.toThrow(/NOAUTH/);
    anonymous.disconnect();
    expect(await redisAnswers('127.0.0.1', port, 500, 'wrong-password')).toBe(false);

    expect(decodeURIComponent(url.password)).toMatch(/^[0-9a-f]{48}$/);
    const owner = new Redis(resolved.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await owner.connect();
    expect(await owner.ping()).toBe('PONG');
    expect(await owner.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    expect(await owner.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    owner.disconnect();

    const cmdline = await readFile(`/proc/${child.pid}/cmdline`, 'utf8');
    expect(cmdline).not.toContain(url.password);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

it('uses a Redis that already answers on the local address and starts none of its own', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-local-redis-'));
  dirs.push(stateDir);
  const server = await spawnRedisServer();
  try {
    const planned = await planRedis(undefined, stateDir, { local: { host: '127.0.0.1', port: server.port } });
    expect(planned).toEqual({ url: `redis://127.0.0.1:${server.port}`, source: 'local', dir: null, unit: null });
  } finally {
    await server.kill();
  }
});

it('without a redis-server to run, its start fails with the one-line install hint', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-no-redis-'));
  dirs.push(stateDir);
  const planned = await planRedis(undefined, stateDir, { local: null, command: join(stateDir, 'no-such-redis-server') });
  await expect(planned.unit!.launch().ready).rejects.toThrow(REDIS_MISSING);
  expect(REDIS_MISSING).not.toContain('\n');
  expect(REDIS_MISSING).toMatch(/REDIS_URL.*apt-get install redis-server/);
});

it('comes back after a crash on the same port with the same password, so the planes keep their URL', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-redis-restart-'));
  dirs.push(stateDir);
  const planned = await planRedis(undefined, stateDir, { local: null });
  const first = planned.unit!.launch();
  await first.ready;
  const gone = new Promise((r) => first.child.once('exit', r));
  first.child.kill('SIGKILL');
  await gone;
  const url = new URL(planned.url);
  expect(await redisAnswers('127.0.0.1', Number(url.port), 500, url.password)).toBe(false);
  const second = planned.unit!.launch();
  try {
    await second.ready;
    expect(second.child.pid).not.toBe(first.child.pid);
    expect(await redisAnswers('127.0.0.1', Number(url.port), 500, url.password)).toBe(true);
  } finally {
    const exited = new Promise((r) => second.child.once('exit', r));
    second.child.kill('SIGTERM');
    await exited;
  }
});
