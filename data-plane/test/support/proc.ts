/**
 * What a spawned gateway costs the machine, read from Linux's /proc: resident memory and open
 * sockets. Tests use them to show that bad input leaks neither memory nor connections.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Resident set size of `pid` in bytes (VmRSS). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

/** Sockets `pid` holds open (client connections, listeners, Redis, Postgres, upstreams). */
export async function openSockets(pid: number): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`);
  let n = 0;
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target.startsWith('socket:')) n++;
  }
  return n;
}

export const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
