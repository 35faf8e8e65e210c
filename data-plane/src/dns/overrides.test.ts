import { describe, expect, it } from 'vitest';
import { createOverrides, parseHostsFile, parseOverrides } from './overrides.js';
import type { ReplicaView } from './replica-registry.js';

describe('parseOverrides (DNS_OVERRIDES)', () => {
  it('reads `ip name…` entries with comments, `;` separators, both families, case-insensitively', () => {
    const hosts = parseOverrides(
      '# models\n10.0.0.5 ollama.internal Vllm.Internal  # two names\n\nfd00::5 ollama.internal; 10.0.0.6 ollama.internal',
    );
    expect(hosts.get('ollama.internal')).toEqual({ v4: ['10.0.0.5', '10.0.0.6'], v6: ['fd00::5'] });
    expect(hosts.get('vllm.internal')).toEqual({ v4: ['10.0.0.5'], v6: [] });
  });

  it('fails naming DNS_OVERRIDES and the entry it cannot use', () => {
    expect(() => parseOverrides('10.0.0.1 ok.internal; foo bar')).toThrow('DNS_OVERRIDES entry 2: "foo" is not an IP address');
    expect(() => parseOverrides('10.0.0.1')).toThrow('DNS_OVERRIDES entry 1: no name after 10.0.0.1');
    expect(() => parseOverrides('10.0.0.1 bad_name!')).toThrow('is not a valid host name');
  });
});

describe('parseHostsFile (DNS_HOSTS_FILE)', () => {
  it('reads lines only: a `;` inside a comment is part of the comment', () => {
    const hosts = parseHostsFile(
      '# upstreams; see the runbook\n10.0.0.5 a.internal # primary; fails over to b\r\n10.0.0.6 b.internal\n',
      '/etc/fg/hosts',
    );
    expect([...hosts.keys()]).toEqual(['a.internal', 'b.internal']);
    expect(hosts.get('a.internal')).toEqual({ v4: ['10.0.0.5'], v6: [] });
  });

  it('fails naming DNS_HOSTS_FILE, the path and the line as an editor counts it', () => {
    const text = '# header; with a semicolon\n\n10.0.0.5 a.internal\nnot-an-ip b.internal\n';
    expect(() => parseHostsFile(text, '/etc/fg/hosts')).toThrow('DNS_HOSTS_FILE /etc/fg/hosts line 4: "not-an-ip" is not an IP address');
    // `;` outside a comment is not a separator in a hosts file: it is part of a name, which is invalid.
    expect(() => parseHostsFile('10.0.0.5 a.internal; 10.0.0.6 b.internal', 'h')).toThrow(
      'DNS_HOSTS_FILE h line 1: "a.internal;" is not a valid host name',
    );
  });

  it('merges with DNS_OVERRIDES in createOverrides', () => {
    const o = createOverrides({ hosts: '10.0.0.1 env.internal', hostsFile: { path: 'h', text: '10.0.0.2 file.internal # a; b\n' } });
    expect(o.match('env.internal')).toMatchObject({ v4: ['10.0.0.1'] });
    expect(o.match('file.internal')).toMatchObject({ v4: ['10.0.0.2'] });
    expect(o.match('b')).toBeNull();
  });
});

describe('createOverrides', () => {
  const view = (live: ReturnType<ReplicaView['live']>): ReplicaView => ({
    live: () => live,
    refresh: async () => undefined,
    stop: () => undefined,
  });

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
