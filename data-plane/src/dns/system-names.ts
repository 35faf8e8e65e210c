/**
 * Names the operator delegates to the system resolver (DNS_SYSTEM_NAMES): container and
 * cluster service discovery (`ollama` in docker compose, `*.svc.cluster.local` in Kubernetes)
 * lives in the platform's resolver (/etc/hosts, Docker's 127.0.0.11, kube-dns), which public
 * DoH upstreams cannot know. Like overrides, these names are operator-listed: never forwarded
 * upstream and exempt from the SSRF guard. Everything else still goes through DoH.
 *
 * getaddrinfo gives no TTL, so answers are kept `ttlSec` (default 5 s); concurrent lookups of
 * one name share one call; "no such name" and "no address of this family" are both NODATA
 * (getaddrinfo does not tell them apart reliably).
 */
import { promises as dns } from 'node:dns';
import { canonicalName, type AddressType } from './records.js';

/** Addresses of `name` in one family; [] when there are none; throws on temporary failure. */
export type SystemLookup = (name: string, family: 4 | 6) => Promise<string[]>;

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NODATA', 'EAI_NONAME', 'EAI_ADDRFAMILY']);

export const getaddrinfoLookup: SystemLookup = async (name, family) => {
  try {
    return (await dns.lookup(name, { all: true, family })).map((a) => a.address);
  } catch (err) {
    if (NOT_FOUND.has(String((err as { code?: unknown }).code))) return [];
    throw err;
  }
};

export interface SystemAnswer {
  addresses: string[];
  ttl: number;
  rcode: 'NOERROR' | 'SERVFAIL';
}

export interface SystemNames {
  /** `name` is canonical (records.ts). */
  matches(name: string): boolean;
  resolve(name: string, type: AddressType): Promise<SystemAnswer>;
}

export interface SystemNamesOptions {
  lookup?: SystemLookup;
  ttlSec?: number;
  /** Answers remembered at once (suffix patterns can match many names). Default 1,000. */
  maxEntries?: number;
  now?: () => number;
}

/** `patterns`: exact names, or `*.suffix` for every name strictly under suffix. */
export function createSystemNames(patterns: readonly string[], opts: SystemNamesOptions = {}): SystemNames {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const raw of patterns) {
    const p = canonicalName(raw.trim());
    if (p === null || (p.includes('*') && !(p.startsWith('*.') && !p.slice(2).includes('*')))) {
      throw new Error(`DNS_SYSTEM_NAMES: ${JSON.stringify(raw)} is neither a host name nor *.suffix`);
    }
    if (p.startsWith('*.')) suffixes.push(p.slice(1));
    else exact.add(p);
  }
  const lookup = opts.lookup ?? getaddrinfoLookup;
  const ttl = opts.ttlSec ?? 5;
  const max = opts.maxEntries ?? 1_000;
  const now = opts.now ?? (() => Date.now());
  const answers = new Map<string, { answer: SystemAnswer; until: number }>();
  const inflight = new Map<string, Promise<SystemAnswer>>();

  const ask = async (key: string, name: string, type: AddressType): Promise<SystemAnswer> => {
    // (`inflight` is cleared by the caller's .finally, which always runs after it was set.)
    try {
      const addresses = await lookup(name, type === 'A' ? 4 : 6);
      const answer: SystemAnswer = { addresses, ttl, rcode: 'NOERROR' };
      if (answers.size >= max) answers.clear();
      answers.set(key, { answer, until: now() + ttl * 1000 });
      return answer;
    } catch {
      // Temporary failure: not remembered, the next lookup asks again.
      return { addresses: [], ttl: 0, rcode: 'SERVFAIL' };
    }
  };

  return {
    matches: (name) => exact.has(name) || suffixes.some((s) => name.endsWith(s)),
    resolve(name, type) {
      const key = `${type} ${name}`;
      const hit = answers.get(key);
      if (hit !== undefined && now() < hit.until) return Promise.resolve({ ...hit.answer, ttl: Math.ceil((hit.until - now()) / 1000) });
      let p = inflight.get(key);
      if (p === undefined) {
        p = ask(key, name, type).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      return p;
    },
  };
}
