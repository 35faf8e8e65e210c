/**
 * Issue 15 end to end, in headless Debian Chromium against the real system: the built SPA
 * (frontend/dist, as `npm start` serves it) from the real data plane over TLS, a private
 * redis-server, a fresh Postgres database, the mock model server streaming SSE, and for the
 * operator flow the real control plane (guard) with an Ollama stand-in writing summaries.
 *
 * Every page is screenshotted (light, dark, phone width) into frontend/test-output/screenshots
 * and checked with axe-core; the results are written to frontend/test-output/a11y.json.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getPenalty, graceRecordSchema, redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import type { Locator, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOllamaStandIn, type OllamaStandIn } from '../../../control-plane/test/support/ollama-standin.js';
import { startControlPlane, type ControlPlaneProcess } from '../../../control-plane/test/support/process.js';
import { startGateway, type Gateway } from '../../../data-plane/test/support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../../../data-plane/test/support/mock-upstream.js';
import { spawnRedisServer, waitUntil, type SpawnedRedis } from '../../../data-plane/test/support/services.js';
import { axe, launchChromium, screenshot, serious, writeReport, type AxeResult, type Browser } from './browser.js';

const DIST_INDEX = fileURLToPath(new URL('../../dist/index.html', import.meta.url));
const PASSWORD = 'violet-Tractor-harbour-93';

let redisServer: SpawnedRedis;
let redis: Redis;
let mock: MockUpstream;
let gw: Gateway;
let ollama: OllamaStandIn;
let cp: ControlPlaneProcess;
let browser: Browser;
let page: Page;
const a11y: AxeResult[] = [];
const shots: string[] = [];

beforeAll(async () => {
  if (!existsSync(DIST_INDEX)) throw new Error(`${DIST_INDEX} is missing: run \`npm run build\` (npm test does)`);
  redisServer = await spawnRedisServer();
  redis = new Redis(redisServer.url);
  mock = await startMockUpstream({ models: ['mock-model', 'mock-model-large'] });
  ollama = await startOllamaStandIn();
  ollama.answer = 'The key asked for many different models in a few seconds, which looks like model enumeration; it was moved to a penalty tier.';
  gw = await startGateway({
    upstreams: mock.url,
    redisUrl: redisServer.url,
    // One free failed login per account, then the growing delay: the countdown shows at once.
    env: { LOGIN_FREE_FAILURES: '1', LOGIN_MAX_ATTEMPTS_PER_IP: '200' },
  });
  cp = await startControlPlane({ REDIS_URL: redisServer.url, DATABASE_URL: gw.db.url, POLL_INTERVAL: '1', OLLAMA_HOST: ollama.url });
  browser = await launchChromium();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
}, 90_000);

afterAll(async () => {
  await writeReport('a11y.json', a11y);
  await writeReport('screenshots.json', shots);
  await browser?.close();
  await cp?.stop();
  await gw?.stop();
  redis?.disconnect();
  await Promise.allSettled([mock?.close(), ollama?.close()]);
  await redisServer?.kill();
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** Screenshot + axe for the page as it is now; serious or critical violations fail the test. */
async function check(name: string): Promise<void> {
  shots.push(await screenshot(page, name));
  const result = await axe(page, name);
  a11y.push(result);
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

const textOf = async (l: Locator): Promise<string> => (await l.textContent()) ?? '';
async function waitForText(l: Locator, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return waitUntil(async () => {
    const t = await textOf(l);
    return pattern.test(t) ? t : null;
  }, { timeoutMs, intervalMs: 50, message: `text ${pattern}` });
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

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(`${gw.url}${path}`, { method: 'POST', dispatcher: gw.dispatcher, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

// ---------------------------------------------------------------------------------------------

describe('the SPA in Chromium', () => {
  it('the accessibility check can fail: axe reports a control planted without a name', async () => {
    await page.goto(`${gw.url}/login`);
    await page.locator('h1').waitFor();
    await page.evaluate(() => document.querySelector('main')!.append(document.createElement('button')));
    const planted = await axe(page, 'planted');
    expect(serious(planted).map((v) => v.id)).toContain('button-name');
  });

  let secret = '';
  let keyId = '';

  it('signs up (field errors next to the fields), logs in (wrong password, then the Retry-After countdown)', async () => {
    await page.goto(`${gw.url}/`);
    await page.waitForURL(/\/login$/);
    await page.getByRole('heading', { level: 1, name: 'Log in' }).waitFor();
    expect(await page.title()).toBe('Log in · Fluxgate');
    await check('01-login');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sign up' }).click();
    await page.waitForURL(/\/signup$/);
    // Focus moved to the new page's heading.
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Sign up');
    const email = page.getByLabel('Email');
    const password = page.getByLabel('Password', { exact: true });
    await page.getByRole('button', { name: 'Create account' }).click();
    expect(await fieldError(email)).toMatch(/Enter an email address/);
    expect(await email.getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('email');

    // The server's policy message lands next to the password field.
    await email.fill('adalovelace@example.com');
    await password.fill('adalovelace-secret-2024');
    await page.getByRole('button', { name: 'Create account' }).click();
    await waitUntil(async () => /must not contain your email/.test(await fieldError(password)), { timeoutMs: 10_000, message: 'password policy error' });
    expect(await password.getAttribute('aria-invalid')).toBe('true');
    expect(await fieldError(email)).toBe('');
    await check('02-signup-errors');
    await checkVariants('02-signup-errors');

    await password.fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/login$/);
    await waitForText(page.getByRole('status').filter({ hasText: 'Account created' }), /Account created for adalovelace@example.com/);
    expect(await page.getByLabel('Email').inputValue()).toBe('adalovelace@example.com');

    // A taken email is reported on the email field.
    await post('/portal/register', { email: 'adalovelace@example.com', password: PASSWORD });
    // Wrong password: one message for the form, the field marked.
    await page.getByLabel('Password', { exact: true }).fill('not-the-right-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await waitForText(page.getByRole('alert'), /Invalid email or password/);
    expect(await page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid')).toBe('true');

    // Again at once: the account's growing delay answers 429 with Retry-After, shown as a countdown.
    await page.getByRole('button', { name: 'Log in' }).click();
    await waitForText(page.getByRole('alert'), /You can try again in \d+ s/);
    const counting = page.getByRole('button', { name: /^Log in \(\d+ s\)$/ });
    await counting.waitFor();
    expect(await counting.isDisabled()).toBe(true);
    await check('03-login-throttled');
    // When the countdown ends the button comes back, and the right password logs in.
    await page.getByRole('button', { name: 'Log in', exact: true }).waitFor({ timeout: 15_000 });
    await waitForText(page.getByRole('alert'), /You can try again now/);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await page.waitForURL(/\/keys$/);
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    expect(await textOf(page.locator('#account'))).toContain('adalovelace@example.com');
  });

  it('creates a key, shows the secret once with a warning, and copies it', async () => {
    await check('04-keys-empty');
    await page.getByLabel('Name').fill('laptop');
    await page.getByRole('button', { name: 'Create key' }).click();
    const panel = page.getByRole('region', { name: 'Key “laptop” created' });
    await panel.waitFor();
    expect(await textOf(panel)).toContain('Copy this secret now: it is shown only once.');
    secret = await page.getByLabel('Secret key').inputValue();
    expect(secret).toMatch(/^fgk_[0-9A-Za-z]{49}$/);
    await panel.getByRole('button', { name: 'Copy' }).click();
    await waitForText(panel.getByRole('status'), /Copied to the clipboard/);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    const row = page.getByRole('row', { name: /laptop/ });
    expect(await textOf(row)).toContain(`${secret.slice(0, 12)}…`);
    expect(await textOf(row)).toMatch(/free.*active.*never/);
    await check('05-key-created');
    await checkVariants('05-key-created');
    keyId = (await gw.db.sql<Array<{ id: string }>>`SELECT id FROM api_keys WHERE display_prefix = ${secret.slice(0, 12)}`)[0]!.id;

    // Stored: the secret leaves the page, and the list never shows it.
    await panel.getByRole('button', { name: 'I have stored it' }).click();
    await panel.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);
    await page.reload();
    await page.getByRole('row', { name: /laptop/ }).waitFor();
    expect(await page.content()).not.toContain(secret.slice(12));
  });

  it('streams an answer in the playground with the pasted key, token by token, and stops on demand', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Playground' }).click();
    await page.waitForURL(/\/playground$/);
    const keyInput = page.getByLabel('API key');
    expect(await keyInput.inputValue()).toBe('');
    // Paste the copied key from the clipboard, as a person would.
    await keyInput.focus();
    await page.keyboard.press('Control+V');
    if ((await keyInput.inputValue()) === '') await keyInput.fill(await page.evaluate(() => navigator.clipboard.readText()));
    expect(await keyInput.inputValue()).toBe(secret);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await waitForText(page.getByText(/Key accepted/), /2 models available/);
    expect(await page.getByLabel('Model').locator('option').allTextContents()).toEqual(['mock-model', 'mock-model-large']);

    // Events 400 ms apart: the first words are on screen while the stream is still open.
    mock.set({ events: 6, eventDelayMs: 400 });
    await page.getByLabel('Model').selectOption('mock-model-large');
    await page.getByLabel('Prompt').fill('Say something in six words.');
    await page.getByRole('button', { name: 'Send' }).click();
    const output = page.locator('#playground-output');
    const partial = await page.waitForFunction(() => {
      const o = document.getElementById('playground-output');
      return o && o.getAttribute('aria-busy') === 'true' && (o.textContent ?? '').length > 0 ? o.textContent : null;
    });
    const firstSeen = String(await partial.jsonValue());
    expect(firstSeen.length).toBeGreaterThan(0);
    await check('06-playground-streaming');
    await waitForText(page.locator('.stream-status'), /^Done\. \d+ prompt \+ 6 completion tokens\./, 15_000);
    const full = await textOf(output);
    expect(full.startsWith(firstSeen)).toBe(true);
    expect(full.length).toBeGreaterThan(firstSeen.length);
    expect(await output.getAttribute('aria-busy')).toBe('false');
    expect(await output.getAttribute('role')).toBe('log');
    await check('07-playground-done');
    await checkVariants('07-playground-done');
    // The key went to the gateway as a bearer token, not with the session cookie.
    const seen = mock.requests.filter((r) => r.path === '/v1/chat/completions');
    expect(JSON.parse(seen.at(-1)!.body.toString())).toMatchObject({ model: 'mock-model-large', stream: true, messages: [{ role: 'user', content: 'Say something in six words.' }] });

    // Stop: the browser aborts the request and the gateway aborts the upstream one.
    mock.set({ events: 200, eventDelayMs: 300 });
    const upstreamRequest = new Promise<{ early: boolean }>((resolve) => {
      const off = mock.onRequest((r) => {
        if (r.path !== '/v1/chat/completions') return;
        off();
        void r.closed.then(resolve);
      });
    });
    await page.getByRole('button', { name: 'Send' }).click();
    await page.waitForFunction(() => (document.getElementById('playground-output')?.textContent ?? '').length > 0);
    await page.getByRole('button', { name: 'Stop' }).click();
    await waitForText(page.locator('.stream-status'), /^Stopped\./);
    expect(await upstreamRequest).toEqual({ early: true });
    expect(await page.getByRole('button', { name: 'Send' }).isEnabled()).toBe(true);
    mock.set({ events: 8, eventDelayMs: 0 });
  });

  it('shows the request in the usage chart', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Usage' }).click();
    await page.waitForURL(/\/usage$/);
    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    // Counters reach Redis within a flush (200 ms here): refresh until they show.
    await waitUntil(async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      const cells = await row.locator('td').allTextContents();
      return Number(cells[0]) >= 2 ? cells : null;
    }, { timeoutMs: 15_000, intervalMs: 300, message: 'usage row' });
    const cells = await row.locator('td').allTextContents();
    expect(Number(cells[0])).toBeGreaterThanOrEqual(2); // requests, last hour
    expect(Number(cells[1].replace(/\D/g, ''))).toBeGreaterThan(0); // tokens
    expect(cells[2]).toBe('0'); // 429s
    const figure = page.locator('figure.chart');
    expect(Number(await figure.getAttribute('data-requests'))).toBeGreaterThanOrEqual(2);
    expect(await page.locator('figure.chart canvas').count()).toBeGreaterThan(0);
    await page.getByLabel('Chart').selectOption(keyId);
    expect(Number(await figure.getAttribute('data-requests'))).toBeGreaterThanOrEqual(2);
    await check('08-usage');
    await checkVariants('08-usage');
  });

  it('a non-operator sees no operator pages and gets 403 from their routes', async () => {
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link', { name: 'Incidents' }).count()).toBe(0);
    await gotoPath('/operator/incidents');
    await page.getByRole('heading', { level: 1, name: 'Operators only' }).waitFor();
    const statuses = await page.evaluate(async () => {
      const h = { 'x-fluxgate-csrf': '1', 'content-type': 'application/json' };
      return Promise.all([
        fetch('/portal/operator/incidents').then((r) => r.status),
        fetch('/portal/operator/penalties').then((r) => r.status),
        fetch('/portal/operator/penalties/00000000-0000-4000-8000-000000000000/pardon', { method: 'POST', headers: h, body: '{"reason":"me"}' }).then((r) => r.status),
      ]);
    });
    expect(statuses).toEqual([403, 403, 403]);
    await check('09-operators-only');
  });

  it('revokes the key after confirmation, and the key stops working', async () => {
    await gotoPath('/keys');
    const revoke = page.getByRole('button', { name: /^Revoke key “laptop”/ });
    await revoke.click();
    const dialog = page.getByRole('dialog', { name: /Revoke “laptop”/ });
    await dialog.waitFor();
    // Focus starts on Cancel: Enter by mistake does not revoke.
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Cancel');
    await check('10-revoke-confirm');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await textOf(page.getByRole('row', { name: /laptop/ }))).toContain('active');
    await revoke.click();
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await waitForText(page.getByRole('row', { name: /laptop/ }), /revoked/);
    await check('11-key-revoked');

    const res = await request(`${gw.url}/v1/models`, { dispatcher: gw.dispatcher, headers: { authorization: `Bearer ${secret}` } });
    expect(res.statusCode).toBe(401);
    expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('key_revoked');
    // The playground says so too.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Playground' }).click();
    await page.getByLabel('API key').fill(secret);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await waitUntil(async () => /revoked/.test(await fieldError(page.getByLabel('API key'))), { timeoutMs: 10_000, message: 'revoked key error' });
    await logOut();
  });

  it('an operator sees the incident the guard wrote and pardons the key with a reason', async () => {
    // Another account's key enumerates models: 10 distinct models within seconds.
    const abuser = await gw.issueKey('mallory@example.com');
    for (let i = 0; i < 10; i++) {
      const r = await post('/v1/chat/completions', { model: `probe-${i}`, max_tokens: 8, messages: [{ role: 'user', content: `hi ${i}` }] }, { authorization: `Bearer ${abuser.secret}` });
      await r.body.dump();
    }
    const penalty = await waitUntil(() => getPenalty(redis, abuser.id), { timeoutMs: 20_000, intervalMs: 100, message: 'the guard penalises the enumerating key' });
    expect(penalty.setBy).toBe('guard');
    const incidentId = penalty.incidentId!;
    await waitUntil(() => redis.hexists(redisKeys.incidentSummaries(), incidentId), { timeoutMs: 15_000, message: 'incident summary' });

    const reg = await post('/portal/register', { email: 'grace@example.com', password: PASSWORD });
    expect(reg.statusCode).toBe(201);
    await gw.db.sql`UPDATE users SET role = 'operator' WHERE email = 'grace@example.com'`;
    await logIn('grace@example.com');
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Incidents' }).click();
    await page.waitForURL(/\/operator\/incidents$/);
    const card = page.locator(`article[data-incident-id="${incidentId}"]`);
    await card.waitFor();
    const prefix = (await gw.db.sql<Array<{ display_prefix: string }>>`SELECT display_prefix FROM api_keys WHERE id = ${abuser.id}`)[0]!.display_prefix;
    const cardText = await textOf(card);
    expect(cardText).toContain('Model enumeration');
    expect(cardText).toContain(`key ${prefix}…`);
    expect(cardText).toContain('mallory@example.com');
    expect(cardText).toContain(ollama.answer);
    expect(cardText).toContain('written by the model');
    expect(await textOf(card.locator('table.evidence'))).toMatch(/distinct models/i);
    await check('12-incidents');
    await checkVariants('12-incidents');

    // Filter by the key's prefix.
    await page.getByLabel('Key id or prefix').fill(prefix);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(new RegExp(`key=${prefix}$`));
    await card.waitFor();
    expect(await page.locator('article.incident').count()).toBe(1);
    await page.getByLabel('Key id or prefix').fill('fgk_NoSuchKey');
    await page.getByRole('button', { name: 'Filter' }).click();
    await waitForText(page.getByRole('status').filter({ hasText: 'No incidents' }), /No incidents for fgk_NoSuchKey/);

    await nav.getByRole('link', { name: 'Penalty box' }).click();
    await page.waitForURL(/\/operator\/penalties$/);
    const row = page.locator(`tr[data-key-id="${abuser.id}"]`);
    await row.waitFor();
    expect(await textOf(row)).toMatch(new RegExp(`${prefix}.*mallory@example\\.com.*${penalty.level}.*guard.*Model enumeration`));
    await check('13-penalty-box');
    await checkVariants('13-penalty-box');

    await row.getByRole('button', { name: /^Pardon key / }).click();
    const dialog = page.getByRole('dialog', { name: /^Pardon / });
    await dialog.waitFor();
    // A reason is required.
    await dialog.getByRole('button', { name: 'Pardon' }).click();
    expect(await fieldError(dialog.getByLabel('Reason'))).toMatch(/at least 3 characters/);
    await check('14-pardon-dialog');
    await dialog.getByLabel('Reason').fill('A customer testing model routing; agreed with them');
    await dialog.getByRole('button', { name: 'Pardon' }).click();
    await waitForText(page.getByRole('status').filter({ hasText: 'Pardoned' }), /Pardoned .*No detector penalises it again before/);
    await waitForText(page.locator('main'), /The penalty box is empty/);
    await check('15-pardoned');

    // Lifted everywhere, on the guard's grace list, and written up as an operator incident.
    expect(await getPenalty(redis, abuser.id)).toBeNull();
    const grace = graceRecordSchema.parse(JSON.parse((await redis.get(redisKeys.pardonGrace(abuser.id)))!));
    expect(grace.keyId).toBe(abuser.id);
    const audit = await gw.db.sql`SELECT detail FROM audit_log WHERE action = 'penalty.pardoned' AND key_id = ${abuser.id}`;
    expect(audit).toHaveLength(1);
    await nav.getByRole('link', { name: 'Incidents' }).click();
    const operatorCard = page.locator('article.incident.operator').first();
    await operatorCard.waitFor();
    expect(await textOf(operatorCard)).toMatch(/Model enumeration.*operator.*Pardoned.*portal:grace@example\.com.*A customer testing model routing/s);
    // The guard notices the pardon and closes its own incident as pardoned.
    await waitUntil(async () => {
      await page.reload();
      return /pardoned/.test(await textOf(page.locator(`article[data-incident-id="${incidentId}"] .status`)));
    }, { timeoutMs: 15_000, intervalMs: 500, message: 'the guard marks its incident pardoned' });
    await check('16-incidents-after-pardon');

    // No CSP violation and no script error on any page of the run.
    expect(browser.problems).toEqual([]);
  });
});
