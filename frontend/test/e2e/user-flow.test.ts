/**
 * Issue 15 end to end, the user's flow, in headless Debian Chromium against the real data plane
 * (harness.ts): sign up → log in → create a key → copy it → use it in the playground and see the
 * text stream in (and stop a stream) → the requests show in the usage chart → revoke → the key
 * stops working. Every page is screenshotted (light, dark, 390 px) into
 * frontend/test-output/screenshots and checked with axe-core (frontend/test-output/a11y-user.json).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { waitUntil } from '../../../data-plane/test/support/services.js';
import { axe, serious } from './browser.js';
import { PASSWORD, helpers, startStack, textOf, waitForText, type Stack } from './harness.js';

let s: Stack;
let h: ReturnType<typeof helpers>;
beforeAll(async () => {
  s = await startStack({ name: 'user', guard: false });
  h = helpers(s);
}, 90_000);
afterAll(async () => {
  await s?.stop();
});

describe("a user's flow in Chromium", () => {
  it('the accessibility check can fail: axe reports a control planted without a name', async () => {
    await s.page.goto(`${s.gw.url}/login`);
    await s.page.locator('h1').waitFor();
    await s.page.evaluate(() => document.querySelector('main')!.append(document.createElement('button')));
    const planted = await axe(s.page, 'planted');
    expect(serious(planted).map((v) => v.id)).toContain('button-name');
  });

  it('the CSP check can fail: HTML written as a string is refused (Trusted Types) and reported', async () => {
    const before = s.browser.problems.length;
    const refused = await s.page.evaluate(() => {
      try {
        document.body.insertAdjacentHTML('beforeend', '<b id="injected">x</b>');
        return false;
      } catch (e) {
        return e instanceof TypeError;
      }
    });
    expect(refused).toBe(true);
    expect(await s.page.locator('#injected').count()).toBe(0);
    await waitUntil(() => s.browser.problems.length > before, { message: 'the violation reported' });
    // Taken out again: the flow below must report none of its own.
    expect(s.browser.problems.splice(before).some((p) => p.startsWith('csp: require-trusted-types-for'))).toBe(true);
  });

  let secret = '';
  let keyId = '';

  it('signs up (field errors next to the fields), logs in (wrong password, then the Retry-After countdown)', async () => {
    await s.page.goto(`${s.gw.url}/`);
    await s.page.waitForURL(/\/login$/);
    await s.page.getByRole('heading', { level: 1, name: 'Log in' }).waitFor();
    expect(await s.page.title()).toBe('Log in · Fluxgate');
    await h.check('01-login');
    // Keyboard: the first Tab stop is the skip link, and it lands on the main content.
    await s.page.keyboard.press('Tab');
    expect(await s.page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await s.page.keyboard.press('Enter');
    expect(await s.page.evaluate(() => document.activeElement?.id)).toBe('main');

    await h.nav().getByRole('link', { name: 'Sign up' }).click();
    await s.page.waitForURL(/\/signup$/);
    // Focus moved to the new page's heading.
    expect(await s.page.evaluate(() => document.activeElement?.textContent)).toBe('Sign up');
    const email = s.page.getByLabel('Email');
    const password = s.page.getByLabel('Password', { exact: true });
    await s.page.getByRole('button', { name: 'Create account' }).click();
    expect(await h.fieldError(email)).toMatch(/Enter an email address/);
    expect(await email.getAttribute('aria-invalid')).toBe('true');
    expect(await s.page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('email');

    // The server's policy message lands next to the password field.
    await email.fill('adalovelace@example.com');
    await password.fill('adalovelace-secret-2024');
    await s.page.getByRole('button', { name: 'Create account' }).click();
    await waitUntil(async () => /must not contain your email/.test(await h.fieldError(password)), {
      timeoutMs: 10_000,
      message: 'password policy error',
    });
    expect(await password.getAttribute('aria-invalid')).toBe('true');
    expect(await h.fieldError(email)).toBe('');
    await h.check('02-signup-errors');
    await h.checkVariants('02-signup-errors');

    await password.fill(PASSWORD);
    await s.page.getByRole('button', { name: 'Create account' }).click();
    await s.page.waitForURL(/\/login$/);
    await waitForText(s.page.getByRole('status').filter({ hasText: 'Account created' }), /Account created for adalovelace@example.com/);
    expect(await s.page.getByLabel('Email').inputValue()).toBe('adalovelace@example.com');

    // A taken email is reported on the email field.
    await h.post('/portal/register', { email: 'adalovelace@example.com', password: PASSWORD });
    // Wrong password: one message for the form, the field marked.
    await s.page.getByLabel('Password', { exact: true }).fill('not-the-right-password');
    await s.page.getByRole('button', { name: 'Log in' }).click();
    await waitForText(s.page.getByRole('alert'), /Invalid email or password/);
    expect(await s.page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid')).toBe('true');

    // Again at once: the account's growing delay answers 429 with Retry-After, shown as a countdown.
    await s.page.getByRole('button', { name: 'Log in' }).click();
    await waitForText(s.page.getByRole('alert'), /You can try again in \d+ s/);
    const counting = s.page.getByRole('button', { name: /^Log in \(\d+ s\)$/ });
    await counting.waitFor();
    expect(await counting.isDisabled()).toBe(true);
    await h.check('03-login-throttled');
    // When the countdown ends the button comes back, and the right password logs in.
    await s.page.getByRole('button', { name: 'Log in', exact: true }).waitFor({ timeout: 15_000 });
    await waitForText(s.page.getByRole('alert'), /You can try again now/);
    await s.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await s.page.getByRole('button', { name: 'Log in', exact: true }).click();
    await s.page.waitForURL(/\/keys$/);
    await s.page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    expect(await textOf(s.page.locator('#account'))).toContain('adalovelace@example.com');
  });

  it('creates a key, shows the secret once with a warning, and copies it', async () => {
    await h.check('04-keys-empty');
    // Keyboard only: type the name and press Enter; focus moves to the panel with the secret.
    await s.page.getByLabel('Name').focus();
    await s.page.keyboard.type('laptop');
    await s.page.keyboard.press('Enter');
    const panel = s.page.getByRole('region', { name: 'Key “laptop” created' });
    await panel.waitFor();
    expect(await textOf(panel)).toContain('Copy this secret now: it is shown only once.');
    expect(await s.page.evaluate(() => document.activeElement?.getAttribute('aria-labelledby'))).toBe(
      await panel.getAttribute('aria-labelledby'),
    );
    secret = await s.page.getByLabel('Secret key').inputValue();
    expect(secret).toMatch(/^fgk_[0-9A-Za-z]{49}$/);
    await panel.getByRole('button', { name: 'Copy' }).click();
    await waitForText(panel.getByRole('status'), /Copied to the clipboard/);
    expect(await s.page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    const row = s.page.getByRole('row', { name: /laptop/ });
    expect(await textOf(row)).toContain(`${secret.slice(0, 12)}…`);
    expect(await textOf(row)).toMatch(/free.*active.*never/);
    await h.check('05-key-created');
    await h.checkVariants('05-key-created');
    keyId = (await s.gw.db.sql<Array<{ id: string }>>`SELECT id FROM api_keys WHERE display_prefix = ${secret.slice(0, 12)}`)[0]!.id;

    // Stored: the secret leaves the page, and the list never shows it.
    await panel.getByRole('button', { name: 'I have stored it' }).click();
    await panel.waitFor({ state: 'detached' });
    expect(await s.page.content()).not.toContain(secret);
    await s.page.reload();
    await s.page.getByRole('row', { name: /laptop/ }).waitFor();
    expect(await s.page.content()).not.toContain(secret.slice(12));
  });

  it('streams an answer in the playground with the pasted key, token by token, and stops on demand', async () => {
    await h.nav().getByRole('link', { name: 'Playground' }).click();
    await s.page.waitForURL(/\/playground$/);
    const keyInput = s.page.getByLabel('API key');
    expect(await keyInput.inputValue()).toBe('');
    // Paste the copied key from the clipboard, as a person would.
    await keyInput.focus();
    await s.page.keyboard.press('Control+V');
    if ((await keyInput.inputValue()) === '') await keyInput.fill(await s.page.evaluate(() => navigator.clipboard.readText()));
    expect(await keyInput.inputValue()).toBe(secret);
    await s.page.getByRole('button', { name: 'Use this key' }).click();
    await waitForText(s.page.getByText(/Key accepted/), /2 models available/);
    expect(await s.page.getByLabel('Model').locator('option').allTextContents()).toEqual(['mock-model', 'mock-model-large']);

    // Events 400 ms apart: the first words are on screen while the stream is still open.
    s.mock.set({ events: 6, eventDelayMs: 400 });
    await s.page.getByLabel('Model').selectOption('mock-model-large');
    await s.page.getByLabel('Prompt').fill('Say something in six words.');
    await s.page.getByRole('button', { name: 'Send' }).click();
    const output = s.page.locator('#playground-output');
    const partial = await s.page.waitForFunction(() => {
      const o = document.getElementById('playground-output');
      return o && o.getAttribute('aria-busy') === 'true' && (o.textContent ?? '').length > 0 ? o.textContent : null;
    });
    const firstSeen = String(await partial.jsonValue());
    expect(firstSeen.length).toBeGreaterThan(0);
    await h.check('06-playground-streaming');
    await waitForText(s.page.locator('.stream-status'), /^Done\. \d+ prompt \+ 6 completion tokens\./, 15_000);
    const full = await textOf(output);
    expect(full.startsWith(firstSeen)).toBe(true);
    expect(full.length).toBeGreaterThan(firstSeen.length);
    expect(await output.getAttribute('aria-busy')).toBe('false');
    expect(await output.getAttribute('role')).toBe('log');
    await h.check('07-playground-done');
    await h.checkVariants('07-playground-done');
    // The key went to the gateway as a bearer token, not with the session cookie.
    const seen = s.mock.requests.filter((r) => r.path === '/v1/chat/completions');
    expect(JSON.parse(seen.at(-1)!.body.toString())).toMatchObject({
      model: 'mock-model-large',
      stream: true,
      messages: [{ role: 'user', content: 'Say something in six words.' }],
    });

    // Stop: the browser aborts the request and the gateway aborts the upstream one.
    s.mock.set({ events: 200, eventDelayMs: 300 });
    const upstreamRequest = new Promise<{ early: boolean }>((resolve) => {
      const off = s.mock.onRequest((r) => {
        if (r.path !== '/v1/chat/completions') return;
        off();
        void r.closed.then(resolve);
      });
    });
    await s.page.getByRole('button', { name: 'Send' }).click();
    await s.page.waitForFunction(() => (document.getElementById('playground-output')?.textContent ?? '').length > 0);
    await s.page.getByRole('button', { name: 'Stop' }).click();
    await waitForText(s.page.locator('.stream-status'), /^Stopped\./);
    expect(await upstreamRequest).toEqual({ early: true });
    expect(await s.page.getByRole('button', { name: 'Send' }).isEnabled()).toBe(true);
    s.mock.set({ events: 8, eventDelayMs: 0 });
  });

  it('shows the request in the usage chart', async () => {
    await h.nav().getByRole('link', { name: 'Usage' }).click();
    await s.page.waitForURL(/\/usage$/);
    const row = s.page.locator(`tr[data-key-id="${keyId}"]`);
    // Counters reach Redis within a flush (200 ms here): refresh until they show.
    await waitUntil(
      async () => {
        await s.page.getByRole('button', { name: 'Refresh' }).click();
        const cells = await row.locator('td').allTextContents();
        return Number(cells[0]) >= 2 ? cells : null;
      },
      { timeoutMs: 15_000, intervalMs: 300, message: 'usage row' },
    );
    const cells = await row.locator('td').allTextContents();
    expect(Number(cells[0])).toBeGreaterThanOrEqual(2); // requests, last hour
    expect(Number(cells[1].replace(/\D/g, ''))).toBeGreaterThan(0); // tokens
    expect(cells[2]).toBe('0'); // 429s
    const figure = s.page.locator('figure.chart');
    expect(Number(await figure.getAttribute('data-requests'))).toBeGreaterThanOrEqual(2);
    expect(await s.page.locator('figure.chart canvas').count()).toBeGreaterThan(0);
    await s.page.getByLabel('Chart').selectOption(keyId);
    expect(Number(await figure.getAttribute('data-requests'))).toBeGreaterThanOrEqual(2);
    await h.check('08-usage');
    await h.checkVariants('08-usage');
  });

  it('revokes the key after confirmation, and the key stops working', async () => {
    await h.gotoPath('/keys');
    const revoke = s.page.getByRole('button', { name: /^Revoke key “laptop”/ });
    await revoke.click();
    const dialog = s.page.getByRole('dialog', { name: /Revoke “laptop”/ });
    await dialog.waitFor();
    // Focus starts on Cancel: Enter by mistake does not revoke.
    expect(await s.page.evaluate(() => document.activeElement?.textContent)).toBe('Cancel');
    await h.check('10-revoke-confirm');
    await s.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await textOf(s.page.getByRole('row', { name: /laptop/ }))).toContain('active');
    await revoke.click();
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await waitForText(s.page.getByRole('row', { name: /laptop/ }), /revoked/);
    await h.check('11-key-revoked');

    const res = await request(`${s.gw.url}/v1/models`, { dispatcher: s.gw.dispatcher, headers: { authorization: `Bearer ${secret}` } });
    expect(res.statusCode).toBe(401);
    expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('key_revoked');
    // The playground says so too.
    await h.nav().getByRole('link', { name: 'Playground' }).click();
    await s.page.getByLabel('API key').fill(secret);
    await s.page.getByRole('button', { name: 'Use this key' }).click();
    await waitUntil(async () => /revoked/.test(await h.fieldError(s.page.getByLabel('API key'))), {
      timeoutMs: 10_000,
      message: 'revoked key error',
    });
    await h.logOut();
    // No CSP violation and no script error on any page of the run.
    expect(s.browser.problems).toEqual([]);
  });
});
