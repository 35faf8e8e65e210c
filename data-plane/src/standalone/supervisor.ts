/**
 * Keeps the stack's processes running: each child (a plane or an embedded service) is started
 * and awaited until it serves; a child that dies afterwards is restarted with backoff
 * (backoff.ts); on stop, the planes get SIGTERM first (they drain open streams and flush their
 * counters into Redis and Postgres), the services only once the planes are gone, and whatever
 * outlives its deadline is killed with its whole process group.
 */
import type { ChildProcess } from 'node:child_process';
import { RestartBackoff, type BackoffPolicy } from './backoff.js';

export interface Launch<T> {
  child: ChildProcess;
  /** Resolves once the child serves; rejects when it exits first or does not get there in time. */
  ready: Promise<T>;
}

export interface Unit<T = unknown> {
  /** For people: "data plane", "embedded Postgres", … */
  name: string;
  /** Planes stop first, services after them. */
  role: 'plane' | 'service';
  launch(): Launch<T>;
}

export interface SupervisorOptions {
  backoff: BackoffPolicy;
  /** From SIGTERM to SIGKILL, for the planes. */
  stopTimeoutMs: number;
  /** The same for the services, once the planes have exited. */
  serviceStopTimeoutMs?: number;
  /** A line for people on stdout, and a warning on stderr. */
  say(line: string): void;
  warn(line: string): void;
  now?: () => number;
}

export interface Supervisor {
  /** First start of a unit: resolves when it serves; rejects (and leaves nothing running) when it cannot. */
  start<T>(unit: Unit<T>): Promise<{ child: ChildProcess; info: T }>;
  /** Stops everything in order; idempotent. */
  stop(): Promise<void>;
  readonly stopping: boolean;
}

interface Entry {
  unit: Unit;
  backoff: RestartBackoff;
  child: ChildProcess | null;
  /** Resolves when the current child's stdio has closed (it exited and its output was read). */
  closed: Promise<void>;
  readySince: number | null;
  timer: NodeJS.Timeout | null;
}

export const describeExit = (code: number | null, signal: NodeJS.Signals | null): string =>
  signal ? `was killed by ${signal}` : `exited with code ${code}`;
const alive = (c: ChildProcess | null): c is ChildProcess =>
  c !== null && c.pid !== undefined && c.exitCode === null && c.signalCode === null;
const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * SIGKILL to the child's process group: children are spawned detached (their own group), so this
 * also reaches anything they started.
 */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

export function createSupervisor(opts: SupervisorOptions): Supervisor {
  const now = opts.now ?? Date.now;
  const entries: Entry[] = [];
  let stopping = false;
  let stopped: Promise<void> | null = null;

  const run = <T>(entry: Entry): Promise<T> => {
    const { child, ready } = (entry.unit as Unit<T>).launch();
    entry.child = child;
    entry.readySince = null;
    entry.closed = new Promise((resolve) => child.once('close', () => resolve()));
    child.once('exit', (code, signal) => {
      // Before it was ready, `ready` rejects and the caller decides; while stopping, exits are expected.
      if (entry.child !== child || entry.readySince === null || stopping) return;
      const upMs = now() - entry.readySince;
      entry.readySince = null;
      restartLater(entry, `${entry.unit.name} (pid ${child.pid}) ${describeExit(code, signal)}`, upMs);
    });
    return ready.then(
      (info) => {
        if (!stopping) entry.readySince = now();
        return info;
      },
      (err: unknown) => {
        if (alive(child)) killGroup(child);
        throw err;
      },
    );
  };

  const restartLater = (entry: Entry, why: string, upMs: number | null): void => {
    const delay = entry.backoff.next(upMs);
    opts.warn(`fluxgate: ${why}; restarting it in ${seconds(delay)} (attempt ${entry.backoff.crashes})`);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (stopping) return;
      run(entry).then(
        () => {
          if (!stopping) opts.say(`fluxgate: ${entry.unit.name} is back (pid ${entry.child?.pid})`);
        },
        (err: unknown) => {
          if (!stopping) restartLater(entry, `${entry.unit.name} did not come back (${reason(err)})`, null);
        },
      );
    }, delay);
  };

  const terminate = async (list: Entry[], timeoutMs: number): Promise<void> => {
    const live = list.filter((e) => alive(e.child));
    if (live.length === 0) return;
    for (const e of live) e.child!.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.all(live.map((e) => e.closed)), deadline]);
    clearTimeout(timer);
    for (const e of live) {
      if (!alive(e.child)) continue;
      opts.warn(`fluxgate: ${e.unit.name} (pid ${e.child.pid}) did not stop within ${seconds(timeoutMs)}: killing it`);
      killGroup(e.child);
    }
    await Promise.all(live.map((e) => e.closed));
  };

  return {
    get stopping() {
      return stopping;
    },
    async start<T>(unit: Unit<T>) {
      if (stopping) throw new Error(`not starting ${unit.name}: stopping`);
      const entry: Entry = {
        unit,
        backoff: new RestartBackoff(opts.backoff),
        child: null,
        closed: Promise.resolve(),
        readySince: null,
        timer: null,
      };
      entries.push(entry);
      const info = await run<T>(entry);
      return { child: entry.child!, info };
    },
    stop() {
      if (stopped) return stopped;
      stopping = true;
      for (const e of entries) if (e.timer) clearTimeout(e.timer);
      stopped = (async () => {
        await terminate(
          entries.filter((e) => e.unit.role === 'plane'),
          opts.stopTimeoutMs,
        );
        await terminate(
          entries.filter((e) => e.unit.role === 'service'),
          opts.serviceStopTimeoutMs ?? 10_000,
        );
      })();
      return stopped;
    },
  };
}
