/**
 * Local answers, consulted before the cache and the upstreams (DESIGN §3):
 * - a hosts-style list (DNS_OVERRIDES and/or DNS_HOSTS_FILE): `ip name [name…]` per line
 *   (`;` also ends a line, so one environment variable can hold several), `#` comments;
 * - `localhost` and every name under it → 127.0.0.1 / ::1 (RFC 6761 §6.3), unless the list says
 *   otherwise; `invalid` and every name under it does not exist (RFC 6761 §6.4);
 * - CLUSTER_DOMAIN → the live data-plane replicas from Redis, and `<replica-id>.CLUSTER_DOMAIN`
 *   → that one replica. Other names under CLUSTER_DOMAIN do not exist (we own that zone, and
 *   never ask the public upstreams about it).
 *
 * Override names are answered only here: never forwarded, and exempt from the SSRF guard (the
 * operator wrote them).
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
  /** Hosts-style text (DNS_OVERRIDES and the DNS_HOSTS_FILE contents, joined by a newline). */
  hosts?: string;
  /** Names the hosts text for error messages. */
  hostsSource?: string;
  clusterDomain?: string | null;
  /** Live replicas; null → the cluster domain has no addresses. */
  replicas?: ReplicaView | null;
  /** TTL of hosts and localhost answers. Default 60 s. */
  ttlSec?: number;
  /** TTL of cluster answers: short, replicas come and go. Default 5 s. */
  clusterTtlSec?: number;
}

/** Parses hosts-style text; throws with the line number on anything it cannot use. */
export function parseHosts(text: string, source = 'DNS_OVERRIDES'): Map<string, HostAddresses> {
  const out = new Map<string, HostAddresses>();
  text.split(/\r?\n|;/).forEach((rawLine, i) => {
    const line = (rawLine.split('#')[0] ?? '').trim();
    if (line === '') return;
    const [ip = '', ...names] = line.split(/\s+/);
    const family = isIP(ip);
    if (family === 0) throw new Error(`${source} entry ${i + 1}: ${JSON.stringify(ip)} is not an IP address`);
    if (names.length === 0) throw new Error(`${source} entry ${i + 1}: no name after ${ip}`);
    for (const raw of names) {
      const name = canonicalName(raw);
      if (name === null) throw new Error(`${source} entry ${i + 1}: ${JSON.stringify(raw)} is not a valid host name`);
      const entry = out.get(name) ?? { v4: [], v6: [] };
      const list = family === 4 ? entry.v4 : entry.v6;
      if (!list.includes(ip)) list.push(ip);
      out.set(name, entry);
    }
  });
  return out;
}

/** Reads a hosts file for `hosts` (the composition root does I/O; this is its helper). */
export const readHostsFile = (path: string): Promise<string> => readFile(path, 'utf8');

const LOCALHOST: HostAddresses = { v4: ['127.0.0.1'], v6: ['::1'] };

export function createOverrides(opts: OverridesOptions = {}): Overrides {
  const hosts = parseHosts(opts.hosts ?? '', opts.hostsSource);
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
