/**
 * The real system for the SPA's browser tests: the built SPA (frontend/dist, as `npm start`
 * serves it) from the real data plane over TLS, a private redis-server (never the shared one:
 * the guard must not see other tests' keys), a fresh Postgres database, the mock model server
 * streaming SSE, optionally the real control plane (guard) with an Ollama stand-in, and one
 * Chromium page. Helpers act on that page; `check` screenshots it and runs axe-core.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Locator, Page } from 'playwright-core';
import { request } from 'undici';
import { expect } from 'vitest';
import { startOllamaStandIn, type OllamaStandIn } from '../../../control-plane/test/support/ollama-standin.js';
import { startControlPlane, type ControlPlaneProcess } from '../../../control-plane/test/support/process.js';
import { startGateway, type Gateway } from '../../../data-plane/test/support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../../../data-plane/test/support/mock-upstream.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from '../../../data-plane/test/support/services.js';
import { axe, launchChromium, screenshot, serious, writeReport, type AxeResult, type Browser } from './browser.js';

const DIST_INDEX = fileURLToPath(new URL('../../dist/index.html', import.meta.url));
export const PASSWORD = 'violet-Tractor-harbour-93';

export interface Stack {
  redisServer: SpawnedRedis;
  /** A client of the private Redis, for assertions on what the planes wrote. */
  redis: Redis;
  mock: MockUpstream;
  gw: Gateway;
  ollama: OllamaStandIn | null;
  cp: ControlPlaneProcess | null;
  browser: Browser;
  page: Page;
  /** axe results and screenshot paths of this file, written to test-output when it stops. */
  a11y: AxeResult[];
  shots: string[];
  stop(): Promise<void>;
}

export async function startStack(opts: { name: string; guard: boolean }): Promise<Stack> {
  if (!existsSync(DIST_INDEX)) throw new Error(`${DIST_INDEX} is missing: run \`npm run build\` (npm test does)`);
  const redisServer = await spawnRedisServer();
  const redis = new Redis(redisServer.url);
  const mock = await startMockUpstream({ models: ['mock-model', 'mock-model-large'] });
  const gw = await startGateway({
    upstreams: mock.url,
    redisUrl: redisServer.url,
    // One free failed login per account, then the growing delay: the countdown shows at once.
    env: { LOGIN_FREE_FAILURES: '1', LOGIN_MAX_ATTEMPTS_PER_IP: '200' },
  });
  const ollama = opts.guard ? await startOllamaStandIn() : null;
  const cp = ollama
    ? await startControlPlane({ REDIS_URL: redisServer.url, DATABASE_URL: gw.db.url, POLL_INTERVAL: '1', OLLAMA_HOST: ollama.url })
    : null;
  const browser = await launchChromium();
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  const stack: Stack = {
    redisServer,
    redis,
    mock,
    gw,
    ollama,
    cp,
    browser,
    page,
    a11y: [],
    shots: [],
    async stop() {
      await writeReport(`a11y-${opts.name}.json`, stack.a11y);
      await writeReport(`screenshots-${opts.name}.json`, stack.shots);
      await browser.close();
      await cp?.stop();
      await gw.stop();
      redis.disconnect();
      await Promise.allSettled([mock.close(), ollama?.close()]);
      await redisServer.kill();
    },
  };
  return stack;
}

export const textOf = async (l: Locator): Promise<string> => (await l.textContent()) ?? '';

export async function waitForText(l: Locator, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return waitUntil(
    async () => {
      const t = await textOf(l);
      return pattern.test(t) ? t : null;
    },
    { timeoutMs, intervalMs: 50, message: `text ${pattern}` },
  );
}

/** Page-bound helpers of one stack. */
export function helpers(s: Stack) {
  const { page, gw } = s;

  /** Screenshot + axe for the page as it is now; serious or critical violations fail the test. */
  async function check(name: string): Promise<void> {
    s.shots.push(await screenshot(page, name));
    const result = await axe(page, name);
    s.a11y.push(result);
    expect(serious(result), `${name}: ${JSON.stringify(serious(result), null, 1)}`).toEqual([]);
  }

  /** The same page in the dark scheme and at phone width, then back. */
  async function checkVariants(name: string): Promise<void> {
    await page.emulateMedia({ colorScheme: 'dark' });
    await check(`${name}-dark`);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    // Two frames: resize observers (the chart) have run and the layout is the phone's.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    // Usable at phone width: nothing makes the page scroll sideways (wide tables scroll in their own region).
    const overflow = await page.evaluate(() =>
      Array.from(document.querySelectorAll('body *'))
        .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 && !el.closest('.table-scroll'))
        .map((el) => `${el.tagName.toLowerCase()}.${el.className} right=${el.getBoundingClientRect().right}`),
    );
    expect(overflow, `${name} at 390 px`).toEqual([]);
    await check(`${name}-phone`);
    await page.setViewportSize({ width: 1280, height: 900 });
  }

  /** The error paragraph wired to an input through aria-describedby. */
  async function fieldError(input: Locator): Promise<string> {
    const ids = ((await input.getAttribute('aria-describedby')) ?? '').split(' ').filter((id) => id.endsWith('-error'));
    return ids.length === 0 ? '' : textOf(page.locator(`[id="${ids[0]}"]`));
  }

  async function gotoPath(path: string): Promise<void> {
    await page.goto(`${gw.url}${path}`);
    await page.locator('h1').waitFor();
  }

  async function logIn(email: string, password = PASSWORD): Promise<void> {
    await gotoPath('/login');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/keys$/);
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
  }

  async function logOut(): Promise<void> {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login$/);
  }

  /** A JSON POST straight to the gateway (not through the page). */
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    request(`${gw.url}${path}`, {
      method: 'POST',
      dispatcher: gw.dispatcher,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  const nav = () => page.getByRole('navigation', { name: 'Main' });

  return { check, checkVariants, fieldError, gotoPath, logIn, logOut, post, nav };
}
