// Child processes that cannot outlive the bench: each gets SIGTERM when the bench dies
// (setpriv --pdeathsig), a raised open-files limit, and a cleanup entry.
import { spawn, spawnSync } from 'node:child_process';
import { onCleanup } from './cleanup.mjs';
import { processTree, sleep } from './proc.mjs';

const HAS_SETPRIV = spawnSync('setpriv', ['--version']).status === 0;
// Raise the soft open-files limit as far as the hard limit allows, then exec (same pid).
const ULIMIT = 'n=$0; h=$(ulimit -Hn); [ "$h" != unlimited ] && [ "$h" -lt "$n" ] && n=$h; ulimit -n "$n" 2>/dev/null; exec "$@"';

/**
 * `cpus`: pin the child to these CPUs (taskset -c), so its CPU time is not spread over the cores
 * the load generator uses. `gc`: the child is a Node process started with --trace-gc-nvp; its
 * scavenge lines are summed (gcStats()) and kept out of its captured output.
 */
export function spawnChild(name, cmd, args, { env = process.env, cwd, nofile = 65536, cpus = '', gc = false } = {}) {
  const pinned = cpus ? ['taskset', '-c', cpus, cmd] : [cmd];
  const argv = ['bash', '-c', ULIMIT, String(nofile), ...pinned, ...args];
  const proc = HAS_SETPRIV
    ? spawn('setpriv', ['--pdeathsig', 'TERM', '--', ...argv], { env, cwd, stdio: 'pipe' })
    : spawn(argv[0], argv.slice(1), { env, cwd, stdio: 'pipe' });
  let out = '';
  let err = '';
  const keep = (s) => (s.length > 8192 ? s.slice(-8192) : s);
  const gcStats = { promoted: 0, allocated: 0, scavenges: 0 };
  let partial = '';
  proc.stdout.on('data', (d) => {
    if (!gc) return void (out = keep(out + d));
    const lines = (partial + d).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      if (!line.includes(' gc=')) {
        out = keep(`${out}${line}\n`);
        continue;
      }
      if (!line.includes(' gc=s ')) continue;
      gcStats.scavenges++;
      gcStats.promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
      gcStats.allocated += Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0);
    }
  });
  proc.stderr.on('data', (d) => (err = keep(err + d)));
  proc.stdin.on('error', () => {});
  let exit = null;
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve((exit = { code, signal })));
    proc.once('error', (e) => resolve((exit = { code: -1, signal: null, error: e.message })));
  });

  const stop = onCleanup(
    name,
    async () => {
      if (exit) return;
      const tree = processTree(proc.pid);
      proc.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (done) return;
      for (const pid of tree.reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await exited;
    },
    () => {
      if (exit) return;
      for (const pid of processTree(proc.pid).reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    },
  );

  return {
    name,
    proc,
    pid: proc.pid,
    exited,
    stop,
    /** Why it is not running, or null while it is. */
    dead: () => (exit ? `${name} exited (${exit.error ?? exit.signal ?? `code ${exit.code}`}): ${tail(err || out)}` : null),
    output: () => ({ stdout: out, stderr: err }),
    /** Sums over the child's scavenges so far (with `gc`): bytes promoted to old space, allocated. */
    gcStats: () => ({ ...gcStats }),
    /** Resolves with the first stdout match of `re`. */
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) return finish(null, m);
          if (exit) finish(new Error(this.dead()));
        };
        const timer = setTimeout(() => finish(new Error(`${name}: no ${re} after ${timeoutMs} ms: ${tail(err || out)}`)), timeoutMs);
        const finish = (e, m) => {
          clearTimeout(timer);
          proc.stdout.off('data', check);
          proc.off('exit', check);
          if (e) reject(e);
          else resolve(m);
        };
        proc.stdout.on('data', check);
        proc.on('exit', check);
        check();
      });
    },
  };
}

/** The gist of a child's output: its first error line (if any) and its last lines. */
export function tail(s, n = 400) {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const err = lines.find((l) => /^\w*Error\b|\berror\b/i.test(l) && !/^at /.test(l));
  const last = lines.slice(-2).filter((l) => l !== err);
  return [err, ...last].filter(Boolean).join(' | ').slice(0, n);
}
