/**
 * Issue 15 end to end, the operator's side, in headless Debian Chromium against the real data
 * plane and the real guard (harness.ts): a key that enumerates models is penalised by the guard,
 * an operator sees the incident with its model-written summary, filters by key and pardons it with
 * a reason (grace, operator incident, the guard closing its incident); an account without the
 * operator role cannot reach any of it (403). Screenshots and axe-core as in user-flow.test.ts
 * (frontend/test-output/a11y-operator.json).
 */
import { getPenalty, graceRecordSchema, redisKeys } from '@fluxgate/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../../data-plane/test/support/services.js';
import { PASSWORD, helpers, startStack, textOf, waitForText, type Stack } from './harness.js';

let s: Stack;
let h: ReturnType<typeof helpers>;
beforeAll(async () => {
  s = await startStack({ name: 'operator', guard: true });
  h = helpers(s);
  s.ollama!.answer =
    'The key asked for many different models in a few seconds, which looks like model enumeration; it was moved to a penalty tier.';
}, 90_000);
afterAll(async () => {
  await s?.stop();
});

describe("the operator's pages in Chromium", () => {
  it('an account without the operator role sees no operator pages and gets 403 from their routes', async () => {
    const reg = await h.post('/portal/register', { email: 'plainuser@example.com', password: PASSWORD });
    expect(reg.statusCode).toBe(201);
    await h.logIn('plainuser@example.com');
    const nav = h.nav();
    expect(await nav.getByRole('link', { name: 'Incidents' }).count()).toBe(0);
    await h.gotoPath('/operator/incidents');
    await s.page.getByRole('heading', { level: 1, name: 'Operators only' }).waitFor();
    const statuses = await s.page.evaluate(async () => {
      const headers = { 'x-fluxgate-csrf': '1', 'content-type': 'application/json' };
      return Promise.all([
        fetch('/portal/operator/incidents').then((r) => r.status),
        fetch('/portal/operator/penalties').then((r) => r.status),
        fetch('/portal/operator/penalties/00000000-0000-4000-8000-000000000000/pardon', {
          method: 'POST',
          headers,
          body: '{"reason":"me"}',
        }).then((r) => r.status),
      ]);
    });
    expect(statuses).toEqual([403, 403, 403]);
    await h.check('09-operators-only');
    await h.logOut();
  });

  it('an operator sees the incident the guard wrote and pardons the key with a reason', async () => {
    // Another account's key enumerates models: 10 distinct models within seconds.
    const abuser = await s.gw.issueKey('mallory@example.com');
    for (let i = 0; i < 10; i++) {
      const r = await h.post(
        '/v1/chat/completions',
        { model: `probe-${i}`, max_tokens: 8, messages: [{ role: 'user', content: `hi ${i}` }] },
        { authorization: `Bearer ${abuser.secret}` },
      );
      await r.body.dump();
    }
    const penalty = await waitUntil(() => getPenalty(s.redis, abuser.id), {
      timeoutMs: 20_000,
      intervalMs: 100,
      message: 'the guard penalises the enumerating key',
    });
    expect(penalty.setBy).toBe('guard');
    const incidentId = penalty.incidentId!;
    await waitUntil(() => s.redis.hexists(redisKeys.incidentSummaries(), incidentId), { timeoutMs: 15_000, message: 'incident summary' });

    const reg = await h.post('/portal/register', { email: 'grace@example.com', password: PASSWORD });
    expect(reg.statusCode).toBe(201);
    await s.gw.db.sql`UPDATE users SET role = 'operator' WHERE email = 'grace@example.com'`;
    await h.logIn('grace@example.com');
    const nav = h.nav();
    await nav.getByRole('link', { name: 'Incidents' }).click();
    await s.page.waitForURL(/\/operator\/incidents$/);
    const card = s.page.locator(`article[data-incident-id="${incidentId}"]`);
    await card.waitFor();
    const prefix = (await s.gw.db.sql<Array<{ display_prefix: string }>>`SELECT display_prefix FROM api_keys WHERE id = ${abuser.id}`)[0]!
      .display_prefix;
    const cardText = await textOf(card);
    expect(cardText).toContain('Model enumeration');
    expect(cardText).toContain(`key ${prefix}…`);
    expect(cardText).toContain('mallory@example.com');
    expect(cardText).toContain(s.ollama!.answer);
    expect(cardText).toContain('written by the model');
    expect(await textOf(card.locator('table.evidence'))).toMatch(/distinct models/i);
    await h.check('12-incidents');
    await h.checkVariants('12-incidents');

    // Filter by the key's prefix.
    await s.page.getByLabel('Key id or prefix').fill(prefix);
    await s.page.getByRole('button', { name: 'Filter' }).click();
    await s.page.waitForURL(new RegExp(`key=${prefix}$`));
    await card.waitFor();
    expect(await s.page.locator('article.incident').count()).toBe(1);
    await s.page.getByLabel('Key id or prefix').fill('fgk_NoSuchKey');
    await s.page.getByRole('button', { name: 'Filter' }).click();
    await waitForText(s.page.getByRole('status').filter({ hasText: 'No incidents' }), /No incidents for fgk_NoSuchKey/);

    await nav.getByRole('link', { name: 'Penalty box' }).click();
    await s.page.waitForURL(/\/operator\/penalties$/);
    const row = s.page.locator(`tr[data-key-id="${abuser.id}"]`);
    await row.waitFor();
    expect(await textOf(row)).toMatch(new RegExp(`${prefix}.*mallory@example\\.com.*${penalty.level}.*guard.*Model enumeration`));
    await h.check('13-penalty-box');
    await h.checkVariants('13-penalty-box');

    await row.getByRole('button', { name: /^Pardon key / }).click();
    const dialog = s.page.getByRole('dialog', { name: /^Pardon / });
    await dialog.waitFor();
    // A reason is required.
    await dialog.getByRole('button', { name: 'Pardon' }).click();
    expect(await h.fieldError(dialog.getByLabel('Reason'))).toMatch(/at least 3 characters/);
    await h.check('14-pardon-dialog');
    await dialog.getByLabel('Reason').fill('A customer testing model routing; agreed with them');
    await dialog.getByRole('button', { name: 'Pardon' }).click();
    await waitForText(s.page.getByRole('status').filter({ hasText: 'Pardoned' }), /Pardoned .*No detector penalises it again before/);
    await waitForText(s.page.locator('main'), /The penalty box is empty/);
    await h.check('15-pardoned');

    // Lifted everywhere, on the guard's grace list, and written up as an operator incident.
    expect(await getPenalty(s.redis, abuser.id)).toBeNull();
    const grace = graceRecordSchema.parse(JSON.parse((await s.redis.get(redisKeys.pardonGrace(abuser.id)))!));
    expect(grace.keyId).toBe(abuser.id);
    const audit = await s.gw.db.sql`SELECT detail FROM audit_log WHERE action = 'penalty.lifted' AND key_id = ${abuser.id}`;
    expect(audit).toHaveLength(1);
    await nav.getByRole('link', { name: 'Incidents' }).click();
    const operatorCard = s.page.locator('article.incident.operator').first();
    await operatorCard.waitFor();
    expect(await textOf(operatorCard)).toMatch(
      /Operator action: Pardoned.*operator.*By.*portal:grace@example\.com.*Detector.*Model enumeration.*A customer testing model routing/s,
    );
    // The guard notices the pardon and closes its own incident as pardoned.
    await waitUntil(
      async () => {
        await s.page.reload();
        return /pardoned/.test(await textOf(s.page.locator(`article[data-incident-id="${incidentId}"] .status`)));
      },
      { timeoutMs: 15_000, intervalMs: 500, message: 'the guard marks its incident pardoned' },
    );
    await h.check('16-incidents-after-pardon');

    // No CSP violation and no script error on any page of the run.
    expect(s.browser.problems).toEqual([]);
  });
});
