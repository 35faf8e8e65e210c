/**
 * What `npm start` prints once everything serves: for a person, not a log parser. It names files
 * and URLs, never a secret: service URLs are shown with their password masked, tokens by the
 * file they are in (or the variable they came from).
 */

/** A URL with its password (and any query, which may carry one) masked; unparsable ones are not echoed. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    const query = u.search ? '?…' : '';
    u.search = '';
    u.hash = '';
    return `${u.toString()}${query}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** Where a secret is: a file under the state dir, or the variable the operator set. */
export type SecretSource = { file: string } | { variable: string };

export interface ServiceLine {
  url: string;
  source: 'configured' | 'local' | 'embedded';
  dir: string | null;
  /** For a configured one: the variables it came from (default REDIS_URL / DATABASE_URL). */
  from?: string;
}

export interface BannerInput {
  /** https://localhost:8443 — the SPA, the portal and the APIs share this origin. */
  publicUrl: string;
  /** Worker 0's admin listener. */
  adminUrl: string;
  /** The data-plane workers (DATA_PLANE_WORKERS), in order: worker i's admin listener is on its adminPort. */
  workers: { pid: number; adminPort: number }[];
  /** The control plane's listener (MCP at /mcp, liveness at /healthz). */
  controlUrl: string;
  adminToken: SecretSource;
  mcpToken: SecretSource;
  certificate: { path: string; selfSigned: boolean };
  redis: ServiceLine;
  postgres: ServiceLine;
  runtimeFile: string;
  /** Every configured model server and whether it answered; `fromFile` when UPSTREAMS_FILE named them. */
  upstreams: { urls: { url: string; answers: boolean }[]; fromFile: string | null };
  drainMs: number;
}

const secret = (s: SecretSource): string => ('file' in s ? s.file : `the ${s.variable} variable you set`);

function service(kind: 'redis' | 'postgres', s: ServiceLine): string {
  const where =
    s.source === 'configured'
      ? `from ${s.from ?? (kind === 'redis' ? 'REDIS_URL' : 'DATABASE_URL')}`
      : s.source === 'local'
        ? 'found running on this machine'
        : kind === 'redis'
          ? `private redis-server, AOF under ${s.dir}`
          : `embedded PGlite, data under ${s.dir}`;
  return `${redactUrl(s.url)}  (${where})`;
}

function modelServers(u: BannerInput['upstreams']): string[] {
  const named = (list: { url: string }[]) => list.map((x) => redactUrl(x.url)).join(', ');
  const up = u.urls.filter((x) => x.answers);
  const down = u.urls.filter((x) => !x.answers);
  if (up.length > 0) return [`answering: ${named(up)}`, ...(down.length > 0 ? [`not answering: ${named(down)}`] : [])];
  const where = u.fromFile ? `the upstreams of ${u.fromFile}${down.length > 0 ? ` (${named(down)})` : ''}` : named(down);
  return [
    `none answers at ${where}`,
    'Start one (Ollama: `ollama serve`, then `ollama pull llama3.2:1b`), or point DOWNSTREAM_AI_URLS',
    'at one (comma-separated base URLs of Ollama or OpenAI-compatible servers such as vLLM or',
    `llama.cpp)${u.fromFile ? ' instead of UPSTREAMS_FILE' : ''} and start again, e.g.:`,
    '  DOWNSTREAM_AI_URLS=http://127.0.0.1:8000 npm start',
  ];
}

function dataPlane(b: BannerInput): string {
  const n = b.workers.length;
  const pids = b.workers.map((w) => w.pid).join(', ');
  return n === 1
    ? `1 worker (pid ${pids}; DATA_PLANE_WORKERS sets how many)`
    : `${n} workers sharing ${new URL(b.publicUrl).port || '443'} (pids ${pids}; DATA_PLANE_WORKERS)`;
}

/** With several workers, each has its own admin port: Prometheus scrapes every one. */
function adminPorts(workers: BannerInput['workers']): string[] {
  if (workers.length < 2) return [];
  const ports = workers.map((w) => w.adminPort);
  const consecutive = ports.every((p, i) => p === ports[0]! + i);
  return [
    consecutive
      ? `one per worker, ports ${ports[0]}–${ports.at(-1)} (worker i on ADMIN_PORT + i): scrape each`
      : `one per worker, ports ${ports.join(', ')} (worker 0, 1, …): scrape each`,
  ];
}

export function formatBanner(b: BannerInput): string {
  const rows: [string, string | string[]][] = [
    ['SPA and API', [`${b.publicUrl}/`, `OpenAI API at ${b.publicUrl}/v1, Ollama API at ${b.publicUrl}/api`]],
    ['Data plane', dataPlane(b)],
    ['Admin API', [`${b.adminUrl}  (/metrics, /admin/*; Authorization: Bearer <admin token>)`, ...adminPorts(b.workers)]],
    ['MCP', `${b.controlUrl}/mcp  (Streamable HTTP; Authorization: Bearer <MCP token>)`],
    ['Control plane', `${b.controlUrl}/healthz`],
    ['', ''],
    ['Admin token', secret(b.adminToken)],
    ['MCP token', secret(b.mcpToken)],
    ['Certificate', b.certificate.selfSigned ? `${b.certificate.path}  (self-signed: trust this file, or curl -k)` : b.certificate.path],
    ['', ''],
    ['Redis', service('redis', b.redis)],
    ['Postgres', service('postgres', b.postgres)],
    ['Service URLs', `${b.runtimeFile}  (with passwords, 0600, for \`npm run fluxgate\`)`],
    ['Model servers', modelServers(b.upstreams)],
  ];
  const width = 15;
  const lines = rows.flatMap(([label, value]) => {
    const values = Array.isArray(value) ? value : [value];
    return values.map((v, i) => `  ${(i === 0 ? label : '').padEnd(width)}${v}`.trimEnd());
  });
  const rule = '-'.repeat(78);
  return [
    '',
    rule,
    '  Fluxgate is running',
    rule,
    ...lines,
    rule,
    `  Ctrl-C stops it all: open streams get up to ${Math.round(b.drainMs / 1000)} s to finish.`,
    rule,
    '',
  ].join('\n');
}
