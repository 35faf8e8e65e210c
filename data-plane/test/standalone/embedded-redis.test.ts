/**
 * When no Redis answers, `npm start` runs a private redis-server. It must not accept anyone who
 * finds its port: a generated password, handed over on stdin so no `ps` shows it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
// The built launcher module, as `npm start` runs it.
import { redisAnswers, resolveRedis } from '../../dist/standalone/services.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

it('the private redis-server requires the generated password, listens on loopback, and keeps it out of argv', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-embedded-redis-'));
  dirs.push(stateDir);
  // As if nothing answered on 127.0.0.1:6379.
  const resolved = await resolveRedis(undefined, stateDir, { local: null });
  const child = resolved.child!;
  try {
    expect(resolved.source).toBe('embedded');
    const url = new URL(resolved.url);
    expect(url.hostname).toBe('127.0.0.1');
    const port = Number(url.port);
    // Without the password: NOAUTH.
    expect(await redisAnswers('127.0.0.1', port)).toBe(false);
    const anonymous = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
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
