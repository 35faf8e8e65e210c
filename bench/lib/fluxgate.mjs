// The Fluxgate data plane as a bench target: a fresh database, the data plane as a child
// process (TLS, API-key auth, counters on), a key from the CLI, and a smoke request. Any
// failure throws Skip with a one-line reason, after undoing what was started.
// With `workers` > 1 (fluxgate-workers) it runs that many data-plane processes on the one public
// port, as `npm start` does with DATA_PLANE_WORKERS: SO_REUSEPORT, an admin port per worker,
// worker 0 started first; pids() lists them all, so their CPU is summed.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnChild, tail } from './children.mjs';
import { onCleanup } from './cleanup.mjs';
import { getOk, requestText } from './http.mjs';
import { chatRequest } from './load.mjs';
import { freePort, processTree } from './proc.mjs';

export class Skip extends Error {}

const run = promisify(execFile);
const psql = (url, sql) =>
  execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { stdio: 'pipe', env: { ...process.env, PGCONNECT_TIMEOUT: '5' } });

function createDatabase(adminUrl) {
  const name = `fluxgate_bench_${randomBytes(4).toString('hex')}`;
  try {
    psql(adminUrl, `CREATE DATABASE "${name}"`);
  } catch (err) {
    throw new Skip(`cannot create database via ${adminUrl}: ${tail(String(err.stderr ?? err.message))}`);
  }
  const drop = () => psql(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: onCleanup(`database ${name}`, async () => drop(), drop) };
}

/**
 * A tier no load run can exhaust, so limits-on measures the cost of deciding (leases, Redis
 * top-ups, headers, token metering) and never refuses. Applied with init.sql before the start.
 */
const BENCH_TIER = `INSERT INTO tiers (id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst)
  VALUES ('bench', 2000000000, 1000000000000000, 60, 1000000, 1000000000) ON CONFLICT (id) DO NOTHING`;

export async function fluxgateTarget({
  root,
  dir,
  mock,
  tls,
  adminDbUrl,
  redisUrl,
  limits = true,
  name = 'fluxgate',
  workers = 1,
  cpus = '',
  cpuProf = '',
}) {
  const main = join(root, 'data-plane/dist/main.js');
  const cli = join(root, 'data-plane/dist/cli/main.js');
  if (!existsSync(main)) throw new Skip('data-plane/dist/main.js does not exist (data plane not built yet)');
  if (!existsSync(cli)) throw new Skip('data-plane/dist/cli/main.js does not exist (CLI not built yet)');

  const db = createDatabase(adminDbUrl);
  try {
    execFileSync('psql', [db.url, '-v', 'ON_ERROR_STOP=1', '-qAf', join(root, 'init.sql')], { stdio: 'pipe' });
    psql(db.url, BENCH_TIER);
  } catch (err) {
    await db.drop();
    throw new Skip(`cannot prepare the bench database: ${tail(String(err.stderr ?? err.message))}`);
  }
  const stateDir = join(dir, `${name}-state`);
  mkdirSync(stateDir, { recursive: true });
  const port = await freePort();
  const adminPorts = [];
  for (let i = 0; i < workers; i++) adminPorts.push(await freePort());
  const env = {
    ...process.env,
    PUBLIC_HOST: '127.0.0.1',
    PUBLIC_PORT: String(port),
    DOWNSTREAM_AI_URLS: mock.origin,
    FLUXGATE_STATE_DIR: stateDir,
    REDIS_URL: redisUrl,
    DATABASE_URL: db.url,
    LOG_LEVEL: 'warn',
    ADMIN_TOKEN: randomBytes(24).toString('base64url'), // 32 characters
    MAX_CONCURRENT_REQUESTS: '20000',
    PER_KEY_CONCURRENCY: '20000',
    // The same throwaway certificate as nginx, so both pay for the same TLS.
    TLS_CERT_PATH: tls.cert,
    TLS_KEY_PATH: tls.key,
    LIMITS_ENABLED: String(limits),
  };
  const origin = `https://127.0.0.1:${port}`;
  let children = [];
  const stopAll = async () => void (await Promise.all(children.map((c) => c.stop())));
  const launchOne = async (i) => {
    // --cpu-prof writes a V8 CPU profile when the process exits (on SIGTERM, the bench's stop).
    const prof = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', `${name}-${i}-${Date.now()}.cpuprofile`] : [];
    const child = spawnChild(`fluxgate-${i}`, process.execPath, ['--trace-gc-nvp', ...prof, main], {
      env: { ...env, ADMIN_PORT: String(adminPorts[i]) },
      cwd: root,
      cpus,
      gc: true,
    });
    children.push(child);
    try {
      // The shared port answers (any worker), and this worker's own admin listener does.
      await getOk(origin, '/healthz', 30_000, child.dead);
      // Only several workers need it (which one answered the shared port is unknown); builds from
      // before the workers change answer their admin /healthz only with the token.
      if (workers > 1) await getOk(`http://127.0.0.1:${adminPorts[i]}`, '/healthz', 30_000, child.dead);
    } catch (err) {
      const why = child.dead() ? err.message : `${err.message} | ${tail(child.output().stderr)}`;
      throw new Skip(`data plane${workers > 1 ? ` worker ${i}` : ''} did not come up: ${why}`);
    }
  };
  const launch = async () => {
    children = [];
    try {
      await launchOne(0);
      await Promise.all(adminPorts.slice(1).map((_, i) => launchOne(i + 1)));
    } catch (err) {
      await stopAll();
      throw err;
    }
  };
  try {
    await launch();
    const key = await createKey(cli, env, root);
    const headers = { authorization: `Bearer ${key}` };
    const smoke = chatRequest({ stream: false, events: 4 });
    const res = await requestText(origin, { ...smoke, headers: { ...smoke.headers, ...headers } }).catch((e) => ({
      status: e.code ?? e.message,
      text: '',
    }));
    if (res.status !== 200 || !res.text.includes('"chat.completion"')) {
      throw new Skip(`smoke POST /v1/chat/completions → ${res.status} ${res.text.slice(0, 160)}`);
    }
    return {
      name,
      origin,
      headers,
      workers,
      pids: () => children.flatMap((c) => processTree(c.pid)),
      // Summed over the workers, as CPU is.
      gcStats: () =>
        children
          .map((c) => c.gcStats())
          .reduce((a, g) => ({
            promoted: a.promoted + g.promoted,
            allocated: a.allocated + g.allocated,
            scavenges: a.scavenges + g.scavenges,
          })),
      restart: async () => (await stopAll(), await launch()),
      stop: async () => (await stopAll(), await db.drop()),
    };
  } catch (err) {
    await stopAll();
    await db.drop();
    throw err instanceof Skip ? err : new Skip(err.message);
  }
}

async function createKey(cli, env, cwd) {
  let out;
  try {
    out = await run(process.execPath, [cli, 'keys', 'create', '--email', 'bench@example.com', '--name', 'bench', '--tier', 'bench'], {
      env,
      cwd,
      timeout: 30_000,
    });
  } catch (err) {
    throw new Skip(`keys create failed: ${tail(String(err.stderr || err.stdout || err.message))}`);
  }
  // The CLI prints `id:`, `prefix:` (the display prefix, also fgk_…) and `secret:` lines.
  const m = /^secret:\s*(fgk_\S+)/m.exec(out.stdout);
  if (!m) throw new Skip(`keys create printed no secret: line: ${tail(out.stdout + out.stderr)}`);
  return m[1];
}
