// Plain-text report: one table per phase, then ratios to direct (and fluxgate to nginx).
import { LOAD_SCENARIOS, round } from './load.mjs';

const fmt = (v) => (v === null || v === undefined || Number.isNaN(v) ? '–' : typeof v === 'number' ? v.toLocaleString('en-US') : String(v));

export function table(title, head, rows) {
  if (rows.length === 0) return '';
  const cells = [head, ...rows.map((r) => r.map(fmt))];
  const width = head.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(width[i]) : String(c).padStart(width[i]))).join('  ');
  return [`\n${title}`, line(head), width.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const codes = (status) =>
  Object.entries(status ?? {})
    .filter(([c]) => c < 200 || c >= 300)
    .map(([c, n]) => `${c}×${n}`)
    .join(' ') || '0';
const failures = (f) =>
  Object.entries(f ?? {})
    .map(([k, n]) => `${k}×${n}`)
    .join(' ') || '0';
const ratio = (a, b) => (a && b ? `${round(a / b, 2)}×` : '–');
const added = (a, b) => (Number.isFinite(a) && Number.isFinite(b) ? `${a - b >= 0 ? '+' : ''}${round(a - b, 2)}` : '–');

export function report(results) {
  const out = [];
  const skipped = Object.entries(results.skipped);
  if (skipped.length) out.push(...skipped.map(([t, why]) => `${t}: skipped (${why})`));

  out.push(
    table(
      'Load — autocannon closed loop; CPU = proxy utime+stime per response (direct: the mock itself); redis/pg = the shared servers (other clients included)',
      [
        'target',
        'scenario',
        'conns',
        'req/s',
        'p50 ms',
        'p99 ms',
        'CPU µs/req',
        'mock µs/req',
        'redis µs/req',
        'pg µs/req',
        'promoted B/req',
        'RSS MiB',
        'errors',
        'non-2xx',
      ],
      results.load.map((r) => [
        r.target,
        LOAD_SCENARIOS[r.scenario].label,
        r.connections,
        r.rps,
        r.p50,
        r.p99,
        r.cpuUsPerReq,
        r.mockCpuUsPerReq,
        r.redisCpuUsPerReq,
        r.pgCpuUsPerReq,
        r.gcPromotedPerReq,
        r.rssMiB,
        r.errors + r.timeouts,
        codes(r.status),
      ]),
    ),
  );

  out.push(
    table(
      'Idle RSS — each proxy after start and one smoke request',
      ['target', 'RSS MiB'],
      (results.idle ?? []).map((r) => [r.target, r.rssMiB]),
    ),
  );

  const direct = (arr) => arr.find((r) => r.target === 'direct');
  const d = direct(results.ttfb);
  out.push(
    table(
      'Time to first byte — paced streams (20 events, 5 ms apart)',
      ['target', 'n', 'conc', 'p50 ms', 'p99 ms', 'added p50', 'added p99', 'errors'],
      results.ttfb.map((r) => [r.target, r.n, r.concurrency, r.p50, r.p99, added(r.p50, d?.p50), added(r.p99, d?.p99), r.errors]),
    ),
  );

  out.push(
    table(
      'Open streams — RSS of the proxy with N paced streams open (direct: the mock)',
      ['target', 'opened', 'open s', 'RSS before', 'with', 'after', 'KiB/stream', 'upstream open', 'after close', 'failures'],
      results.open.map((r) => [
        r.target,
        `${r.stillOpen}/${r.requested}`,
        r.openSeconds,
        r.rssBeforeMiB,
        r.rssWithMiB,
        r.rssAfterMiB,
        r.kibPerStream,
        r.upstreamOpen,
        r.upstreamOpenAfter,
        failures(r.failures),
      ]),
    ),
  );

  out.push(
    table(
      'Slow readers — each client reads a large stream at a throttled rate; RSS MiB sampled every 250 ms',
      ['target', 'verified', 'MB each', 'MB/s each', 'seconds', 'RSS min', 'max', 'final', 'wrong bytes', 'wrong sha', 'failures'],
      results.slow.map((r) => [
        r.target,
        `${r.ok}/${r.clients}`,
        round(r.bytesEach / 1e6, 1),
        r.mbPerSecEach,
        r.seconds,
        r.rssMinMiB,
        r.rssMaxMiB,
        r.rssFinalMiB,
        r.wrongBytes,
        r.wrongHash,
        failures(r.failed),
      ]),
    ),
  );

  out.push(ratios(results));
  out.push(workersTable(results));
  return out.filter(Boolean).join('\n');
}

function ratios(results) {
  const find = (t, s, c) => results.load.find((r) => r.target === t && r.scenario === s && r.connections === c);
  const proxies = ['nginx', 'bare', 'fluxgate-before', 'fluxgate'].filter((t) => results.load.some((r) => r.target === t));
  const versusNginx = proxies.includes('nginx') ? proxies.filter((t) => t !== 'nginx') : [];
  const rows = [];
  for (const r of results.load.filter((x) => x.target === 'direct')) {
    const row = [LOAD_SCENARIOS[r.scenario].label, r.connections];
    for (const t of proxies) {
      const p = find(t, r.scenario, r.connections);
      row.push(ratio(p?.rps, r.rps), added(p?.p99, r.p99));
    }
    for (const t of versusNginx)
      row.push(ratio(find(t, r.scenario, r.connections)?.cpuUsPerReq, find('nginx', r.scenario, r.connections)?.cpuUsPerReq));
    rows.push(row);
  }
  const head = [
    'scenario',
    'conns',
    ...proxies.flatMap((t) => [`${t}/direct req/s`, `${t} added p99 ms`]),
    ...versusNginx.map((t) => `${t}/nginx CPU/req`),
  ];
  const text = [table('Ratios (same run, same mock)', head, rows)];
  const limitRows = results.load
    .filter((x) => x.target === 'fluxgate-nolimits')
    .map((off) => {
      const on = find('fluxgate', off.scenario, off.connections);
      return [
        LOAD_SCENARIOS[off.scenario].label,
        off.connections,
        ratio(on?.rps, off.rps),
        added(on?.p99, off.p99),
        ratio(on?.cpuUsPerReq, off.cpuUsPerReq),
      ];
    });
  text.push(
    table(
      'Rate limits on vs off (fluxgate vs fluxgate-nolimits, same run)',
      ['scenario', 'conns', 'on/off req/s', 'added p99 ms', 'on/off CPU/req'],
      limitRows,
    ),
  );
  const d = results.ttfb.find((r) => r.target === 'direct');
  for (const r of results.ttfb.filter((x) => x.target !== 'direct')) {
    text.push(`${r.target}: added TTFB p50 ${added(r.p50, d?.p50)} ms, p99 ${added(r.p99, d?.p99)} ms`);
  }
  return text.join('\n');
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** fluxgate-workers rows, per load cell: 1 worker vs N, each over its alternating rounds. */
function workersTable(results) {
  const rows = results.load.filter((r) => r.workers !== undefined);
  const n = results.meta?.args?.workers ?? 'N';
  const cells = new Map();
  for (const r of rows) {
    const key = `${r.scenario}|${r.connections}`;
    if (!cells.has(key)) cells.set(key, { scenario: r.scenario, connections: r.connections, one: [], many: [] });
    cells.get(key)[r.target === 'fluxgate-w1' ? 'one' : 'many'].push(r);
  }
  // Over the rounds: responses ÷ seconds, CPU ÷ responses; p99 is the median of the rounds'.
  const agg = (rs) => {
    const req = rs.reduce((a, r) => a + r.requests, 0);
    const sec = rs.reduce((a, r) => a + r.seconds, 0);
    const cpu = rs.reduce((a, r) => a + r.cpuUsPerReq * r.requests, 0);
    return {
      rps: req && sec ? round(req / sec, 0) : null,
      cpu: req ? round(cpu / req, 1) : null,
      p99: round(median(rs.map((r) => r.p99)), 1),
    };
  };
  const body = [...cells.values()].map((c) => {
    const [a, b] = [agg(c.one), agg(c.many)];
    return [
      LOAD_SCENARIOS[c.scenario].label,
      c.connections,
      c.one.length,
      a.rps,
      b.rps,
      ratio(b.rps, a.rps),
      a.cpu,
      b.cpu,
      ratio(b.cpu, a.cpu),
      a.p99,
      b.p99,
    ];
  });
  return table(
    `1 vs ${n} data-plane workers (fluxgate-w1 vs fluxgate-w${n}, same run, measured alternately; CPU summed over each target's processes)`,
    [
      'scenario',
      'conns',
      'rounds',
      '1: req/s',
      `${n}: req/s`,
      `${n}/1 req/s`,
      '1: µs/req',
      `${n}: µs/req`,
      `${n}/1 CPU/req`,
      '1: p99 ms',
      `${n}: p99 ms`,
    ],
    body,
  );
}
