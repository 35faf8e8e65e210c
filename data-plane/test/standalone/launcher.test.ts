/**
 * `npm start`: one supervisor runs the data plane and the control plane as separate processes
 * (and the embedded Postgres when DATABASE_URL is unset), prints once where everything is,
 * restarts a child that dies, and drains on SIGTERM. Every control plane here gets a private
 * redis-server through REDIS_URL: its guard must never act on the machine's shared Redis. These
 * runs pin DATA_PLANE_WORKERS=1 (they count one data-plane pid), so any core count behaves the
 * same; workers.test.ts runs several.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMcpHttp } from '../../../control-plane/test/support/mcp-http.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { createTestDatabase, freePort, spawnRedisServer, waitUntil, type SpawnedRedis } from '../support/services.js';
import { environOf, LAUNCHER, processesOf, startStack, type StackProcess } from './stack-process.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
afterAll(() => dispatcher.close());

const BANNER_TITLE = 'Fluxgate is running';
const PG_PASSWORD = 'p@ss:w/o%rd#?x';
const count = (text: string, s: string): number => text.split(s).length - 1;

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(url, { dispatcher });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as Record<string, unknown> };
}

describe('npm start with REDIS_URL set and no DATABASE_URL', () => {
  let redis: SpawnedRedis;
  let mock: MockUpstream;
  let stack: StackProcess;
  let stateDir: string;
  let ports: { publicPort: number; adminPort: number; controlPort: number };
  let base: string;
  let controlBase: string;
  let apiKey: string;

  beforeAll(async () => {
    redis = await spawnRedisServer();
    mock = await startMockUpstream();
    stateDir = await mkdtemp(join(tmpdir(), 'fg-launch-'));
    dirs.push(stateDir);
    ports = { publicPort: await freePort(), adminPort: await freePort(), controlPort: await freePort() };
    base = `https://127.0.0.1:${ports.publicPort}`;
    controlBase = `http://127.0.0.1:${ports.controlPort}`;
    stack = startStack({
      FLUXGATE_STATE_DIR: stateDir,
      DATA_PLANE_WORKERS: '1',
      REDIS_URL: redis.url,
      PUBLIC_HOST: '127.0.0.1',
      PUBLIC_PORT: String(ports.publicPort),
      ADMIN_PORT: String(ports.adminPort),
      CONTROL_PLANE_PORT: String(ports.controlPort),
      DOWNSTREAM_AI_URLS: mock.url,
      // No Ollama here: summaries fall back to templates without waiting on a real one.
      OLLAMA_HOST: 'http://127.0.0.1:9',
      LOG_LEVEL: 'warn',
      // The drain must end because the stream did, never because this ran out.
      DRAIN_TIMEOUT_MS: '60000',
    });
    await stack.waitFor(new RegExp(BANNER_TITLE));
  }, 120_000);

  afterAll(async () => {
    if (stack.child.exitCode === null && stack.child.signalCode === null) {
      stack.child.kill('SIGTERM');
      await stack.exited;
    }
    await mock.close();
    await redis.kill();
  });

  it('brings up both planes, answering /healthz, and prints once, for a person, where everything is and no secret', async () => {
    expect((await getJson(`${base}/healthz`)).status).toBe(200);
    const control = await getJson(`${controlBase}/healthz`);
    expect(control.status).toBe(200);
    expect(control.body.status).toBe('ok');
    const ready = await getJson(`${base}/readyz`);
    expect(ready.body.checks).toMatchObject({ redis: { status: 'ok' }, postgres: { status: 'ok' }, upstreams: { status: 'ok' } });

    const out = stack.stdout();
    expect(count(out, BANNER_TITLE)).toBe(1);
    const banner = out.slice(out.indexOf(BANNER_TITLE));
    expect(banner).toContain(`${base}/`);
    expect(banner).toContain(`http://127.0.0.1:${ports.adminPort}`);
    expect(banner).toContain(`${controlBase}/mcp`);
    expect(banner).toContain(`${controlBase}/healthz`);
    expect(banner).toContain(join(stateDir, 'admin-token'));
    expect(banner).toContain(join(stateDir, 'mcp-token'));
    expect(banner).toContain(join(stateDir, 'tls', 'localhost.crt'));
    expect(banner).toContain(join(stateDir, 'runtime.json'));
    expect(banner).toContain(`${redis.url}  (from REDIS_URL)`);
    expect(banner).toMatch(/postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres {2}\(embedded PGlite, data under /);
    expect(banner).toContain(`answering: ${mock.url}/`);
    expect(banner).not.toContain('DOWNSTREAM_AI_URLS=');

    // Every secret the stack holds, and none of them in anything it printed.
    const runtime = JSON.parse(await readFile(join(stateDir, 'runtime.json'), 'utf8')) as { DATABASE_URL: string };
    expect(runtime.DATABASE_URL).toMatch(/^postgres:\/\/postgres:[0-9a-f]{48}@127\.0\.0\.1:\d+\/postgres$/);
    expect((await stat(join(stateDir, 'runtime.json'))).mode & 0o777).toBe(0o600);
    const mcpToken = (await readFile(join(stateDir, 'mcp-token'), 'utf8')).trim();
    expect(mcpToken.length).toBeGreaterThanOrEqual(32);
    expect((await stat(join(stateDir, 'mcp-token'))).mode & 0o777).toBe(0o600);
    const secrets = [
      new URL(runtime.DATABASE_URL).password,
      mcpToken,
      (await readFile(join(stateDir, 'admin-token'), 'utf8')).trim(),
      (await readFile(join(stateDir, 'jwt-secret'), 'utf8')).trim(),
    ];
    for (const s of secrets) expect(stack.output()).not.toContain(s);

    // The generated MCP token reaches the control plane, in its environment only.
    const cpPid = Number((await stack.waitFor(/control plane ready \(pid (\d+)\)/))[1]);
    const dpPid = Number((await stack.waitFor(/data plane ready \(pid (\d+)\)/))[1]);
    expect(await environOf(cpPid)).toContain(`MCP_TOKEN=${mcpToken}`);
    expect((await environOf(dpPid)).some((e) => e.startsWith('MCP_TOKEN='))).toBe(false);
    expect(control.body.holder).toContain(`:${cpPid}:`);
    expect(banner).toContain(`1 worker (pid ${dpPid}; DATA_PLANE_WORKERS sets how many)`);
  });

  it('answers an MCP client over HTTP with the generated token: tools/list, and a tool call reading Redis', async () => {
    const banner = stack.stdout();
    const mcpUrl = `${controlBase}/mcp`;
    expect(banner).toContain(mcpUrl);
    const token = (await readFile(join(stateDir, 'mcp-token'), 'utf8')).trim();
    // Without the token: refused before MCP starts.
    await expect(connectMcpHttp(mcpUrl, null)).rejects.toThrow(/401|nauthori/);
    const client = await connectMcpHttp(mcpUrl, token);
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['get_gateway_metrics', 'list_incidents', 'list_penalty_box', 'explain_key']));
      const penalties = await client.callTool({ name: 'list_penalty_box', arguments: {} });
      expect(penalties.isError).not.toBe(true);
      expect(penalties.structuredContent).toBeDefined();
    } finally {
      await client.close();
    }
  });

  it('takes a newcomer from sign-up to a completion on the embedded Postgres', async () => {
    const account = { email: 'Newcomer@Example.com', password: 'a long enough passphrase 42' };
    expect((await post(base, '/portal/register', account)).status).toBe(201);
    const login = await post(base, '/portal/login', account);
    expect(login.status).toBe(200);
    const created = await post(base, '/portal/keys', { name: 'first' }, { authorization: `Bearer ${login.json.token as string}` });
    expect(created.status).toBe(201);
    apiKey = created.json.secret as string;
    expect(apiKey).toMatch(/^fgk_/);
    const chat = await post(
      base,
      '/v1/chat/completions',
      { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] },
      { authorization: `Bearer ${apiKey}` },
    );
    expect(chat.status).toBe(200);
    expect(chat.json.object).toBe('chat.completion');
    expect(chat.headers['x-fluxgate-tier']).toBe('free');
    // The free tier's burst (10): what can be sent at once, which is what the header announces (issue 12).
    expect(chat.headers['x-ratelimit-limit-requests']).toBe('10');
  });

  it('restarts the control plane after kill -9, healthy again under a new pid', async () => {
    const pid = Number((await stack.waitFor(/control plane ready \(pid (\d+)\)/))[1]);
    process.kill(pid, 'SIGKILL');
    await stack.waitFor(new RegExp(`control plane \\(pid ${pid}\\) was killed by SIGKILL; restarting it in 1 s`));
    const back = Number((await stack.waitFor(/control plane is back \(pid (\d+)\)/))[1]);
    expect(back).not.toBe(pid);
    const control = await getJson(`${controlBase}/healthz`);
    expect(control.status).toBe(200);
    expect(control.body.holder).toContain(`:${back}:`);
    expect(count(stack.stdout(), BANNER_TITLE)).toBe(1);
  });

  it('restarts the data plane after kill -9, serving again', async () => {
    const pid = Number((await stack.waitFor(/data plane ready \(pid (\d+)\)/))[1]);
    process.kill(pid, 'SIGKILL');
    await stack.waitFor(new RegExp(`data plane \\(pid ${pid}\\) was killed by SIGKILL; restarting it in 1 s`));
    const back = Number((await stack.waitFor(/data plane is back \(pid (\d+)\)/))[1]);
    expect(back).not.toBe(pid);
    expect((await getJson(`${base}/healthz`)).status).toBe(200);
    // A fresh process: the key is looked up in the embedded Postgres again.
    const chat = await post(
      base,
      '/v1/chat/completions',
      { model: 'mock-model', messages: [{ role: 'user', content: 'again' }] },
      { authorization: `Bearer ${apiKey}` },
    );
    expect(chat.status).toBe(200);
  });

  it('restarts the embedded Postgres after kill -9 at the same URL, with its data, and the data plane uses it again', async () => {
    const cmdline = async (pid: number) => (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const pgPids = async () => {
      const found: number[] = [];
      for (const pid of await processesOf(stateDir))
        if ((await cmdline(pid)).some((a) => a.endsWith('/embedded-postgres.js'))) found.push(pid);
      return found;
    };
    const [pid] = await pgPids();
    expect(pid).toBeDefined();
    const url = JSON.parse(await readFile(join(stateDir, 'runtime.json'), 'utf8')).DATABASE_URL as string;
    process.kill(pid!, 'SIGKILL');
    await stack.waitFor(new RegExp(`embedded Postgres \\(pid ${pid}\\) was killed by SIGKILL; restarting it in 1 s`));
    const back = Number((await stack.waitFor(/embedded Postgres is back \(pid (\d+)\)/))[1]);
    expect(await pgPids()).toEqual([back]);
    expect(JSON.parse(await readFile(join(stateDir, 'runtime.json'), 'utf8')).DATABASE_URL).toBe(url);
    await waitUntil(
      async () => ((await getJson(`${base}/readyz`)).body.checks as { postgres?: { status: string } }).postgres?.status === 'ok',
      {
        timeoutMs: 30_000,
        intervalMs: 250,
        message: 'the data plane never reached Postgres again',
      },
    );
    // Neither plane fell over with it: their connections failed and reconnected (a control plane
    // once exited here on an unhandled `read ECONNRESET`; log/process-guard.ts).
    expect(stack.output()).not.toMatch(/(data|control) plane \(pid \d+\) exited/);
    // The account registered before the crash, read from the restarted database.
    const login = await post(base, '/portal/login', { email: 'newcomer@example.com', password: 'a long enough passphrase 42' });
    expect(login.status).toBe(200);
  });

  it('on SIGTERM lets an in-flight stream finish, then exits 0 with no process of the stack left', async () => {
    const running = await processesOf(stateDir);
    // The planes' current pids: the last restart of each the supervisor reported.
    const latest = (re: RegExp) => Number([...stack.output().matchAll(re)].at(-1)?.[1]);
    await stack.waitFor(/data plane is back \(pid (\d+)\)/);
    await stack.waitFor(/control plane is back \(pid (\d+)\)/);
    const dpPid = latest(/data plane is back \(pid (\d+)\)/g);
    const cpPid = latest(/control plane is back \(pid (\d+)\)/g);
    // The supervisor, both planes and the embedded Postgres.
    expect(running, stack.output()).toEqual(expect.arrayContaining([stack.child.pid!, dpPid, cpPid]));
    expect(running.length).toBeGreaterThanOrEqual(4);

    mock.set({ events: 20, eventDelayMs: 100 });
    const res = await request(`${base}/v1/chat/completions`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'a slow one' }] }),
    });
    expect(res.statusCode).toBe(200);
    let body = '';
    let signalled = false;
    for await (const chunk of res.body) {
      body += (chunk as Buffer).toString();
      if (!signalled && body.includes('data: {')) {
        signalled = true;
        stack.child.kill('SIGTERM');
      }
    }
    expect(signalled).toBe(true);
    // Every event and the terminator, though the stop began after the first one.
    expect(body.match(/^data: \{/gm)?.length).toBeGreaterThanOrEqual(20);
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);

    expect(await stack.exited).toBe(0);
    expect(stack.stdout()).toContain('fluxgate: SIGTERM: stopping');
    expect(stack.stdout()).toContain('fluxgate: stopped');
    expect(await processesOf(stateDir)).toEqual([]);
    expect(existsSync(join(stateDir, 'runtime.json'))).toBe(false);
  });
});

it('starts with REDIS_URL and DATABASE_URL both set on a fresh clone, names configured tokens, and says how to point DOWNSTREAM_AI_URLS at a model server', async () => {
  const redis = await spawnRedisServer();
  const db = await createTestDatabase({ applySchema: false });
  const parent = await mkdtemp(join(tmpdir(), 'fg-launch-configured-'));
  dirs.push(parent);
  // Nothing embedded runs, so nothing else would create it: the launcher itself must.
  const stateDir = join(parent, 'fresh', '.fluxgate');
  const mcpToken = randomBytes(32).toString('base64url');
  const adminToken = randomBytes(24).toString('hex');
  const [publicPort, adminPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  const stack = startStack({
    FLUXGATE_STATE_DIR: stateDir,
    DATA_PLANE_WORKERS: '1',
    REDIS_URL: redis.url,
    DATABASE_URL: db.url,
    // The password on its own, as compose passes it: npm start encodes it into the URL it hands
    // the planes (the test Postgres trusts local users, so any password is accepted).
    PGPASSWORD: PG_PASSWORD,
    MCP_TOKEN: mcpToken,
    ADMIN_TOKEN: adminToken,
    PUBLIC_HOST: '127.0.0.1',
    PUBLIC_PORT: String(publicPort),
    ADMIN_PORT: String(adminPort),
    CONTROL_PLANE_PORT: String(controlPort),
    OLLAMA_HOST: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
    DOWNSTREAM_AI_URLS: 'http://127.0.0.1:9',
  });
  try {
    await stack.waitFor(new RegExp(BANNER_TITLE), { timeoutMs: 60_000 });
    const ready = await getJson(`https://127.0.0.1:${publicPort}/readyz`);
    expect(ready.body.checks).toMatchObject({ redis: { status: 'ok' }, postgres: { status: 'ok' } });
    expect((await getJson(`http://127.0.0.1:${controlPort}/healthz`)).status).toBe(200);
    const out = stack.stdout();
    expect(out).toContain(`${redis.url}  (from REDIS_URL)`);
    expect(out).toContain('(from DATABASE_URL)');
    expect(out).toContain('Admin token    the ADMIN_TOKEN variable you set');
    expect(out).toContain('MCP token      the MCP_TOKEN variable you set');
    expect(out).toContain('none answers at http://127.0.0.1:9/');
    expect(out).toMatch(/^ +DOWNSTREAM_AI_URLS=http:\/\/\S+ npm start$/m);
    for (const s of [mcpToken, adminToken, PG_PASSWORD, encodeURIComponent(PG_PASSWORD)]) expect(stack.output()).not.toContain(s);
    // The operator's MCP token is the control plane's alone.
    const cpPid = Number((await stack.waitFor(/control plane ready \(pid (\d+)\)/))[1]);
    const dpPid = Number((await stack.waitFor(/data plane ready \(pid (\d+)\)/))[1]);
    expect(await environOf(cpPid)).toContain(`MCP_TOKEN=${mcpToken}`);
    expect((await environOf(dpPid)).some((e) => e.startsWith('MCP_TOKEN='))).toBe(false);
    expect(stack.output()).not.toContain('ENOENT');
    expect(existsSync(join(stateDir, 'mcp-token'))).toBe(false);
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    const runtimeFile = join(stateDir, 'runtime.json');
    expect((await stat(runtimeFile)).mode & 0o777).toBe(0o600);
    const runtime = JSON.parse(await readFile(runtimeFile, 'utf8')) as { DATABASE_URL: string; REDIS_URL: string };
    expect(runtime.REDIS_URL).toBe(redis.url);
    const withPassword = new URL(db.url);
    withPassword.password = encodeURIComponent(PG_PASSWORD);
    expect(runtime.DATABASE_URL).toBe(withPassword.toString());
    expect(decodeURIComponent(new URL(runtime.DATABASE_URL).password)).toBe(PG_PASSWORD);
    // The planes get the resolved URL only, never the part beside it (they would see two passwords).
    for (const pid of [cpPid, dpPid]) {
      const environ = await environOf(pid);
      expect(environ).toContain(`DATABASE_URL=${runtime.DATABASE_URL}`);
      expect(environ.some((e) => e.startsWith('PGPASSWORD='))).toBe(false);
    }
  } finally {
    // A closed terminal (SIGHUP) stops it like Ctrl-C: the children, in sessions of their own, never get it.
    stack.child.kill('SIGHUP');
    expect(await stack.exited).toBe(0);
    await db.drop();
    await redis.kill();
  }
  expect(stack.stdout()).toContain('fluxgate: SIGHUP: stopping');
  expect(existsSync(join(stateDir, 'runtime.json'))).toBe(false);
  expect(await processesOf(stateDir)).toEqual([]);
}, 90_000);

it('when the supervisor itself is killed (-9), the planes and the embedded Postgres stop on their own instead of running on unsupervised', async () => {
  const redis = await spawnRedisServer();
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-launch-orphan-'));
  dirs.push(stateDir);
  const controlPort = await freePort();
  const stack = startStack({
    FLUXGATE_STATE_DIR: stateDir,
    DATA_PLANE_WORKERS: '1',
    REDIS_URL: redis.url,
    PUBLIC_HOST: '127.0.0.1',
    PUBLIC_PORT: String(await freePort()),
    ADMIN_PORT: String(await freePort()),
    CONTROL_PLANE_PORT: String(controlPort),
    OLLAMA_HOST: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
    DOWNSTREAM_AI_URLS: 'http://127.0.0.1:9',
  });
  try {
    await stack.waitFor(new RegExp(BANNER_TITLE));
    const running = await processesOf(stateDir);
    // The supervisor, both planes, the embedded Postgres.
    expect(running.length).toBe(4);
    stack.child.kill('SIGKILL');
    await stack.exited;
    await waitUntil(async () => (await processesOf(stateDir)).length === 0, {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: 'children of a killed supervisor kept running',
    });
  } finally {
    for (const pid of await processesOf(stateDir)) process.kill(pid, 'SIGKILL');
    await redis.kill();
  }
}, 90_000);

it('gives up at once, exit 1 and nothing left running, when a plane cannot start (its port is taken)', async () => {
  const redis = await spawnRedisServer();
  const db = await createTestDatabase({ applySchema: false });
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-launch-fail-'));
  dirs.push(stateDir);
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const publicPort = (taken.address() as { port: number }).port;
  const stack = startStack({
    FLUXGATE_STATE_DIR: stateDir,
    DATA_PLANE_WORKERS: '1',
    REDIS_URL: redis.url,
    DATABASE_URL: db.url,
    PUBLIC_HOST: '127.0.0.1',
    PUBLIC_PORT: String(publicPort),
    ADMIN_PORT: String(await freePort()),
    CONTROL_PLANE_PORT: String(await freePort()),
    OLLAMA_HOST: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
    DOWNSTREAM_AI_URLS: 'http://127.0.0.1:9',
  });
  try {
    expect(await stack.exited).toBe(1);
    expect(stack.output()).toMatch(/fluxgate: data plane exited with code \d+ before it was ready/);
    expect(stack.output()).not.toContain('restarting');
    expect(stack.output()).not.toContain(BANNER_TITLE);
    expect(await processesOf(stateDir)).toEqual([]);
  } finally {
    taken.close();
    await db.drop();
    await redis.kill();
  }
}, 90_000);

it('refuses a bad variable before starting anything, naming it and not its value', async () => {
  const parent = await mkdtemp(join(tmpdir(), 'fg-launch-bad-'));
  dirs.push(parent);
  const stateDir = join(parent, '.fluxgate');
  const stack = startStack({
    FLUXGATE_STATE_DIR: stateDir,
    PUBLIC_PORT: '70000',
    SUPERVISOR_RESTART_DELAY_MS: 'soon',
    DATA_PLANE_WORKERS: 'many',
  });
  expect(await stack.exited).toBe(2);
  expect(stack.output()).toMatch(/^fluxgate: invalid PUBLIC_PORT: /m);
  expect(stack.output()).toMatch(/^fluxgate: invalid SUPERVISOR_RESTART_DELAY_MS: /m);
  expect(stack.output()).toMatch(/^fluxgate: invalid DATA_PLANE_WORKERS: /m);
  expect(stack.output()).not.toContain('70000');
  expect(existsSync(stateDir)).toBe(false);
});

it('is what `npm start` runs after building, and the script hands SIGTERM to it (npm signals the shell it started)', async () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [build, run, ...rest] = pkg.scripts['start']!.split(' && ');
  expect(build).toBe('npm run build');
  expect(rest).toEqual([]);
  expect(join(root, run!.replace(/^(exec )?node /, ''))).toBe(LAUNCHER);

  // npm runs a script as `sh -c '<script>'` and forwards SIGTERM to that shell only. A shell
  // still waiting on node would die of it and leave the whole stack running without a supervisor
  // signal: the script must exec node (the build step is left out: npm test has built it).
  const redis = await spawnRedisServer();
  const db = await createTestDatabase({ applySchema: false });
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-launch-npm-'));
  dirs.push(stateDir);
  const stack = startStack(
    {
      FLUXGATE_STATE_DIR: stateDir,
      DATA_PLANE_WORKERS: '1',
      REDIS_URL: redis.url,
      DATABASE_URL: db.url,
      PUBLIC_HOST: '127.0.0.1',
      PUBLIC_PORT: String(await freePort()),
      ADMIN_PORT: String(await freePort()),
      CONTROL_PLANE_PORT: String(await freePort()),
      OLLAMA_HOST: 'http://127.0.0.1:9',
      LOG_LEVEL: 'warn',
      DOWNSTREAM_AI_URLS: 'http://127.0.0.1:9',
    },
    { shell: run!, cwd: root },
  );
  try {
    await stack.waitFor(new RegExp(BANNER_TITLE), { timeoutMs: 60_000 });
    expect((await processesOf(stateDir)).length).toBeGreaterThanOrEqual(3);
    stack.child.kill('SIGTERM');
    expect(await stack.exited).toBe(0);
    expect(stack.stdout()).toContain('fluxgate: stopped');
    expect(await processesOf(stateDir)).toEqual([]);
  } finally {
    for (const pid of await processesOf(stateDir)) process.kill(pid, 'SIGKILL');
    await db.drop();
    await redis.kill();
  }
}, 90_000);
