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
  /** PUBLIC_HOST and PUBLIC_PORT as configured (0: a free port, picked here when workers share it). */
  publicHost: string;
  publicPort: number;
  /** ADMIN_PORT as configured: worker i gets ADMIN_PORT + i, or any free port when it is 0. */
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

export const workerName = (index: number, count: number): string => (count === 1 ? 'data plane' : `data plane worker ${index}`);

/**
 * Starts worker 0 alone, then the others together, each through `start` (the supervisor, which
 * restarts a worker that dies). Worker 0 first: it generates what the state dir lacks (the
 * self-signed certificate, the admin token, the JWT secret) and applies the schema, which N
 * processes at once would race on; the others find it all in place.
 */
export async function startWorkers(opts: WorkerOptions, start: Start): Promise<StartedWorker[]> {
  // A port the kernel picked for one listener cannot be joined by another (SO_REUSEPORT applies
  // to ports bound by number): name one first when several workers must share it.
  let publicPort = opts.publicPort === 0 && opts.count > 1 ? await freePort(opts.publicHost) : opts.publicPort;
  const units = Array.from({ length: opts.count }, (_, i) => workerUnit(i));

  function workerUnit(index: number): Unit<Listening> {
    let adminPort = opts.adminPort === 0 ? 0 : opts.adminPort + index;
    const unit = planeUnit({
      ...opts,
      name: workerName(index, opts.count),
      // Asked at every (re)start: a restarted worker binds the ports it had (when they were 0, the
      // ones it was given), so the others' port and the scrape targets stay the same.
      env: () => ({ ...opts.env, PUBLIC_PORT: String(publicPort), ADMIN_PORT: String(adminPort) }),
      healthUrl: (l) => [opts.publicHealthUrl(Number(l['publicPort'])), opts.adminHealthUrl(Number(l['adminPort']))],
    });
    return {
      ...unit,
      launch() {
        const launched = unit.launch();
        const ready = launched.ready.then((info) => {
          publicPort = Number(info['publicPort']);
          adminPort = Number(info['adminPort']);
          return info;
        });
        return { child: launched.child, ready };
      },
    };
  }

  const run = async (index: number): Promise<StartedWorker> => {
    const started = await start(units[index]!);
    return { index, pid: started.child.pid ?? 0, info: started.info };
  };
  const first = await run(0);
  const rest = await Promise.all(units.slice(1).map((_, i) => run(i + 1)));
  return [first, ...rest];
}
