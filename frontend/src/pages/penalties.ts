import { ApiError, portal } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { h, pageHeading, scrollRegion } from '../dom.js';
import { DETECTOR_LABELS, formatDate, formatRelative, formatTime } from '../format.js';
import type { Page, PageContext } from '../router.js';

/** GET /portal/operator/penalties: a contracts penalty record with its key and incident. */
interface PenaltyEntry {
  keyId: string;
  level: string;
  expiresAt: number;
  reason: string;
  incidentId: string | null;
  setBy: 'guard' | 'operator';
  setAt: number;
  key: { id: string; name: string; prefix: string; tier: string; status: string; ownerEmail: string } | null;
  /** The penalty's incident: the guard's (its detector), or the operator's throttle (detector null when it answers none). */
  incident: { id: string; detector: string | null; status: string; summary: string | null; at: number } | null;
}

interface PardonAnswer {
  lifted: boolean;
  graceUntil: number | null;
  incidentId: string | null;
}

export async function renderPenalties(_ctx: PageContext): Promise<Page> {
  const holder = h('div');
  const result = h('p', { class: 'notice success', role: 'status', hidden: true });
  const heading = pageHeading('Penalty box');

  const keyName = (p: PenaltyEntry): string => (p.key ? `${p.key.prefix}…${p.key.name ? ` (${p.key.name})` : ''}` : p.keyId);

  async function refresh(): Promise<void> {
    const { penalties, total } = await portal<{ penalties: PenaltyEntry[]; total: number }>('GET', '/portal/operator/penalties');
    if (penalties.length === 0) {
      holder.replaceChildren(h('p', { class: 'muted' }, 'The penalty box is empty: every key runs on its own tier.'));
      return;
    }
    const rows = penalties.map((p) => {
      const pardon = h('button', { type: 'button', class: 'small', 'aria-label': `Pardon key ${keyName(p)}` }, 'Pardon');
      pardon.addEventListener('click', () => void onPardon(p));
      const why = p.incident
        ? h(
            'span',
            null,
            p.incident.detector === null ? 'Operator action' : (DETECTOR_LABELS[p.incident.detector] ?? p.incident.detector),
            ' · ',
            h('a', { href: `/operator/incidents?key=${encodeURIComponent(p.keyId)}` }, 'incidents'),
          )
        : p.reason || '—';
      return h(
        'tr',
        { 'data-key-id': p.keyId },
        h('th', { scope: 'row' }, h('code', null, keyName(p))),
        h('td', null, p.key?.ownerEmail ?? '—'),
        h('td', null, p.level, p.key ? h('span', { class: 'muted' }, ` (own tier ${p.key.tier})`) : null),
        h('td', null, p.setBy),
        h('td', null, why),
        h(
          'td',
          null,
          h('time', { datetime: new Date(p.expiresAt).toISOString(), title: formatDate(p.expiresAt) }, formatRelative(p.expiresAt)),
        ),
        h('td', null, pardon),
      );
    });
    const head = h(
      'tr',
      null,
      ...['Key', 'Owner', 'Level', 'Set by', 'Why', 'Ends'].map((c) => h('th', { scope: 'col' }, c)),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
    );
    const table = scrollRegion(
      'Keys in the penalty box',
      h('table', { class: 'table' }, h('thead', null, head), h('tbody', null, ...rows)),
    );
    if (total > penalties.length)
      holder.replaceChildren(h('p', { class: 'muted' }, `Showing the ${penalties.length} that end soonest of ${total}.`), table);
    else holder.replaceChildren(table);
  }

  async function onPardon(p: PenaltyEntry): Promise<void> {
    const answer = await confirmDialog({
      title: `Pardon ${keyName(p)}?`,
      body: `The key returns to its own tier on every replica within a second.${p.setBy === 'guard' ? ' The guard will not penalise it again during its grace period.' : ''} Your name and reason are recorded as an incident.`,
      confirmLabel: 'Pardon',
      reason: {
        label: 'Reason',
        hint: 'Why this penalty was wrong or is no longer needed (kept with the incident).',
        minLength: 3,
        maxLength: 500,
      },
    });
    if (!answer.confirmed) return;
    try {
      const res = await portal<PardonAnswer>('POST', `/portal/operator/penalties/${encodeURIComponent(p.keyId)}/pardon`, {
        reason: answer.reason,
      });
      result.hidden = false;
      result.textContent = `Pardoned ${keyName(p)}.${res.graceUntil ? ` No detector penalises it again before ${formatTime(res.graceUntil)}.` : ''}`;
      await refresh();
      heading.focus();
    } catch (e) {
      result.hidden = false;
      result.textContent = e instanceof ApiError ? e.message : 'The pardon failed; retry.';
      await refresh().catch(() => undefined);
    }
  }

  await refresh();
  return {
    node: h(
      'div',
      { class: 'page' },
      heading,
      h(
        'p',
        { class: 'lede' },
        'Keys held on a penalty tier by the guard or an operator. A penalty ends by itself at its expiry; a pardon ends it now.',
      ),
      result,
      holder,
    ),
  };
}
