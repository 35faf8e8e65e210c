/**
 * What DATA_PLANE_WORKERS stands on, shown on this uWS build: listeners bind with SO_REUSEPORT by
 * default, so several can hold one port and the kernel gives each of them new connections; an
 * exclusive listener (each worker's admin port) holds its port alone. The same holds across
 * processes (test/standalone/workers.test.ts runs real workers); here two apps in one process
 * keep it quick.
 */
import { request, Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/services.js';
import { closeAll, createPlainApp, listen, loadUws, type TemplatedApp } from '../../src/http/uws.js';

const apps: TemplatedApp[] = [];
afterEach(() => {
  for (const app of apps.splice(0)) closeAll(app);
});

/** A plain app that answers every GET with its own name. */
function named(name: string): TemplatedApp {
  const app = createPlainApp(loadUws()).get('/*', (res) => void res.end(name));
  apps.push(app);
  return app;
}

describe('listen', () => {
  it('lets two listeners share a port by default, and the kernel gives new connections to both', async () => {
    const port = await freePort();
    const a = await listen(named('a'), '127.0.0.1', port);
    const b = await listen(named('b'), '127.0.0.1', port);
    expect([a.port, b.port]).toEqual([port, port]);
    const seen = new Map<string, number>();
    for (let i = 0; i < 60 && seen.size < 2; i++) {
      // A new connection each time: the kernel picks a listener per connection, not per request.
      const agent = new Agent({ pipelining: 0 });
      const res = await request(`http://127.0.0.1:${a.port}/`, { dispatcher: agent });
      const who = await res.body.text();
      seen.set(who, (seen.get(who) ?? 0) + 1);
      await agent.close();
    }
    expect([...seen.keys()].sort()).toEqual(['a', 'b']);
  });

  it('cannot share a port the kernel picked (port 0): the supervisor names a port before it starts more than one worker', async () => {
    const picked = await listen(named('picked'), '127.0.0.1', 0);
    await expect(listen(named('second'), '127.0.0.1', picked.port)).rejects.toThrow(/Cannot listen/);
  });

  it('holds an exclusive port alone: neither a default nor another exclusive listener gets it', async () => {
    const own = await listen(named('own'), '127.0.0.1', 0, { exclusive: true });
    await expect(listen(named('intruder'), '127.0.0.1', own.port)).rejects.toThrow(/Cannot listen on 127\.0\.0\.1:\d+/);
    await expect(listen(named('intruder'), '127.0.0.1', own.port, { exclusive: true })).rejects.toThrow(/Cannot listen/);
    // Nor can an exclusive listener join a port that is already shared.
    const shared = await listen(named('shared'), '127.0.0.1', await freePort());
    await expect(listen(named('late'), '127.0.0.1', shared.port, { exclusive: true })).rejects.toThrow(/Cannot listen/);
    const res = await request(`http://127.0.0.1:${own.port}/`);
    expect(await res.body.text()).toBe('own');
  });
});
