/**
 * `npm start` with DATA_PLANE_WORKERS=2: two data-plane processes on one public port
 * (SO_REUSEPORT), each its own replica with its own admin port. New connections reach both; a
 * worker killed with -9 is restarted while the other keeps serving; SIGTERM drains a stream on
 * each worker to its end. The control plane gets a private redis-server (never the shared one).
 */
import { replicaMetricsSchema, redisKeys } from '@fluxgate/contracts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import {
  createTestDatabase,
  freeConsecutivePorts,
  freePort,
  spawnRedisServer,
  waitUntil,
  type SpawnedRedis,
  type TestDatabase,
} from '../support/services.js';
import { processesOf, startStack, type StackProcess } from './stack-process.js';

const ADMIN_TOKEN = 'workers-test-admin-token-3c9a0e71';
const BANNER_TITLE = 'Fluxgate is running';

let redis: SpawnedRedis;
let reader: Redis;
let db: TestDatabase;
let mock: MockUpstream;
let stack: StackProcess;
let stateDir: string;
let publicPort: number;
let adminPort: number;
let base: string;
let apiKey: string;
const tls = new Agent({ connect: { rejectUnauthorized: false } });

/** A chat completion on a connection of its own: the kernel picks a worker per connection. */
async function chat(content: string, opts: { stream?: boolean } = {}) {
  const agent = new Agent({ connect: { rejectUnauthorized: false }, pipelining: 0 });
  try {
    const res = await request(`${base}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-model', stream: opts.stream === true, messages: [{ role: 'user', content }] }),
    });
    return { status: res.statusCode, body: await res.body.text() };
  } finally {
    await agent.close();
  }
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, {
    method: 'POST',
    dispatcher: tls,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

async function admin(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

/** Requests each replica has recorded in Redis (fg:replica-metrics), by replica id. */
async function requestsByReplica(): Promise<Map<string, number>> {
  const raw = await reader.hgetall(redisKeys.replicaMetrics());
  return new Map(
    Object.values(raw)
      .map((v) => replicaMetricsSchema.parse(JSON.parse(v)))
      .map((m) => [m.replicaId, m.requests]),
  );
}

/** Worker i's pid as the supervisor last reported it (first start, or its latest restart). */
function workerPid(i: number): number {
  const re = new RegExp(`data plane worker ${i} (?:ready|is back) \\(pid (\\d+)\\)`, 'g');
  return Number([...stack.output().matchAll(re)].at(-1)?.[1]);
}

beforeAll(async () => {
  redis = await spawnRedisServer();
  reader = new Redis(redis.url);
  db = await createTestDatabase({ applySchema: false });
  mock = await startMockUpstream();
  stateDir = await mkdtemp(join(tmpdir(), 'fg-workers-'));
  publicPort = await freePort();
  // Worker i listens on ADMIN_PORT + i: both must be free, and stay out of the ephemeral range.
  adminPort = await freeConsecutivePorts(2);
  base = `https://127.0.0.1:${publicPort}`;
  stack = startStack({
    FLUXGATE_STATE_DIR: stateDir,
    DATA_PLANE_WORKERS: '2',
    REDIS_URL: redis.url,
    DATABASE_URL: db.url,
    ADMIN_TOKEN,
    PUBLIC_HOST: '127.0.0.1',
    PUBLIC_PORT: String(publicPort),
    ADMIN_PORT: String(adminPort),
    CONTROL_PLANE_PORT: String(await freePort()),
    DOWNSTREAM_AI_URLS: mock.url,
    OLLAMA_HOST: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
    // Replica records every 250 ms, so the test reads what each worker served without waiting.
    COUNTER_FLUSH_MS: '250',
    // The drain must end because the streams did, never because this ran out.
    DRAIN_TIMEOUT_MS: '60000',
  });
  await stack.waitFor(new RegExp(BANNER_TITLE), { timeoutMs: 120_000 });
  const account = { email: 'workers@example.com', password: 'a long enough passphrase 42' };
  expect((await post('/portal/register', account)).status).toBe(201);
  // The free tier's burst (10) would refuse this file's traffic: a tier no test here exhausts.
  await db.sql`UPDATE users SET tier = 'enterprise' WHERE email = ${account.email}`;
  const login = await post('/portal/login', account);
  const created = await post('/portal/keys', { name: 'workers' }, { authorization: `Bearer ${login.json.token as string}` });
  expect(created.status).toBe(201);
  apiKey = created.json.secret as string;
}, 150_000);

afterAll(async () => {
  if (stack && stack.child.exitCode === null && stack.child.signalCode === null) {
    stack.child.kill('SIGTERM');
    await stack.exited;
  }
  for (const pid of stateDir ? await processesOf(stateDir) : []) process.kill(pid, 'SIGKILL');
  reader?.disconnect();
  await tls.close();
  await mock?.close();
  await db?.drop();
  await redis?.kill();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('npm start with DATA_PLANE_WORKERS=2', () => {
  it('starts two workers on the one public port, each with an admin port of its own, and says so', async () => {
    const [pid0, pid1] = [workerPid(0), workerPid(1)];
    expect(pid0).toBeGreaterThan(0);
    expect(pid1).toBeGreaterThan(0);
    expect(pid1).not.toBe(pid0);
    const out = stack.stdout();
    expect(out).toContain(`2 workers sharing ${publicPort} (pids ${pid0}, ${pid1}; DATA_PLANE_WORKERS)`);
    expect(out).toContain(`one per worker, ports ${adminPort}–${adminPort + 1} (worker i on ADMIN_PORT + i): scrape each`);
    // Each admin port is one worker's: its snapshot names a replica of its own.
    const snaps = await Promise.all([admin(adminPort, '/admin/metrics'), admin(adminPort + 1, '/admin/metrics')]);
    expect(snaps.map((s) => s.status)).toEqual([200, 200]);
    const ids = snaps.map((s) => s.body.replicaId as string);
    expect(new Set(ids).size).toBe(2);
    // Prometheus scrapes each of them.
    for (const port of [adminPort, adminPort + 1]) {
      const res = await request(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toContain('fluxgate_http_requests_total');
    }
  });

  it('spreads new connections over both workers, each counted in Redis as a replica of its own', async () => {
    const before = await requestsByReplica();
    const n = 40;
    for (let i = 0; i < n; i++) {
      const r = await chat(`spread ${i}`);
      expect(r.status).toBe(200);
    }
    // Both replicas' records (one per worker) account for every request, and each served some.
    const served = await waitUntil(
      async () => {
        const now = await requestsByReplica();
        const delta = [...now].map(([id, count]) => [id, count - (before.get(id) ?? 0)] as const).filter(([, d]) => d > 0);
        return delta.reduce((sum, [, d]) => sum + d, 0) === n ? delta : null;
      },
      { timeoutMs: 15_000, intervalMs: 100, message: 'the replica records never added up to the requests sent' },
    );
    expect(served.length).toBe(2);
    for (const [, d] of served) expect(d).toBeGreaterThan(0);
  });

  it('restarts a worker killed with -9 while the other keeps serving every request, back under a new pid', async () => {
    const victim = workerPid(1);
    const survivor = workerPid(0);
    process.kill(victim, 'SIGKILL');
    await stack.waitFor(new RegExp(`data plane worker 1 \\(pid ${victim}\\) was killed by SIGKILL; restarting it in 1 s`));
    // From the moment it is gone until it is back, and a little after: every request answered.
    const statuses: number[] = [];
    let backAt = 0;
    while (backAt === 0 || statuses.length < backAt + 10) {
      statuses.push((await chat(`during restart ${statuses.length}`)).status);
      if (backAt === 0 && /data plane worker 1 is back \(pid \d+\)/.test(stack.output())) backAt = statuses.length;
      if (statuses.length > 5_000) throw new Error(`worker 1 never came back:\n${stack.output()}`);
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // The restart took a while (1 s backoff and a start): requests were answered before it was back.
    expect(backAt).toBeGreaterThanOrEqual(2);
    const back = workerPid(1);
    expect(back).not.toBe(victim);
    expect(workerPid(0)).toBe(survivor);
    // It came back on the same admin port, a new replica.
    expect((await admin(adminPort + 1, '/admin/metrics')).status).toBe(200);
    expect(stack.output()).not.toMatch(/data plane worker 0 \(pid \d+\) (was killed|exited)/);
  });

  it('on SIGTERM drains an in-flight stream on each worker to its end, then exits 0 with nothing left running', async () => {
    // 5 s each: long enough that none ends before the next has opened, even on a loaded machine.
    mock.set({ events: 50, eventDelayMs: 100 });
    // Open slow streams on new connections until each worker holds at least one.
    const streams: Promise<{ status: number; body: string }>[] = [];
    const open = async (port: number) => (await admin(port, '/admin/metrics')).body.openRequests as number;
    for (let i = 0; i < 12; i++) {
      streams.push(chat(`slow ${i}`, { stream: true }));
      const both = await waitUntil(async () => ((await open(adminPort)) + (await open(adminPort + 1)) >= streams.length ? true : null), {
        timeoutMs: 10_000,
        intervalMs: 50,
        message: 'a stream never opened',
      }).then(async () => (await open(adminPort)) > 0 && (await open(adminPort + 1)) > 0);
      if (both) break;
    }
    expect(await open(adminPort)).toBeGreaterThan(0);
    expect(await open(adminPort + 1)).toBeGreaterThan(0);
    stack.child.kill('SIGTERM');
    for (const s of await Promise.all(streams)) {
      expect(s.status).toBe(200);
      expect(s.body.match(/^data: \{/gm)?.length).toBeGreaterThanOrEqual(50);
      expect(s.body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    }
    expect(await stack.exited).toBe(0);
    expect(stack.stdout()).toContain('fluxgate: stopped');
    expect(await processesOf(stateDir)).toEqual([]);
  });
});

it('with PUBLIC_PORT=0 and ADMIN_PORT=0 names one port per listener before the start, so workers share the public one and a restarted worker gets its ports back at once', async () => {
  const redis0 = await spawnRedisServer();
  const db0 = await createTestDatabase({ applySchema: false });
  const dir = await mkdtemp(join(tmpdir(), 'fg-workers-any-'));
  const run = startStack({
    FLUXGATE_STATE_DIR: dir,
    DATA_PLANE_WORKERS: '2',
    REDIS_URL: redis0.url,
    DATABASE_URL: db0.url,
    ADMIN_TOKEN,
    PUBLIC_HOST: '127.0.0.1',
    PUBLIC_PORT: '0',
    ADMIN_PORT: '0',
    CONTROL_PLANE_PORT: String(await freePort()),
    DOWNSTREAM_AI_URLS: 'http://127.0.0.1:9',
    OLLAMA_HOST: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
  });
  try {
    await run.waitFor(new RegExp(BANNER_TITLE), { timeoutMs: 120_000 });
    type Announced = { publicPort: number; adminPort: number; replicaId: string };
    const announced = (): Announced[] =>
      // The data plane's lines (the control plane's says `port`).
      [...run.stdout().matchAll(/^\{"event":"listening","publicPort".*\}$/gm)].map((m) => JSON.parse(m[0]) as Announced);
    const [a, b] = announced();
    expect(a!.publicPort).toBeGreaterThan(0);
    expect(b!.publicPort).toBe(a!.publicPort);
    expect(b!.adminPort).not.toBe(a!.adminPort);
    expect(run.stdout()).toContain(`2 workers sharing ${a!.publicPort} `);
    expect(run.stdout()).toMatch(new RegExp(`one per worker, ports (${a!.adminPort}, ${b!.adminPort}|${b!.adminPort}, ${a!.adminPort}) `));
    const res = await request(`https://127.0.0.1:${a!.publicPort}/healthz`, { dispatcher: tls });
    expect(res.statusCode).toBe(200);
    await res.body.text();

    // Worker 0 (announced first: it starts alone) comes back on the same public and admin port.
    const pid = Number(/data plane worker 0 ready \(pid (\d+)\)/.exec(run.output())![1]);
    process.kill(pid, 'SIGKILL');
    await run.waitFor(/data plane worker 0 is back \(pid \d+\)/);
    // At the first attempt: a kernel-picked port would refuse its successor while the old connections sit in TIME_WAIT.
    expect(run.output()).not.toContain('did not come back');
    const again = announced()[2]!;
    expect(again).toMatchObject({ publicPort: a!.publicPort, adminPort: a!.adminPort });
    expect(again.replicaId).not.toBe(a!.replicaId);
    expect((await admin(a!.adminPort, '/admin/metrics')).body.replicaId).toBe(again.replicaId);
  } finally {
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(await processesOf(dir)).toEqual([]);
    await db0.drop();
    await redis0.kill();
    await rm(dir, { recursive: true, force: true });
  }
}, 180_000);
