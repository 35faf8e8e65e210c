// Command-line flags; each also reads BENCH_<NAME> from the environment (e.g. BENCH_TARGETS).
import os from 'node:os';
import { parseArgs } from 'node:util';

const OPTIONS = {
  targets: [
    'direct,nginx,bare,fluxgate,fluxgate-nolimits,fluxgate-workers',
    'comma list of direct, nginx, bare (uWS + undici relay, bare-relay.mjs; load phases only), fluxgate-before (--before-root), fluxgate, fluxgate-nolimits (LIMITS_ENABLED=false; load phases only), fluxgate-workers (1 vs --workers processes on one port, measured alternately; load phases only)',
  ],
  workers: ['', 'data-plane processes of fluxgate-workers (default: the number of CPUs)'],
  rounds: ['2', 'fluxgate-workers: alternating rounds (1 worker, N, N, 1, …) per load cell'],
  scenarios: [
    'json,sse,ssec,paced,ttfb,open,slow',
    'comma list: load (json; sse = SSE as one HTTP chunk; ssec = each event its own HTTP chunk, one upstream write; sse1 = one upstream write per event turn; paced), ttfb, open, slow',
  ],
  conns: ['32,128', 'autocannon connection counts'],
  duration: ['5', 'seconds per measured load run'],
  warmup: ['1', 'seconds of warm-up before each load run'],
  'ttfb-n': ['200', 'requests for time to first byte'],
  'ttfb-conc': ['1', 'concurrency for time to first byte (1 = sequential)'],
  streams: ['5000', 'concurrent open streams'],
  'stream-events': ['120', 'events per open stream'],
  'stream-delay': ['500', 'ms between events of an open stream'],
  'open-timeout': ['40', 'seconds allowed to open the streams'],
  'slow-clients': ['50', 'slow-reader clients'],
  'slow-bytes': ['20000000', 'bytes each slow reader consumes'],
  'slow-rate': ['3000000', 'bytes/s each slow reader reads'],
  'slow-timeout': ['40', 'seconds allowed for the slow readers'],
  cert: ['ec', 'throwaway certificate key: ec (P-256) or rsa (2048)'],
  nginx: ['/usr/sbin/nginx', 'nginx binary'],
  pin: ['', 'pin each proxy (nginx, bare, fluxgate) to these CPUs with taskset -c (e.g. 1)'],
  'cpu-prof': ['', 'directory for a V8 CPU profile of each Fluxgate process (--cpu-prof, written when it stops)'],
  'database-url': ['postgres://postgres@127.0.0.1:5432/postgres', 'Postgres where the bench database is created'],
  'redis-url': ['redis://127.0.0.1:6379', 'Redis for the data plane'],
  'fluxgate-root': ['', 'checkout whose data-plane/dist to run (default: this one)'],
  'before-root': ['', 'a built checkout run as target fluxgate-before (limits on), for before/after in one run'],
  out: ['', 'JSON output path (default bench/results/bench-<time>.json)'],
};
const FLAGS = {
  build: 'run `npm run build` first (default; --no-build to skip)',
  fresh: 'restart the proxy (and warm it up) before the open and slow phases (default; --no-fresh)',
  quick: 'short smoke run',
  help: 'this text',
};
// Applied only to options not given explicitly.
const QUICK = { conns: '32', duration: '2', warmup: '0.5', 'ttfb-n': '20', streams: '500', 'slow-clients': '8', 'slow-bytes': '4000000' };

const env = (name) => process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];

export function usage() {
  const rows = Object.entries(OPTIONS).map(([k, [d, h]]) => `  --${k.padEnd(14)} ${h} [${d}]`);
  const flags = Object.entries(FLAGS).map(([k, h]) => `  --${k.padEnd(14)} ${h}`);
  return `npm run bench -- [options]\n${rows.join('\n')}\n${flags.join('\n')}\nEvery option can also be set as BENCH_<NAME> (e.g. BENCH_TARGETS=direct,nginx).`;
}

export function parse(argv) {
  const options = Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' }]));
  for (const k of Object.keys(FLAGS)) options[k] = { type: 'boolean' };
  options['no-build'] = { type: 'boolean' };
  options['no-fresh'] = { type: 'boolean' };
  const { values } = parseArgs({ args: argv, options, strict: true });
  const quick = values.quick ?? env('quick') === '1';
  const get = (k) => values[k] ?? env(k) ?? (quick ? QUICK[k] : undefined) ?? OPTIONS[k][0];
  const list = (k) =>
    get(k)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const num = (k) => {
    const v = Number(get(k));
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k}: not a number: ${get(k)}`);
    return v;
  };
  const a = {
    help: values.help ?? false,
    quick,
    build: !(values['no-build'] ?? env('no_build') === '1') && (values.build ?? true),
    fresh: !(values['no-fresh'] ?? env('no_fresh') === '1') && (values.fresh ?? true),
    targets: list('targets'),
    scenarios: list('scenarios'),
    conns: list('conns').map(Number),
    duration: num('duration'),
    warmup: num('warmup'),
    ttfbN: num('ttfb-n'),
    ttfbConc: num('ttfb-conc'),
    streams: num('streams'),
    streamEvents: num('stream-events'),
    streamDelay: num('stream-delay'),
    openTimeout: num('open-timeout'),
    slowClients: num('slow-clients'),
    slowBytes: num('slow-bytes'),
    slowRate: num('slow-rate'),
    slowTimeout: num('slow-timeout'),
    cert: get('cert'),
    nginx: get('nginx'),
    pin: get('pin'),
    cpuProf: get('cpu-prof'),
    databaseUrl: get('database-url'),
    redisUrl: get('redis-url'),
    fluxgateRoot: get('fluxgate-root'),
    beforeRoot: get('before-root'),
    out: get('out'),
    workers: get('workers') === '' ? os.availableParallelism() : num('workers'),
    rounds: num('rounds'),
  };
  if (!Number.isInteger(a.rounds) || a.rounds < 1) throw new Error(`--rounds: not a whole number ≥ 1: ${get('rounds')}`);
  if (!Number.isInteger(a.workers) || a.workers < 1) throw new Error(`--workers: not a whole number ≥ 1: ${get('workers')}`);
  for (const t of a.targets)
    if (!['direct', 'nginx', 'bare', 'fluxgate-before', 'fluxgate', 'fluxgate-nolimits', 'fluxgate-workers'].includes(t))
      throw new Error(`unknown target ${t}`);
  for (const s of a.scenarios)
    if (!['json', 'sse', 'ssec', 'sse1', 'paced', 'ttfb', 'open', 'slow'].includes(s)) throw new Error(`unknown scenario ${s}`);
  return a;
}
