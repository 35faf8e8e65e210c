import { ApiError, portal } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { h, pageHeading, scrollRegion, uid } from '../dom.js';
import { formAlert, inputField } from '../forms.js';
import { formatDate } from '../format.js';
import { setPlaygroundKey } from '../playground-key.js';
import type { Page, PageContext } from '../router.js';

export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  status: 'active' | 'revoked' | 'suspended';
  tier: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const keyLabel = (k: Pick<KeyView, 'name' | 'prefix'>): string => (k.name ? `“${k.name}” (${k.prefix}…)` : `${k.prefix}…`);

export async function renderKeys(ctx: PageContext): Promise<Page> {
  const listHolder = h('div');
  const secretHolder = h('div');
  const createHeading = h('h2', { id: uid('create'), tabindex: -1 }, 'Create a key');

  async function refresh(): Promise<void> {
    const { keys } = await portal<{ keys: KeyView[] }>('GET', '/portal/keys');
    listHolder.replaceChildren(keys.length === 0 ? h('p', { class: 'muted' }, 'No keys yet. Create one above.') : keyTable(keys));
  }

  function keyTable(keys: KeyView[]): HTMLElement {
    const rows = keys.map((k) => {
      const revoke =
        k.status === 'active'
          ? h('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke key ${keyLabel(k)}` }, 'Revoke')
          : null;
      revoke?.addEventListener('click', () => void onRevoke(k));
      return h(
        'tr',
        { class: k.status === 'active' ? null : 'inactive' },
        h('th', { scope: 'row' }, k.name || h('span', { class: 'muted' }, 'unnamed')),
        h('td', null, h('code', null, `${k.prefix}…`)),
        h('td', null, k.tier),
        h('td', null, h('span', { class: `status status-${k.status}` }, k.status)),
        h('td', null, formatDate(k.createdAt)),
        h('td', null, formatDate(k.lastUsedAt)),
        h('td', null, revoke),
      );
    });
    const head = h(
      'tr',
      null,
      ...['Name', 'Prefix', 'Tier', 'Status', 'Created', 'Last used'].map((c) => h('th', { scope: 'col' }, c)),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
    );
    return scrollRegion('Your API keys', h('table', { class: 'table' }, h('thead', null, head), h('tbody', null, ...rows)));
  }

  async function onRevoke(k: KeyView): Promise<void> {
    const answer = await confirmDialog({
      title: `Revoke ${keyLabel(k)}?`,
      body: 'Apps using this key stop working within a second on every gateway replica. Revoking cannot be undone.',
      confirmLabel: 'Revoke key',
      danger: true,
    });
    if (!answer.confirmed) return;
    try {
      await portal('DELETE', `/portal/keys/${encodeURIComponent(k.id)}`);
      await refresh();
      ctx.announce(`Key ${keyLabel(k)} revoked.`);
      createHeading.focus();
    } catch (e) {
      ctx.announce(e instanceof ApiError ? e.message : 'The key could not be revoked; retry.');
    }
  }

  function showSecret(name: string, prefix: string, secret: string): void {
    const titleId = uid('secret-title');
    const inputId = uid('secret');
    const status = h('p', { role: 'status', class: 'copy-status' });
    const input = h('input', {
      id: inputId,
      class: 'secret',
      type: 'text',
      readonly: true,
      spellcheck: 'false',
      autocomplete: 'off',
      'aria-describedby': `${titleId}-warn`,
    });
    input.value = secret;
    const copy = h('button', { type: 'button', class: 'primary' }, 'Copy');
    copy.addEventListener('click', () => {
      navigator.clipboard.writeText(secret).then(
        () => (status.textContent = 'Copied to the clipboard.'),
        () => {
          // No clipboard permission: select it so Ctrl+C / long-press copies it.
          input.focus();
          input.select();
          status.textContent = 'Copying is blocked here: the secret is selected, press Ctrl+C (⌘C) to copy it.';
        },
      );
    });
    const tryIt = h('button', { type: 'button' }, 'Try it in the playground');
    tryIt.addEventListener('click', () => {
      setPlaygroundKey(secret, name || prefix);
      ctx.navigate('/playground');
    });
    const done = h('button', { type: 'button' }, 'I have stored it');
    const panel = h(
      'section',
      { class: 'secret-panel', 'aria-labelledby': titleId, tabindex: -1 },
      h('h2', { id: titleId }, name ? `Key “${name}” created` : 'Key created'),
      h(
        'p',
        { class: 'warning', id: `${titleId}-warn` },
        h('strong', null, 'Copy this secret now: it is shown only once.'),
        ' Fluxgate keeps only a hash of it and cannot show it again. If you lose it, revoke the key and create another.',
      ),
      h('label', { for: inputId }, 'Secret key'),
      h('div', { class: 'secret-row' }, input, copy),
      status,
      h('div', { class: 'actions' }, tryIt, done),
    );
    done.addEventListener('click', () => {
      secretHolder.replaceChildren();
      createHeading.focus();
    });
    secretHolder.replaceChildren(panel);
    panel.focus();
  }

  const name = inputField({ name: 'name', label: 'Name', maxlength: 100, hint: 'A label for you, such as “laptop” or “ci”.' });
  const alert = formAlert();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create key');
  const form = h(
    'form',
    { class: 'stack narrow', novalidate: true, 'aria-labelledby': createHeading.id },
    alert.node,
    name.wrap,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    alert.show(null);
    name.setError(null);
    submit.disabled = true;
    portal<{ key: KeyView; secret: string }>('POST', '/portal/keys', { name: name.input.value.trim() })
      .then(async ({ key, secret }) => {
        name.input.value = '';
        showSecret(key.name, key.prefix, secret);
        await refresh();
      })
      .catch((err: unknown) => {
        const msg = err instanceof ApiError ? err : null;
        if (msg?.field === 'name') name.setError(msg.detail);
        else alert.show(msg?.message ?? 'The key could not be created; retry.');
      })
      .finally(() => (submit.disabled = false));
  });

  await refresh();
  return {
    node: h(
      'div',
      { class: 'page' },
      pageHeading('API keys'),
      h(
        'p',
        { class: 'lede' },
        'Keys let your apps call the gateway: ',
        h('code', null, 'Authorization: Bearer fgk_…'),
        ' on /v1 (OpenAI-compatible) or /api (Ollama). Every key of your account shares its ',
        h('strong', null, ctx.user?.tier ?? 'free'),
        ' tier.',
      ),
      h('section', { 'aria-labelledby': createHeading.id }, createHeading, form),
      secretHolder,
      h('section', { 'aria-labelledby': 'keys-title' }, h('h2', { id: 'keys-title' }, 'Your keys'), listHolder),
    ),
  };
}
