import { ApiError, portal } from '../api.js';
import { usageChart, type Series } from '../chart.js';
import { h, pageHeading, scrollRegion } from '../dom.js';
import { selectField } from '../forms.js';
import { formatNumber, formatTime } from '../format.js';
import type { Page, PageContext } from '../router.js';

/** GET /portal/usage (README): per key, the buckets that had traffic, and totals. */
interface Counts {
  requests: number;
  rateLimited: number;
  promptTokens: number;
  completionTokens: number;
}
interface UsageKey {
  id: string;
  name: string;
  prefix: string;
  status: string;
  totals: Counts;
  points: Array<Counts & { t: number }>;
}
interface UsageAnswer {
  bucketSeconds: number;
  since: number;
  until: number;
  keys: UsageKey[];
}

const REFRESH_MS = 15_000;
const ALL = '';
const tokens = (c: Counts): number => c.promptTokens + c.completionTokens;

/** Minute buckets over the answer's range, zero where a key had no traffic, summed over `keys`. */
function seriesOf(answer: UsageAnswer, keys: UsageKey[]): Series {
  const step = answer.bucketSeconds * 1000;
  const n = Math.round((answer.until + 1 - answer.since) / step);
  const s: Series = {
    t: [],
    requests: new Array<number>(n).fill(0),
    rateLimited: new Array<number>(n).fill(0),
    tokens: new Array<number>(n).fill(0),
  };
  for (let i = 0; i < n; i++) s.t.push((answer.since + i * step) / 1000);
  for (const k of keys) {
    for (const p of k.points) {
      const i = Math.round((p.t - answer.since) / step);
      if (i < 0 || i >= n) continue;
      s.requests[i]! += p.requests;
      s.rateLimited[i]! += p.rateLimited;
      s.tokens[i]! += tokens(p);
    }
  }
  return s;
}

export async function renderUsage(ctx: PageContext): Promise<Page> {
  const picker = selectField({ name: 'usage-key', label: 'Chart', required: true });
  const chart = usageChart('Requests, 429s and tokens per minute over the last hour');
  const tableHolder = h('div');
  const updated = h('p', { class: 'muted' });
  const refreshButton = h('button', { type: 'button' }, 'Refresh');
  let hour: UsageAnswer | null = null;

  const keyName = (k: Pick<UsageKey, 'name' | 'prefix'>) => (k.name ? `${k.name} (${k.prefix}…)` : `${k.prefix}…`);

  const drawChart = (): void => {
    if (!hour) return;
    const chosen = picker.input.value === ALL ? hour.keys : hour.keys.filter((k) => k.id === picker.input.value);
    chart.update(seriesOf(hour, chosen));
  };

  function table(hourA: UsageAnswer, day: UsageAnswer): HTMLElement {
    const dayOf = new Map(day.keys.map((k) => [k.id, k.totals]));
    const num = (n: number) => h('td', { class: 'num' }, formatNumber(n));
    const rows = hourA.keys.map((k) => {
      const d = dayOf.get(k.id) ?? { requests: 0, rateLimited: 0, promptTokens: 0, completionTokens: 0 };
      return h(
        'tr',
        { 'data-key-id': k.id },
        h('th', { scope: 'row' }, keyName(k), k.status === 'active' ? null : h('span', { class: 'muted' }, ` · ${k.status}`)),
        num(k.totals.requests),
        num(tokens(k.totals)),
        num(k.totals.rateLimited),
        num(d.requests),
        num(tokens(d)),
        num(d.rateLimited),
      );
    });
    const cols = ['Requests', 'Tokens', '429s'];
    const head = h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('td', null),
        h('th', { scope: 'colgroup', colspan: 3 }, 'Last hour'),
        h('th', { scope: 'colgroup', colspan: 3 }, 'Last 24 hours'),
      ),
      h('tr', null, h('th', { scope: 'col' }, 'Key'), ...[...cols, ...cols].map((c) => h('th', { scope: 'col', class: 'num' }, c))),
    );
    return scrollRegion('Usage per key', h('table', { class: 'table usage-table' }, head, h('tbody', null, ...rows)));
  }

  async function refresh(announce: boolean): Promise<void> {
    refreshButton.disabled = true;
    try {
      const [h1, d1] = await Promise.all([
        portal<UsageAnswer>('GET', '/portal/usage?window=m1'),
        portal<UsageAnswer>('GET', '/portal/usage?window=h1'),
      ]);
      hour = h1;
      const chosen = picker.input.value;
      picker.input.replaceChildren(
        h('option', { value: ALL }, 'All keys'),
        ...h1.keys.map((k) => h('option', { value: k.id }, keyName(k))),
      );
      picker.input.value = h1.keys.some((k) => k.id === chosen) ? chosen : ALL;
      tableHolder.replaceChildren(
        h1.keys.length === 0 ? h('p', { class: 'muted' }, 'No keys yet: create one on the API keys page, then use it.') : table(h1, d1),
      );
      drawChart();
      updated.textContent = `Updated at ${formatTime(Date.now())}. Counters reach this page within a few seconds of each request.`;
      if (announce) ctx.announce('Usage updated.');
    } catch (e) {
      updated.textContent = e instanceof ApiError ? e.message : 'Usage could not be loaded; retry.';
    } finally {
      refreshButton.disabled = false;
    }
  }

  picker.input.addEventListener('change', drawChart);
  refreshButton.addEventListener('click', () => void refresh(true));
  const node = h(
    'div',
    { class: 'page' },
    pageHeading('Usage'),
    h('p', { class: 'lede' }, 'Requests, tokens (prompt + completion) and rate-limited requests (429) per key.'),
    h('div', { class: 'toolbar' }, picker.wrap, refreshButton),
    updated,
    chart.node,
    h('section', { 'aria-labelledby': 'usage-table-title' }, h('h2', { id: 'usage-table-title' }, 'Per key'), tableHolder),
  );
  await refresh(false);
  const timer = window.setInterval(() => {
    if (document.visibilityState === 'visible') void refresh(false);
  }, REFRESH_MS);
  // uPlot measures its container: draw again once the page is in the document.
  requestAnimationFrame(drawChart);
  return {
    node,
    dispose() {
      window.clearInterval(timer);
      chart.destroy();
    },
  };
}
