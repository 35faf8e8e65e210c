import { describe, expect, it } from 'vitest';
import { createOverrides, parseHosts } from './overrides.js';
import type { ReplicaView } from './replica-registry.js';

describe('parseHosts', () => {
  it('reads `ip name…` lines with comments, `;` separators, both families, case-insensitively', () => {
    const hosts = parseHosts('# models\n10.0.0.5 ollama.internal Vllm.Internal  # two names\n\nfd00::5 ollama.internal; 10.0.0.6 ollama.internal');
    expect(hosts.get('ollama.internal')).toEqual({ v4: ['10.0.0.5', '10.0.0.6'], v6: ['fd00::5'] });
    expect(hosts.get('vllm.internal')).toEqual({ v4: ['10.0.0.5'], v6: [] });
  });

  it('fails with the entry number on lines it cannot use', () => {
    expect(() => parseHosts('10.0.0.1 ok.internal\nfoo bar', 'hosts.txt')).toThrow('hosts.txt entry 2: "foo" is not an IP address');
    expect(() => parseHosts('10.0.0.1')).toThrow('no name after 10.0.0.1');
    expect(() => parseHosts('10.0.0.1 bad_name!')).toThrow('is not a valid host name');
  });
});

describe('createOverrides', () => {
  const view = (live: ReturnType<ReplicaView['live']>): ReplicaView => ({ live: () => live, refresh: async () => undefined, stop: () => undefined });

  it('answers listed names, localhost and its subdomains, .invalid (NXDOMAIN), and nothing else', () => {
    const o = createOverrides({ hosts: '10.0.0.5 svc.internal', ttlSec: 42 });
    expect(o.match('svc.internal')).toEqual({ kind: 'addresses', v4: ['10.0.0.5'], v6: [], ttl: 42 });
    expect(o.match('localhost')).toEqual({ kind: 'addresses', v4: ['127.0.0.1'], v6: ['::1'], ttl: 42 });
    expect(o.match('app.localhost')).toMatchObject({ v4: ['127.0.0.1'] });
    expect(o.match('example.com')).toBeNull();
    expect(o.match('notlocalhost')).toBeNull();
    expect(o.match('x.invalid')).toEqual({ kind: 'nxdomain', ttl: 42, zone: 'invalid' });
  });

  it('answers the cluster domain from live replicas, one replica by id, and NXDOMAIN for the rest of the zone', () => {
    const replicas = view([
      { id: 'dp-a', address: '10.1.0.1', port: 8443 },
      { id: 'dp-b', address: 'fd00::b', port: 8443 },
      { id: 'dp-c', address: 'not-an-ip', port: 8443 },
    ]);
    const o = createOverrides({ clusterDomain: 'Fluxgate.Internal.', replicas, clusterTtlSec: 3 });
    expect(o.match('fluxgate.internal')).toEqual({ kind: 'addresses', v4: ['10.1.0.1'], v6: ['fd00::b'], ttl: 3 });
    expect(o.match('dp-a.fluxgate.internal')).toEqual({ kind: 'addresses', v4: ['10.1.0.1'], v6: [], ttl: 3 });
    expect(o.match('dp-z.fluxgate.internal')).toEqual({ kind: 'nxdomain', ttl: 3, zone: 'fluxgate.internal' });
    expect(o.match('x.dp-a.fluxgate.internal')).toMatchObject({ kind: 'nxdomain' });
    expect(createOverrides({ clusterDomain: 'c.internal', replicas: view(null) }).match('c.internal')).toEqual({ kind: 'unavailable' });
    expect(() => createOverrides({ clusterDomain: 'bad domain' })).toThrow('CLUSTER_DOMAIN');
  });
});
