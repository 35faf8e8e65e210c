import uPlot from 'uplot';
import { h } from './dom.js';
import { formatNumber, formatTime } from './format.js';

/**
 * A per-minute usage chart (uPlot, canvas). Colours come from the page's CSS custom properties,
 * so the chart follows the light or dark scheme, and it is redrawn when the system switches.
 * The canvas is hidden from assistive technology: the same numbers are in the usage table and
 * in a text summary next to it.
 */
export interface Series {
  /** Bucket start times, unix seconds, one per minute. */
  t: number[];
  requests: number[];
  rateLimited: number[];
  tokens: number[];
}

const cssVar = (name: string): string => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

function options(width: number): uPlot.Options {
  const text = cssVar('--text-muted');
  const grid = cssVar('--border');
  const axis = (scale: string, side: 0 | 1 | 2 | 3, label?: string): uPlot.Axis => ({
    scale,
    side,
    stroke: text,
    grid: { stroke: grid, width: 1, show: side === 3 },
    ticks: { stroke: grid, width: 1 },
    label,
    labelSize: label ? 20 : 0,
  });
  return {
    width,
    height: 220,
    cursor: { drag: { x: false, y: false } },
    legend: { show: true, live: true },
    scales: {
      x: { time: true },
      req: { auto: true, range: (_u, _min, max) => [0, Math.max(1, max)] },
      tok: { auto: true, range: (_u, _min, max) => [0, Math.max(10, max)] },
    },
    series: [
      { label: 'Time', value: (_u, v) => (v === null ? '—' : formatTime(v * 1000)) },
      {
        label: 'Requests',
        scale: 'req',
        stroke: cssVar('--chart-1'),
        width: 2,
        points: { show: false },
        value: (_u, v) => (v === null ? '—' : formatNumber(v)),
      },
      {
        label: '429s',
        scale: 'req',
        stroke: cssVar('--chart-2'),
        width: 2,
        dash: [6, 4],
        points: { show: false },
        value: (_u, v) => (v === null ? '—' : formatNumber(v)),
      },
      {
        label: 'Tokens',
        scale: 'tok',
        stroke: cssVar('--chart-3'),
        width: 2,
        dash: [2, 3],
        points: { show: false },
        value: (_u, v) => (v === null ? '—' : formatNumber(v)),
      },
    ],
    axes: [
      { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
      axis('req', 3, 'Requests'),
      axis('tok', 1, 'Tokens'),
    ],
  };
}

export interface UsageChart {
  node: HTMLElement;
  update(series: Series): void;
  destroy(): void;
}

export function usageChart(caption: string): UsageChart {
  const plotHolder = h('div', { class: 'chart-plot', 'aria-hidden': 'true' });
  const summary = h('p', { class: 'visually-hidden' });
  const figure = h('figure', { class: 'chart' }, h('figcaption', null, caption), plotHolder, summary);
  let plot: uPlot | null = null;
  let last: Series | null = null;

  const draw = (): void => {
    if (!last) return;
    const data: uPlot.AlignedData = [last.t, last.requests, last.rateLimited, last.tokens];
    plot?.destroy();
    plot = new uPlot(options(Math.max(280, plotHolder.clientWidth || 600)), data, plotHolder);
  };
  const scheme = window.matchMedia('(prefers-color-scheme: dark)');
  const onScheme = (): void => draw();
  scheme.addEventListener('change', onScheme);
  const resize = new ResizeObserver(() => {
    if (plot && Math.abs(plot.width - plotHolder.clientWidth) > 8)
      plot.setSize({ width: Math.max(280, plotHolder.clientWidth), height: 220 });
  });
  resize.observe(plotHolder);

  return {
    node: figure,
    update(series) {
      last = series;
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const requests = sum(series.requests);
      figure.dataset.requests = String(requests);
      figure.dataset.tokens = String(sum(series.tokens));
      const busiest = series.requests.reduce((best, v, i) => (v > (series.requests[best] ?? 0) ? i : best), 0);
      summary.textContent =
        requests === 0
          ? 'No requests in this period.'
          : `${formatNumber(requests)} requests, ${formatNumber(sum(series.rateLimited))} refused with 429, ${formatNumber(sum(series.tokens))} tokens; busiest minute ${formatTime((series.t[busiest] ?? 0) * 1000)} with ${formatNumber(series.requests[busiest] ?? 0)} requests.`;
      draw();
    },
    destroy() {
      scheme.removeEventListener('change', onScheme);
      resize.disconnect();
      plot?.destroy();
    },
  };
}
