/**
 * `npm start` with no variables: the launcher finds Redis on 127.0.0.1:6379, starts the embedded
 * Postgres, runs the data plane, records the URLs for operator tools, and stops it all together.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, expect, it } from 'vitest';
import { startMockUpstream } from '../support/mock-upstream.js';
import { createTestDatabase, freePort, TEST_REDIS_URL, waitUntil } from '../support/services.js';

const LAUNCHER = fileURLToPath(new URL('../../dist/standalone/launcher.js', import.meta.url));
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

it('comes up ready with no database configured, takes a newcomer from sign-up to a completion, and stops every process on SIGTERM', async () => {
  const mock = await startMockUpstream();
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-launch-'));
  dirs.push(stateDir);
  const [publicPort, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [LAUNCHER], {
    env: { PATH: process.env.PATH ?? '', FLUXGATE_STATE_DIR: stateDir, PUBLIC_HOST: '127.0.0.1', PUBLIC_PORT: String(publicPort), ADMIN_PORT: String(adminPort), LOG_LEVEL: 'warn', DOWNSTREAM_AI_URLS: mock.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const body = await waitUntil(
      async () => {
        const res = await request(`https://127.0.0.1:${publicPort}/readyz`, { dispatcher }).catch(() => null);
        return res ? ((await res.body.json()) as { checks: { redis: boolean; postgres: boolean } }) : null;
      },
      { timeoutMs: 60_000, intervalMs: 250, message: 'the launched data plane never answered /readyz' },
    );
    expect(body.checks).toMatchObject({ redis: true, postgres: true });
    expect(output).toContain('fluxgate: redis local, postgres embedded');
    const runtime = JSON.parse(await readFile(join(stateDir, 'runtime.json'), 'utf8')) as { DATABASE_URL: string };
    // The embedded Postgres has a generated password, kept in this 0600 file for operator tools.
    expect(runtime.DATABASE_URL).toMatch(/^postgres:\/\/postgres:[0-9a-f]{48}@127\.0\.0\.1:\d+\/postgres$/);
    expect((await stat(join(stateDir, 'runtime.json'))).mode & 0o777).toBe(0o600);
    expect(existsSync(join(stateDir, 'tls', 'localhost.crt'))).toBe(true);

    // The README's newcomer path, on the embedded Postgres: register, log in, create a key, use it.
    const base = `https://127.0.0.1:${publicPort}`;
    const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const res = await request(`${base}${path}`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as Record<string, any> };
    };
    const account = { email: 'Newcomer@Example.com', password: 'a long enough passphrase 42' };
    expect((await post('/portal/register', account)).status).toBe(201);
    const login = await post('/portal/login', account);
    expect(login.status).toBe(200);
    const auth = { authorization: `Bearer ${login.json.token as string}` };
    const created = await post('/portal/keys', { name: 'first' }, auth);
    expect(created.status).toBe(201);
    expect(created.json.secret).toMatch(/^fgk_/);
    const chat = await post('/v1/chat/completions', { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${created.json.secret as string}` });
    expect(chat.status).toBe(200);
    expect(chat.json.object).toBe('chat.completion');
    expect(chat.headers['x-fluxgate-tier']).toBe('free');
    // The free tier's burst (10): what can be sent at once, which is what the header announces (issue 12).
    expect(chat.headers['x-ratelimit-limit-requests']).toBe('10');
  } finally {
    await mock.close();
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await dispatcher.close();
  }
  expect(existsSync(join(stateDir, 'runtime.json'))).toBe(false);
}, 90_000);

it('starts with REDIS_URL and DATABASE_URL both set on a fresh clone (no state directory yet)', async () => {
  const db = await createTestDatabase({ applySchema: false });
  const parent = await mkdtemp(join(tmpdir(), 'fg-launch-configured-'));
  dirs.push(parent);
  // Nothing embedded runs, so nothing else would create it: the launcher itself must.
  const stateDir = join(parent, 'fresh', '.fluxgate');
  const [publicPort, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [LAUNCHER], {
    env: {
      PATH: process.env.PATH ?? '',
      FLUXGATE_STATE_DIR: stateDir,
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: db.url,
      PUBLIC_HOST: '127.0.0.1',
      PUBLIC_PORT: String(publicPort),
      ADMIN_PORT: String(adminPort),
      LOG_LEVEL: 'warn',
      DOWNSTREAM_AI_URLS: 'http://127.0.0.1:9',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const ready = waitUntil(
      async () => {
        const res = await request(`https://127.0.0.1:${publicPort}/readyz`, { dispatcher }).catch(() => null);
        return res ? ((await res.body.json()) as { checks: { redis: boolean; postgres: boolean } }).checks : null;
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'the launched data plane never answered /readyz' },
    );
    const died = exited.then((code) => Promise.reject(new Error(`launcher exited with ${code}:\n${output}`)));
    const checks = await Promise.race([ready, died]);
    expect(checks).toMatchObject({ redis: true, postgres: true });
    expect(output).toContain('fluxgate: redis configured, postgres configured');
    expect(output).not.toContain('ENOENT');
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    const runtimeFile = join(stateDir, 'runtime.json');
    expect((await stat(runtimeFile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(runtimeFile, 'utf8'))).toEqual({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL });
  } finally {
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await dispatcher.close();
    await db.drop();
  }
  expect(existsSync(join(stateDir, 'runtime.json'))).toBe(false);
}, 60_000);
