/**
 * The in-process gateway (support/in-process.ts) must leave the test process as it found it:
 * after stop(), no listen socket, connection, client or timer of the data plane is left, or the
 * converted files would leak one gateway's handles into the next test and keep vitest's fork
 * alive.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_TOKEN } from '../support/gateway.js';
import { startInProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { openTls } from '../support/raw-tls.js';
import { createTestDatabase, TEST_REDIS_URL, waitUntil } from '../support/services.js';

let mock: MockUpstream;
beforeAll(async () => {
  mock = await startMockUpstream({ events: 5 });
});
afterAll(async () => {
  await mock?.close();
});

const sleepThenThrow = (ms: number, message: string) =>
  new Promise<never>((_, reject) => setTimeout(() => reject(new Error(message)), ms).unref());

/**
 * Active libuv resources by type ("TCPSocketWrap": 3, "Timeout": 2, …), without one-off file
 * system requests (vitest's own reads come and go at any moment).
 */
const resources = (): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (!r.startsWith('FSReq')) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
};

/** The resource types with more active than at `baseline` (earlier tests' leftovers may only go away). */
const grownSince = (baseline: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(resources()).filter(([type, n]) => n > (baseline[type] ?? 0)));

it('serves a request, and after stop() leaves no handle and no open connection behind', async () => {
  // A first boot loads the native uWS module and warms module-level state; measure from the second.
  await (await startInProcessGateway({ upstreams: mock.url })).stop();
  const baseline = resources();

  const gw = await startInProcessGateway({ upstreams: mock.url });
  const key = (await gw.issueKey(undefined, 'enterprise')).secret;
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(res.statusCode).toBe(200);
  expect(await res.body.text()).toContain('data: [DONE]');
  // An idle client connection the gateway must close itself (the drain's App#close).
  const idle = await openTls(gw.publicPort);
  const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
  idle.on('error', () => undefined);
  expect(grownSince(baseline)).not.toEqual({});

  await gw.stop();
  // uWS's idle timeout (10 s) would close it too, later: the drain must not leave it to that.
  await Promise.race([idleClosed, sleepThenThrow(5_000, 'the idle connection is still open 5 s after stop()')]);
  await waitUntil(() => Object.keys(grownSince(baseline)).length === 0, { timeoutMs: 10_000 }).catch(() => undefined);
  expect(grownSince(baseline)).toEqual({});
  // Its log went to memory, not to the test's stdout: the drain's lines are below LOG_LEVEL=warn.
  expect(gw.output()).not.toContain('"msg":"stopped"');
});

/**
 * uWS's own poll handles are not in getActiveResourcesInfo(), so the last word is a process of
 * its own: boot, hold an idle client connection, stop(), and the process must end by itself
 * (no process.exit) with that connection closed. Runs the built boot (dist/, fresh from the
 * integration project's global setup).
 */
it('a process that boots and stops the data plane exits by itself', async () => {
  const db = await createTestDatabase();
  const stateDir = await mkdtemp(join(tmpdir(), 'fg-inproc-exit-'));
  const dist = (path: string) => new URL(`../../dist/${path}`, import.meta.url).href;
  const script = `
    const { startDataPlane } = await import(${JSON.stringify(dist('boot.js'))});
    const { loadConfig } = await import(${JSON.stringify(dist('config/load.js'))});
    const { createLogger } = await import(${JSON.stringify(dist('log/logger.js'))});
    const dp = await startDataPlane(loadConfig(process.env), createLogger({ level: 'warn', name: 'data-plane' }));
    process.stdout.write(dp.publicPort + '\\n');
    process.stdin.once('data', () => void dp.stop('test').then(() => process.stdout.write('stopped\\n')));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      PATH: process.env.PATH ?? '',
      PUBLIC_HOST: '127.0.0.1',
      PUBLIC_PORT: '0',
      ADMIN_PORT: '0',
      ADMIN_TOKEN,
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      DOWNSTREAM_AI_URLS: mock.url,
      FLUXGATE_STATE_DIR: stateDir,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const port = Number(await waitUntil(() => /^(\d+)$/m.exec(output)?.[1], { timeoutMs: 20_000, message: 'no port' }));
    const idle = await openTls(port);
    idle.on('error', () => undefined);
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    // Ending stdin releases the script's own handle; whatever is left after stop() is the data plane's.
    child.stdin.end('stop\n');
    const code = await Promise.race([exited, sleepThenThrow(8_000, `the process did not exit after stop():\n${output}`)]);
    expect(code, output).toBe(0);
    expect(output).toContain('stopped');
    await idleClosed;
  } finally {
    child.kill('SIGKILL');
    await db.drop();
    await rm(stateDir, { recursive: true, force: true });
  }
});

it('a boot that fails after its clients are up (admin port taken) releases them', async () => {
  const baseline = resources();
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const taken = (holder.address() as AddressInfo).port;
  try {
    const during = startInProcessGateway({ upstreams: mock.url, env: { ADMIN_PORT: String(taken) } });
    await expect(during).rejects.toThrow(new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${taken}`));
  } finally {
    await new Promise<void>((resolve) => holder.close(() => resolve()));
  }
  // Postgres, both Redis connections, the pollers' timers: all closed by the failed boot itself.
  await waitUntil(() => Object.keys(grownSince(baseline)).length === 0, { timeoutMs: 10_000 }).catch(() => undefined);
  expect(grownSince(baseline)).toEqual({});
});

it('reports a boot failure with its cause', async () => {
  await expect(startInProcessGateway({ upstreams: mock.url, env: { PUBLIC_PORT: '70000' } })).rejects.toThrow(/PUBLIC_PORT/);
});
