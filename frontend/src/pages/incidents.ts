import { ApiError, portal } from '../api.js';
import { h, pageHeading, scrollRegion, uid } from '../dom.js';
import { inputField } from '../forms.js';
import { DETECTOR_LABELS, formatDate, formatNumber, formatRelative, humanise } from '../format.js';
import type { Page, PageContext } from '../router.js';

/** The fields of a contracts incident record the page shows. */
export interface Incident {
  id: string;
  at: number;
  source: 'guard' | 'operator';
  keyId: string | null;
  keyPrefix: string | null;
  ownerEmail: string | null;
  tier: string | null;
  clientIp: string | null;
  /** Null for an operator's action that answers no detector (an allowlist change). */
  detector: string | null;
  mode: 'enforce' | 'shadow';
  evidence: Record<string, number>;
  thresholds: Record<string, number>;
  alsoTripped: string[];
  action: string;
  level: string | null;
  expiresAt: number | null;
  suppressedBy: string | null;
  status: string;
  actor: string | null;
  reason: string | null;
  summary: string | null;
  summarySource: 'model' | 'template' | null;
}

interface IncidentPage {
  incidents: Incident[];
  next: string | null;
}

const ACTIONS: Record<string, string> = {
  penalty: 'Penalty box',
  escalate: 'Escalated',
  ip_block: 'IP blocked',
  none: 'No action',
  pardon: 'Pardoned',
  operator_throttle: 'Throttled by an operator',
  allowlist_add: 'Added to the allowlist',
  allowlist_remove: 'Removed from the allowlist',
  mode_change: 'Detector mode changed',
};

/** The card's title: the guard's detector, or "Operator action" and what it was. */
export function incidentTitle(i: Pick<Incident, 'source' | 'detector' | 'action'>): string {
  if (i.source === 'operator') return `Operator action: ${ACTIONS[i.action] ?? i.action}`;
  return i.detector === null ? 'Unknown detector' : (DETECTOR_LABELS[i.detector] ?? i.detector);
}

function evidenceTable(i: Incident): HTMLElement | null {
  const names = [...new Set([...Object.keys(i.evidence), ...Object.keys(i.thresholds)])];
  if (names.length === 0) return null;
  const cell = (v: number | undefined) => h('td', { class: 'num' }, v === undefined ? '—' : formatNumber(v));
  return scrollRegion(
    'Evidence',
    h(
      'table',
      { class: 'table evidence' },
      h('caption', null, 'Evidence'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'Measure'),
          h('th', { scope: 'col', class: 'num' }, 'Value'),
          h('th', { scope: 'col', class: 'num' }, 'Threshold'),
        ),
      ),
      h(
        'tbody',
        null,
        ...names.map((n) => h('tr', null, h('th', { scope: 'row' }, humanise(n)), cell(i.evidence[n]), cell(i.thresholds[n]))),
      ),
    ),
  );
}

export function incidentCard(i: Incident): HTMLElement {
  const titleId = uid('incident');
  const operator = i.source === 'operator';
  const subject = i.keyPrefix
    ? `key ${i.keyPrefix}…`
    : i.clientIp
      ? `IP ${i.clientIp}`
      : operator && i.action === 'mode_change' && i.detector
        ? `detector ${DETECTOR_LABELS[i.detector] ?? i.detector}`
        : operator
          ? 'see the summary'
          : 'unknown subject';
  const facts: Array<[string, Node | string]> = [
    ['When', `${formatDate(i.at)} (${formatRelative(i.at)})`],
    ...(operator ? ([['By', i.actor ?? 'unknown']] as Array<[string, string]>) : []),
    ['Subject', subject],
    ['Owner', i.ownerEmail ?? '—'],
    [
      'Action',
      `${ACTIONS[i.action] ?? i.action}${i.level ? ` · ${i.level}` : ''}${i.expiresAt && i.status === 'open' ? ` · ends ${formatRelative(i.expiresAt)}` : ''}`,
    ],
    ['Status', h('span', { class: `status status-${i.status}` }, i.status)],
  ];
  if (!operator && (i.mode === 'shadow' || i.suppressedBy))
    facts.push(['Not enforced', i.suppressedBy ? humanise(i.suppressedBy) : 'shadow mode']);
  if (operator && i.action === 'mode_change') facts.push(['Mode', i.mode]);
  if (operator && i.detector && i.action !== 'mode_change') facts.push(['Detector', DETECTOR_LABELS[i.detector] ?? i.detector]);
  if (i.alsoTripped.length) facts.push(['Also tripped', i.alsoTripped.map((d) => DETECTOR_LABELS[d] ?? d).join(', ')]);
  if (!operator && i.actor) facts.push(['By', i.actor]);
  if (operator || i.reason) facts.push(['Reason', i.reason ?? '—']);
  return h(
    'li',
    null,
    h(
      'article',
      { class: `incident card ${i.source}`, 'aria-labelledby': titleId, 'data-incident-id': i.id },
      h('h2', { id: titleId, class: 'card-title' }, incidentTitle(i), operator ? h('span', { class: 'badge' }, 'operator') : null),
      h('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      i.summary
        ? h(
            'p',
            { class: 'summary' },
            i.summary,
            h('span', { class: 'muted' }, ` (summary: ${i.summarySource === 'model' ? 'written by the model' : 'template'})`),
          )
        : h('p', { class: 'summary muted' }, 'Summary pending.'),
      evidenceTable(i),
    ),
  );
}

export async function renderIncidents(ctx: PageContext): Promise<Page> {
  const keyFilter = ctx.query.get('key') ?? '';
  const list = h('ol', { class: 'cards', 'aria-label': 'Incidents, newest first' });
  const more = h('button', { type: 'button', hidden: true }, 'Show older incidents');
  const count = h('p', { class: 'muted', role: 'status' });
  let next: string | null = null;

  async function load(before: string | null): Promise<void> {
    const q = new URLSearchParams({ limit: '25' });
    if (keyFilter) q.set('key', keyFilter);
    if (before) q.set('before', before);
    const page = await portal<IncidentPage>('GET', `/portal/operator/incidents?${q}`);
    list.append(...page.incidents.map(incidentCard));
    next = page.next;
    more.hidden = next === null;
    const shown = list.children.length;
    count.textContent =
      shown === 0
        ? keyFilter
          ? `No incidents for ${keyFilter}.`
          : 'No incidents: the guard has not had to act.'
        : `${shown} incident${shown === 1 ? '' : 's'} shown${keyFilter ? ` for ${keyFilter}` : ''}.`;
  }

  more.addEventListener('click', () => {
    const first = list.children.length;
    load(next).then(
      () => {
        // Keyboard users continue at the first incident that was added.
        const heading = list.children[first]?.querySelector('h2');
        if (heading) {
          heading.tabIndex = -1;
          heading.focus();
        }
      },
      (e: unknown) => ctx.announce(e instanceof ApiError ? e.message : 'Older incidents could not be loaded.'),
    );
  });

  const filter = inputField({
    name: 'key',
    label: 'Key id or prefix',
    value: keyFilter,
    maxlength: 64,
    hint: 'For example fgk_AbC123 or a key id; empty for all.',
  });
  const apply = h('button', { type: 'submit', class: 'primary' }, 'Filter');
  const form = h(
    'form',
    { class: 'toolbar', role: 'search', novalidate: true },
    filter.wrap,
    apply,
    keyFilter ? h('a', { href: '/operator/incidents', class: 'button-link' }, 'Show all') : null,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = filter.input.value.trim();
    ctx.navigate(v ? `/operator/incidents?key=${encodeURIComponent(v)}` : '/operator/incidents');
  });

  try {
    await load(null);
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== 'bad_request') throw e;
    filter.setError(e.detail);
  }
  return {
    node: h(
      'div',
      { class: 'page' },
      pageHeading('Incidents'),
      h(
        'p',
        { class: 'lede' },
        'What the guard detected and did, and what operators changed, newest first. Pardon a key from the ',
        h('a', { href: '/operator/penalties' }, 'penalty box'),
        '.',
      ),
      form,
      count,
      list,
      more,
    ),
  };
}
