/**
 * DATA_PLANE_WORKERS data-plane processes on one public port. Each is a whole data plane
 * (`data-plane/dist/main.js`, unchanged) and its own replica: its own replica id in the Redis
 * records, its own concurrency caps and rate-limit leases, its own Redis and Postgres
 * connections; they share nothing but Redis and Postgres, exactly like replicas on different
 * machines. Processes rather than uWS worker threads: a worker that crashes or is killed takes
 * only itself down and the supervisor restarts it alone (backoff.ts), each keeps its own
 * prom-client registry and signal handling, and the data plane needs no second code path.
 *
 * The public port is shared with SO_REUSEPORT (uWS's default; test/http/listen.test.ts): the
 * kernel hands each new connection to one of the listening workers, so a killed worker's share
 * goes to the others until it is back. The admin port is not shared: worker i listens on
 * ADMIN_PORT + i (or a port of its own when ADMIN_PORT is 0), so Prometheus scrapes each worker.
 */
import type { Listening, PlaneOptions } from './plane.js';
import { planeUnit } from './plane.js';
import { freePort } from './services.js';
import type { Unit } from './supervisor.js';

export interface WorkerOptions extends Omit<PlaneOptions, 'name' | 'env' | 'healthUrl'> {
  count: number;
  env: NodeJS.ProcessEnv;
  /** PUBLIC_HOST and PUBLIC_PORT as configured (0: a free port, picked here). */
  publicHost: string;
  publicPort: number;
  /** ADMIN_HOST and ADMIN_PORT as configured: worker i gets ADMIN_PORT + i, or a free port (picked here) when it is 0. */
  adminHost: string;
  adminPort: number;
  /** Liveness URLs of the public listener (any worker may answer) and of this worker's admin listener. */
  publicHealthUrl(publicPort: number): string;
  adminHealthUrl(adminPort: number): string;
}

export interface StartedWorker {
  index: number;
  pid: number;
  info: Listening;
}

type Start = (unit: Unit<Listening>) => Promise<{ child: { pid?: number | undefined }; info: Listening }>;

/**
 * What the embedded Postgres must accept with `workers` data-plane workers: each worker's pool
 * (up to 10 connections, store/db.ts), the control plane's (4), and room for the operator CLI
 * and a restarted process overlapping the connections of the one it replaces. Its old fixed 16
 * would refuse the 17th idle connection of a 16-core machine's default.
 */
export const embeddedPostgresConnections = (workers: number): number => 10 * workers + 16;

export const workerName = (index: number, count: number): string => (count === 1 ? 'data plane' : `data plane worker ${index}`);

/**
 * Starts worker 0 alone, then the others together, each through `start` (the supervisor, which
 * restarts a worker that dies). Worker 0 first: it generates what the state dir lacks (the
 * self-signed certificate, the admin token, the JWT secret) and applies the schema, which N
 * processes at once would race on; the others find it all in place.
 */
export async function startWorkers(opts: WorkerOptions, start: Start): Promise<StartedWorker[]> {
  // Every port by number, picked here when configured as 0. uSockets sets SO_REUSEPORT and
  // SO_REUSEADDR only on a port bound by number: a port the kernel picked can be joined by no
  // other worker, and, once its worker is killed, not even re-bound by its successor while the
  // connections it had sit in TIME_WAIT (a minute). A restarted worker binds the ports it had.
  const publicPort = opts.publicPort || (await freePort(opts.publicHost));
  const adminPorts: number[] = [];
  // Each probe socket is closed before the next opens, so the kernel may offer a port twice.
  const unused = async (): Promise<number> => {
    const port = await freePort(opts.adminHost);
    return port === publicPort || adminPorts.includes(port) ? unused() : port;
  };
  for (let i = 0; i < opts.count; i++) adminPorts.push(opts.adminPort ? opts.adminPort + i : await unused());
  const units = adminPorts.map((adminPort, i) =>
    planeUnit({
      ...opts,
      name: workerName(i, opts.count),
      env: { ...opts.env, PUBLIC_PORT: String(publicPort), ADMIN_PORT: String(adminPort) },
      healthUrl: (l) => [opts.publicHealthUrl(Number(l['publicPort'])), opts.adminHealthUrl(Number(l['adminPort']))],
    }),
  );
  const run = async (index: number): Promise<StartedWorker> => {
    const started = await start(units[index]!);
    return { index, pid: started.child.pid ?? 0, info: started.info };
  };
  const first = await run(0);
  const rest = await Promise.all(units.slice(1).map((_, i) => run(i + 1)));
  return [first, ...rest];
}
