/**
 * `npm start`: one supervisor for the whole stack. It finds Redis and Postgres (configured,
 * local, or embedded), runs the data plane (DATA_PLANE_WORKERS processes on one public port,
 * workers.ts) and the control plane as separate processes with
 * those URLs, waits until both serve, prints once where everything is, restarts a child that
 * crashes, and on Ctrl-C/SIGTERM drains the planes before it stops the services.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSecret } from '../bootstrap/admin-token.js';
import { writeSecretFile } from '../bootstrap/secret-file.js';
import { formatBanner, type SecretSource } from './banner.js';
import { loadSupervisorConfig, stopTimeoutMs, type SupervisorConfig } from './config.js';
import { planeUnit, type Listening } from './plane.js';
import { embeddedPostgresConnections, startWorkers } from './workers.js';
import { connectHost, urlHost } from './probe.js';
import { adminTlsEnabled } from '../config/admin-listener.js';
import { CONNECTION_PART_VARIABLES } from '@fluxgate/contracts';
import { planPostgres, planRedis } from './services.js';
import { createSupervisor, type Unit } from './supervisor.js';
import { checkUpstreams } from './upstream-check.js';

const DATA_PLANE = fileURLToPath(new URL('../main.js', import.meta.url));
// By path, never by import: the planes share nothing but Redis names from contracts/.
const CONTROL_PLANE = fileURLToPath(new URL('../../../control-plane/dist/main.js', import.meta.url));

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const warn = (line: string): void => void process.stderr.write(`${line}\n`);

let config: SupervisorConfig;
try {
  config = loadSupervisorConfig(process.env);
} catch (e) {
  warn((e instanceof Error ? e.message : String(e)).replace(/^/gm, 'fluxgate: '));
  process.exit(2);
}

const stateDir = config.FLUXGATE_STATE_DIR;
const runtimeFile = join(stateDir, 'runtime.json');
const supervisor = createSupervisor({
  backoff: {
    initialMs: config.SUPERVISOR_RESTART_DELAY_MS,
    maxMs: config.SUPERVISOR_RESTART_MAX_DELAY_MS,
    resetAfterMs: config.SUPERVISOR_RESTART_RESET_MS,
  },
  stopTimeoutMs: stopTimeoutMs(config),
  say,
  warn,
});

async function shutdown(code: number): Promise<void> {
  await supervisor.stop();
  rmSync(runtimeFile, { force: true });
  say('fluxgate: stopped');
  process.exit(code);
}

// One stop per run: a second signal is often the same one delivered twice (a terminal's Ctrl-C
// reaches npm and this process, and npm forwards it here again), so it must not cut the drain
// short; the stop deadline bounds it anyway.
const onSignal = (signal: NodeJS.Signals): void => {
  if (supervisor.stopping) return;
  say(`fluxgate: ${signal}: stopping (open streams get up to ${Math.round(config.DRAIN_TIMEOUT_MS / 1000)} s to finish)`);
  void shutdown(0);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// A closed terminal: the children run in sessions of their own and would not hear of it.
process.on('SIGHUP', onSignal);
// runtime.json holds the services' passwords and describes a running stack only.
process.once('exit', () => rmSync(runtimeFile, { force: true }));

/** The admin or MCP token: the variable the operator set, else the file the stack generated. */
const tokenSource = (variable: string, configured: boolean, file: string): SecretSource =>
  configured ? { variable } : { file: resolve(file) };

async function main(): Promise<void> {
  // Always ours to create: runtime.json, the certificate and generated secrets live here even
  // when both services are configured and nothing embedded would have made it (issue 12, item 11).
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  for (const [name, path] of [['data plane', DATA_PLANE] as const, ['control plane', CONTROL_PLANE] as const]) {
    if (!existsSync(path))
      throw new Error(`the ${name} is not built (${path} is missing): run \`npm run build\`, or use \`npm start\`, which builds first`);
  }
  const redis = await planRedis(config.REDIS_URL, stateDir);
  if (redis.unit) await supervisor.start(redis.unit);
  const pg = await planPostgres(config.DATABASE_URL, stateDir, { maxConnections: embeddedPostgresConnections(config.DATA_PLANE_WORKERS) });
  if (pg.unit) await supervisor.start(pg.unit);

  // Operator tools (`npm run fluxgate -- keys create …`) read these while this stack runs.
  // It holds the services' passwords: 0600 even when an older copy had a looser mode.
  await writeSecretFile(runtimeFile, `${JSON.stringify({ DATABASE_URL: pg.url, REDIS_URL: redis.url })}\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redis.url, DATABASE_URL: pg.url, FLUXGATE_STATE_DIR: stateDir };
  // The URLs above already carry what PGHOST…/PGPASSWORD/REDIS_PASSWORD said: a plane given both would see two passwords.
  for (const name of CONNECTION_PART_VARIABLES) delete env[name];
  // MCP clients need a token from the first start: generated once (0600) unless the operator set
  // MCP_TOKEN or named tokens (MCP_TOKENS). MCP tokens are the control plane's alone: the data
  // plane's environment does not carry them.
  const mcpConfigured = config.MCP_TOKEN !== undefined || config.MCP_TOKENS !== undefined;
  const mcp = mcpConfigured ? null : await ensureSecret(undefined, stateDir, 'mcp-token', 16, warn);
  const controlEnv: NodeJS.ProcessEnv = mcp ? { ...env, MCP_TOKEN: mcp.token } : env;
  const dataEnv: NodeJS.ProcessEnv = { ...env };
  delete dataEnv['MCP_TOKEN'];
  delete dataEnv['MCP_TOKENS'];

  const upstreams = checkUpstreams(config);
  const publicConnect = urlHost(connectHost(config.PUBLIC_HOST));
  const controlConnect = urlHost(connectHost(config.CONTROL_PLANE_HOST));
  const startTimeoutMs = config.SUPERVISOR_START_TIMEOUT_MS;
  const controlPlane = planeUnit({
    name: 'control plane',
    script: CONTROL_PLANE,
    env: controlEnv,
    healthUrl: (l: Listening) => `http://${controlConnect}:${Number(l['port'])}/healthz`,
    startTimeoutMs,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  const start = async <T>(unit: Unit<T>) => {
    const started = await supervisor.start(unit);
    say(`fluxgate: ${unit.name} ready (pid ${started.child.pid})`);
    return started;
  };
  const adminConnect = urlHost(connectHost(config.ADMIN_HOST));
  const adminScheme = adminTlsEnabled(config) ? 'https' : 'http';
  const workers = startWorkers(
    {
      count: config.DATA_PLANE_WORKERS,
      script: DATA_PLANE,
      env: dataEnv,
      publicHost: config.PUBLIC_HOST,
      publicPort: config.PUBLIC_PORT,
      adminHost: config.ADMIN_HOST,
      adminPort: config.ADMIN_PORT,
      publicHealthUrl: (port) => `https://${publicConnect}:${port}/healthz`,
      adminHealthUrl: (port) => `${adminScheme}://${adminConnect}:${port}/healthz`,
      insecureTls: true,
      startTimeoutMs,
      stdout: process.stdout,
      stderr: process.stderr,
    },
    start,
  );
  const [dps, cp] = await Promise.all([workers, start(controlPlane)]);
  const dp = dps[0]!;
  const found = await upstreams;
  if (supervisor.stopping) return;

  // The certificate is what the browser sees: the self-signed one is for localhost.
  const publicHost = config.PUBLIC_HOST === '0.0.0.0' || config.PUBLIC_HOST === '::' ? 'localhost' : urlHost(config.PUBLIC_HOST);
  say(
    formatBanner({
      publicUrl: `https://${publicHost}:${Number(dp.info['publicPort'])}`,
      adminUrl: `${adminScheme}://${adminConnect}:${Number(dp.info['adminPort'])}`,
      workers: dps.map((w) => ({ pid: w.pid, adminPort: Number(w.info['adminPort']) })),
      controlUrl: `http://${controlConnect}:${Number(cp.info['port'])}`,
      adminToken: tokenSource('ADMIN_TOKEN', config.ADMIN_TOKEN !== undefined, join(stateDir, 'admin-token')),
      mcpToken: mcp
        ? { file: resolve(mcp.path ?? join(stateDir, 'mcp-token')) }
        : { variable: config.MCP_TOKEN !== undefined ? 'MCP_TOKEN' : 'MCP_TOKENS' },
      certificate: config.TLS_CERT_PATH
        ? { path: resolve(config.TLS_CERT_PATH), selfSigned: false }
        : { path: resolve(stateDir, 'tls', 'localhost.crt'), selfSigned: true },
      redis: {
        url: redis.url,
        source: redis.source,
        dir: redis.dir && resolve(redis.dir),
        ...(config.REDIS_PASSWORD || config.REDIS_PASSWORD_FILE ? { from: 'REDIS_URL and its password variable' } : {}),
      },
      postgres: {
        url: pg.url,
        source: pg.source,
        dir: pg.dir && resolve(pg.dir),
        // libpq's variables build the URL when DATABASE_URL is unset (contracts/connection-env.ts).
        ...(config.PGHOST && !process.env.DATABASE_URL?.trim() ? { from: 'PGHOST, PGUSER…' } : {}),
      },
      runtimeFile: resolve(runtimeFile),
      upstreams: found,
      drainMs: config.DRAIN_TIMEOUT_MS,
    }),
  );
}

main().catch(async (err: unknown) => {
  // A signal during the start stops whatever had started; that is not a failure to report.
  if (supervisor.stopping) return;
  warn(`fluxgate: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
});
