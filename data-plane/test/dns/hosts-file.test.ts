/**
 * DNS_HOSTS_FILE through the composition root: createDnsStack (as main.ts calls it) reads a
 * real hosts-style file from disk, with a real Redis for the replica registry and no DoH
 * upstream, so every answer below comes from the file (or DNS_OVERRIDES). A line the parser
 * cannot use fails startup with a ConfigError naming DNS_HOSTS_FILE, the path and the line as
 * an editor counts it; it is never silently ignored.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { createDnsStack, type DnsSettings, type DnsStack } from '../../src/dns/stack.js';
import { createLogger } from '../../src/log/logger.js';
import { connectTestRedis, type TestRedis } from '../support/services.js';

let dir: string;
let t: TestRedis;
const stacks: DnsStack[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fluxgate-hosts-'));
  t = await connectTestRedis();
});
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

/** The settings main.ts passes, with the config defaults, no DoH upstream and the given hosts sources. */
const settings = (o: { hostsFile: string | undefined; overrides?: string }): DnsSettings => ({
  dohUpstreams: '',
  dohTimeoutMs: 1_500,
  overrides: o.overrides ?? '',
  hostsFile: o.hostsFile,
  allowPrivate: false,
  allowCidrs: [],
  systemNames: [],
  family: 'ipv4first',
  rateLimitRps: 20,
  rateLimitBurst: 40,
  clusterDomain: 'fluxgate.internal',
  heartbeatMs: 5_000,
  replicaAddress: undefined,
  replicaId: 'dp-hosts-test',
  publicHost: '127.0.0.1',
});

const build = async (s: DnsSettings): Promise<DnsStack> => {
  const stack = await createDnsStack(s, {
    redis: t.redis,
    registry: new Registry(),
    log: createLogger({ level: 'silent', name: 'hosts-file-test' }),
  });
  stacks.push(stack);
  return stack;
};

const hostsFile = async (text: string): Promise<string> => {
  const path = join(dir, 'hosts');
  await writeFile(path, text);
  return path;
};

describe('DNS_HOSTS_FILE', () => {
  it('answers the names in the file (comments, blank lines, several names, IPv6), alongside DNS_OVERRIDES', async () => {
    const path = await hostsFile(
      [
        '# fluxgate upstreams',
        '',
        '10.20.0.7   api.internal.test   models.internal.test  # two names, one address',
        '\t10.20.0.8 Mixed.Case.Test.',
        'fd00::20 api.internal.test',
        '',
      ].join('\n'),
    );
    const { resolver } = await build(settings({ hostsFile: path, overrides: '192.0.2.1 env.internal.test' }));

    expect(await resolver.resolve('api.internal.test', 'A')).toEqual({
      addresses: ['10.20.0.7'],
      ttl: 60,
      rcode: 'NOERROR',
      source: 'override',
    });
    expect(await resolver.resolve('api.internal.test', 'AAAA')).toEqual({
      addresses: ['fd00::20'],
      ttl: 60,
      rcode: 'NOERROR',
      source: 'override',
    });
    expect(await resolver.resolve('models.internal.test', 'A')).toMatchObject({ addresses: ['10.20.0.7'], source: 'override' });
    expect(await resolver.resolve('mixed.case.test', 'A')).toMatchObject({ addresses: ['10.20.0.8'], source: 'override' });
    expect(await resolver.resolve('env.internal.test', 'A')).toMatchObject({ addresses: ['192.0.2.1'], source: 'override' });
    // A name in neither list has nowhere to go without a DoH upstream.
    expect(await resolver.resolve('absent.internal.test', 'A')).toEqual({ addresses: [], ttl: 0, rcode: 'SERVFAIL', source: null });

    // The lookup main.ts hands to the upstream pool (undici's interceptor callback), TTL in ms.
    const addrs = await new Promise<unknown>((res, rej) =>
      resolver.lookup(new URL('https://api.internal.test/v1'), {}, (err, a) => (err ? rej(err) : res(a))),
    );
    expect(addrs).toEqual([{ address: '10.20.0.7', family: 4, ttl: 60_000 }]);
  });

  it('treats `;` inside a `#` comment as part of the comment', async () => {
    const path = await hostsFile(
      ['# primary; the secondary is below', '10.20.0.7 a.internal.test # was 10.20.0.6; moved', '10.20.0.8 b.internal.test', ''].join('\n'),
    );
    const { resolver } = await build(settings({ hostsFile: path, overrides: '192.0.2.1 env.internal.test; 192.0.2.2 env2.internal.test' }));
    expect(await resolver.resolve('a.internal.test', 'A')).toMatchObject({ addresses: ['10.20.0.7'], source: 'override' });
    expect(await resolver.resolve('b.internal.test', 'A')).toMatchObject({ addresses: ['10.20.0.8'], source: 'override' });
    expect(await resolver.resolve('env2.internal.test', 'A')).toMatchObject({ addresses: ['192.0.2.2'], source: 'override' });
  });

  it.each([
    ['an address that is not an IP', 'bogus.example svc.test', '"bogus.example" is not an IP address'],
    ['an address with no name', '10.20.0.9', 'no name after 10.20.0.9'],
    ['an invalid host name', '10.20.0.9 bad_name..test', '"bad_name..test" is not a valid host name'],
  ])('refuses to start on a line with %s, naming DNS_HOSTS_FILE, its path and that line', async (_what, badLine, problem) => {
    // Comments (one holding a `;`), a blank line and several DNS_OVERRIDES entries before it
    // must not shift the line number or change the setting the error names.
    const path = await hostsFile(`# upstreams; keep sorted\n\n10.20.0.7 good.internal.test\n${badLine}\n`);
    const failure = build(settings({ hostsFile: path, overrides: '192.0.2.1 a.test; 192.0.2.2 b.test\n192.0.2.3 c.test' }));
    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(`DNS_HOSTS_FILE ${path} line 4: ${problem}`);
  });

  it('names DNS_OVERRIDES and its entry for a bad override, not the hosts file', async () => {
    const path = await hostsFile('10.20.0.7 good.internal.test\n');
    await expect(build(settings({ hostsFile: path, overrides: '192.0.2.1 a.test; nonsense b.test' }))).rejects.toThrow(
      'DNS_OVERRIDES entry 2: "nonsense" is not an IP address',
    );
  });

  it('refuses to start when the file does not exist', async () => {
    const path = join(dir, 'missing-hosts');
    const failure = build(settings({ hostsFile: path }));
    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(`DNS_HOSTS_FILE ${path}: cannot be read (ENOENT)`);
  });
});
