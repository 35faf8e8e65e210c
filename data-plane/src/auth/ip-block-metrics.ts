import { Counter, Gauge, type Registry } from 'prom-client';
import type { IpBlocks } from './ip-blocks.js';

/** Prometheus view of the IP blocks, read from `stats()` at scrape time (the hot path never touches prom-client). */
export function registerIpBlockMetrics(registry: Registry, blocks: Pick<IpBlocks, 'stats'>): void {
  const registers = [registry];
  let seen = 0;
  new Counter({
    name: 'fluxgate_ip_blocked_requests_total',
    help: 'Requests refused (403) because their client address is blocked by the control plane.',
    registers,
    collect() {
      const refused = blocks.stats().refused;
      this.inc(Math.max(0, refused - seen));
      seen = refused;
    },
  });
  new Gauge({
    name: 'fluxgate_ip_blocks',
    help: 'Client addresses blocked right now, as this replica holds them.',
    registers,
    collect() {
      this.set(blocks.stats().size);
    },
  });
}
