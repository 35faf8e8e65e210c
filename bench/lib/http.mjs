// undici helpers: one TLS-insecure client factory and a tiny GET used for readiness checks.
import { Agent, Pool } from 'undici';
import { sleep } from './proc.mjs';

const CONNECT = { rejectUnauthorized: false };

/** An undici Pool for `origin` that accepts the throwaway certificates. */
export function pool(origin, connections, extra = {}) {
  return new Pool(origin, { connections, pipelining: 1, connect: CONNECT, keepAliveTimeout: 60_000, ...extra });
}

export function agent(extra = {}) {
  return new Agent({ connect: CONNECT, keepAliveTimeout: 60_000, ...extra });
}

/** Polls GET origin+path until it answers 200; rejects with the last reason after `timeoutMs`. */
export async function getOk(origin, path, timeoutMs, isDead = () => null) {
  const a = agent({ connections: 1 });
  const until = Date.now() + timeoutMs;
  let last;
  try {
    for (;;) {
      try {
        const res = await a.request({ origin, path, method: 'GET', headersTimeout: 2_000, bodyTimeout: 2_000 });
        const text = await res.body.text();
        if (res.statusCode === 200) return text;
        last = `HTTP ${res.statusCode} ${text.slice(0, 200)}`;
      } catch (err) {
        last = err.code ?? err.message;
      }
      const dead = isDead();
      if (dead) throw new Error(dead);
      if (Date.now() > until) throw new Error(`GET ${path} not 200 after ${timeoutMs} ms (${last})`);
      await sleep(200);
    }
  } finally {
    await a.close().catch(() => {});
  }
}

/** One request, body read whole: { status, headers, text }. */
export async function requestText(origin, opts, timeoutMs = 10_000) {
  const a = agent({ connections: 1 });
  try {
    const res = await a.request({ origin, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, ...opts });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  } finally {
    await a.close().catch(() => {});
  }
}
