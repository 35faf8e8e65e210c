// The Redis and Postgres the data plane talks to, as process ids, so the load phases can report
// their CPU beside the proxy's. Both are shared with anything else on the machine: on a busy box
// the columns include other clients' work (compare the non-Fluxgate targets' rows: their
// background).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { processTree } from './proc.mjs';

/** Redis's own pid (INFO server → process_id), or null when it cannot be asked. */
export function redisPid(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port || 6379), u.hostname);
    let text = '';
    const done = (pid) => (s.destroy(), resolve(pid));
    s.setTimeout(3000, () => done(null));
    s.once('error', () => done(null));
    s.once('connect', () => {
      if (u.password) s.write(`AUTH ${decodeURIComponent(u.username || 'default')} ${decodeURIComponent(u.password)}\r\n`);
      s.write('INFO server\r\n');
    });
    s.on('data', (d) => {
      text += d;
      const m = /process_id:(\d+)/.exec(text);
      if (m) done(Number(m[1]));
      else if (text.startsWith('-')) done(null);
    });
  });
}

/** The Postgres server's process tree (postmaster and its backends) as a function, or null. */
export function postgresTree(url) {
  try {
    // The postmaster's pid is the first line of postmaster.pid in the data directory (a local
    // server read by a superuser, as the bench's default URL is).
    const dir = execFileSync('psql', [url, '-qAtc', 'SHOW data_directory'], { stdio: 'pipe' }).toString().trim();
    const pid = Number(readFileSync(`${dir}/postmaster.pid`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? () => processTree(pid) : null;
  } catch {
    return null;
  }
}
