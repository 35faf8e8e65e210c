/**
 * Local answers, consulted before the cache and the upstreams (DESIGN §3):
 * - a hosts-style list: `ip name [name…]` per entry, `#` comments. DNS_OVERRIDES separates
 *   entries by newlines or `;` (so one environment variable can hold several); DNS_HOSTS_FILE
 *   is a hosts(5) file, one entry per line, where `;` is nothing special (a comment may hold one);
 * - `localhost` and every name under it → 127.0.0.1 / ::1 (RFC 6761 §6.3), unless the list says
 *   otherwise; `invalid` and every name under it does not exist (RFC 6761 §6.4);
 * - CLUSTER_DOMAIN → the live data-plane replicas from Redis, and `<replica-id>.CLUSTER_DOMAIN`
 *   → that one replica. Other names under CLUSTER_DOMAIN do not exist (we own that zone, and
 *   never ask the public upstreams about it).
 *
 * Override names are answered only here: never forwarded, and exempt from the SSRF guard (the
 * operator wrote them). Every name `match` answers is internal: the public resolver
 * (public-resolver.ts) answers NXDOMAIN for it.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { canonicalName } from './records.js';
import type { ReplicaView } from './replica-registry.js';

export interface HostAddresses {
  v4: string[];
  v6: string[];
}

export type OverrideHit =
  | { kind: 'addresses'; v4: readonly string[]; v6: readonly string[]; ttl: number }
  /** `zone`: the apex whose (synthesised) SOA goes into the authority section. */
  | { kind: 'nxdomain'; ttl: number; zone: string }
  /** The replica registry has not been read yet: a temporary failure (SERVFAIL). */
  | { kind: 'unavailable' };

export interface Overrides {
  /** The local answer for a canonical name (records.ts), or null when the name is not ours. */
  match(name: string): OverrideHit | null;
}

export interface OverridesOptions {
  /** DNS_OVERRIDES: entries separated by newlines or `;`. */
  hosts?: string;
  /** DNS_HOSTS_FILE, already read: its path (for error messages) and its text. */
  hostsFile?: { path: string; text: string } | null;
  clusterDomain?: string | null;
  /** Live replicas; null → the cluster domain has no addresses. */
  replicas?: ReplicaView | null;
  /** TTL of hosts and localhost answers. Default 60 s. */
  ttlSec?: number;
  /** TTL of cluster answers: short, replicas come and go. Default 5 s. */
  clusterTtlSec?: number;
}

export type HostsMap = Map<string, HostAddresses>;

/** Adds one `ip name [name…]` entry (comment already removed); `where` names it in errors. */
function addEntry(out: HostsMap, entry: string, where: string): void {
  const line = entry.trim();
  if (line === '') return;
  const [ip = '', ...names] = line.split(/\s+/);
  const family = isIP(ip);
  if (family === 0) throw new Error(`${where}: ${JSON.stringify(ip)} is not an IP address`);
  if (names.length === 0) throw new Error(`${where}: no name after ${ip}`);
  for (const raw of names) {
    const name = canonicalName(raw);
    if (name === null) throw new Error(`${where}: ${JSON.stringify(raw)} is not a valid host name`);
    const addresses = out.get(name) ?? { v4: [], v6: [] };
    const list = family === 4 ? addresses.v4 : addresses.v6;
    if (!list.includes(ip)) list.push(ip);
    out.set(name, addresses);
  }
}

/** DNS_OVERRIDES: entries end at a newline or `;`, a `#` comment at the end of its entry. Throws naming the entry. */
export function parseOverrides(text: string, out: HostsMap = new Map()): HostsMap {
  text.split(/\r?\n|;/).forEach((entry, i) => addEntry(out, entry.split('#')[0] ?? '', `DNS_OVERRIDES entry ${i + 1}`));
  return out;
}

/**
 * A hosts(5) file: one entry per line, `#` to the end of the line is a comment. Lines only:
 * `;` would otherwise split a comment and make its tail an entry. Throws naming the path and
 * the line number (counting blank and comment lines, as an editor does).
 */
export function parseHostsFile(text: string, path: string, out: HostsMap = new Map()): HostsMap {
  text.split(/\r?\n/).forEach((line, i) => addEntry(out, line.split('#')[0] ?? '', `DNS_HOSTS_FILE ${path} line ${i + 1}`));
  return out;
}

/** Reads a hosts file for `hostsFile` (the composition root does I/O; this is its helper). */
export const readHostsFile = async (path: string): Promise<{ path: string; text: string }> => ({
  path,
  text: await readFile(path, 'utf8'),
});

const LOCALHOST: HostAddresses = { v4: ['127.0.0.1'], v6: ['::1'] };

export function createOverrides(opts: OverridesOptions = {}): Overrides {
  const hosts = parseOverrides(opts.hosts ?? '');
  if (opts.hostsFile) parseHostsFile(opts.hostsFile.text, opts.hostsFile.path, hosts);
  const ttl = opts.ttlSec ?? 60;
  const clusterTtl = opts.clusterTtlSec ?? 5;
  const cluster = opts.clusterDomain ? canonicalName(opts.clusterDomain) : null;
  if (opts.clusterDomain && cluster === null) throw new Error(`CLUSTER_DOMAIN is not a valid domain name: ${opts.clusterDomain}`);
  const replicas = opts.replicas ?? null;

  const clusterHit = (name: string): OverrideHit => {
    const live = replicas === null ? [] : replicas.live();
    if (live === null) return { kind: 'unavailable' };
    const id = name === cluster ? null : name.slice(0, -(cluster as string).length - 1);
    // Only a single label under the cluster domain can name a replica.
    const chosen = id === null ? live : id.includes('.') ? [] : live.filter((r) => r.id.toLowerCase() === id);
    if (id !== null && chosen.length === 0) return { kind: 'nxdomain', ttl: clusterTtl, zone: cluster as string };
    const v4: string[] = [];
    const v6: string[] = [];
    for (const r of chosen) {
      const family = isIP(r.address);
      if (family === 4 && !v4.includes(r.address)) v4.push(r.address);
      else if (family === 6 && !v6.includes(r.address)) v6.push(r.address);
    }
    return { kind: 'addresses', v4, v6, ttl: clusterTtl };
  };

  return {
    match(name) {
      const listed = hosts.get(name);
      if (listed !== undefined) return { kind: 'addresses', v4: listed.v4, v6: listed.v6, ttl };
      if (name === 'localhost' || name.endsWith('.localhost')) return { kind: 'addresses', ...LOCALHOST, ttl };
      if (name === 'invalid' || name.endsWith('.invalid')) return { kind: 'nxdomain', ttl, zone: 'invalid' };
      if (cluster !== null && (name === cluster || name.endsWith(`.${cluster}`))) return clusterHit(name);
      return null;
    },
  };
}
