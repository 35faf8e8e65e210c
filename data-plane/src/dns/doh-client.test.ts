import { describe, expect, it } from 'vitest';
import { DEFAULT_DOH_UPSTREAMS, DohClient, parseDohUpstreams } from './doh-client.js';

describe('DohClient configuration', () => {
  it('takes IP-literal https URLs (v4 and v6) and refuses what would need DNS or plain HTTP', async () => {
    expect(parseDohUpstreams(` ${DEFAULT_DOH_UPSTREAMS} ,, `)).toEqual(['https://1.1.1.1/dns-query', 'https://9.9.9.9/dns-query']);
    const ok = new DohClient({ servers: [...parseDohUpstreams(DEFAULT_DOH_UPSTREAMS), 'https://[2606:4700:4700::1111]/dns-query'] });
    expect(ok.status().map((s) => s.index)).toEqual([0, 1, 2]);
    await ok.close();
    expect(() => new DohClient({ servers: ['https://dns.google/dns-query'] })).toThrow(/IP-literal/);
    expect(() => new DohClient({ servers: ['http://1.1.1.1/dns-query'] })).toThrow(/https/);
    expect(() => new DohClient({ servers: [] })).toThrow(/at least one/);
    const named = new DohClient({ servers: ['https://dns.google/dns-query'], allowHostnames: true });
    await named.close();
  });
});
