import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstreamPool, type DnsLookup } from '../../src/proxy/pool.js';
import { parseUpstreamUrls } from '../../src/proxy/upstreams.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { forward } from './helpers.js';

describe('upstream name resolution through an injected lookup (the DoH resolver seam)', () => {
  let mock: MockUpstream;
  beforeAll(async () => {
    mock = await startMockUpstream();
  });
  afterAll(async () => {
    await mock.close();
  });

  it('resolves through the lookup, keeps the Host of the configured URL, and maps lookup failures by code', async () => {
    const asked: string[] = [];
    const lookup: DnsLookup = (origin, _opts, cb) => {
      asked.push(origin.hostname);
      if (origin.hostname === 'models.fluxgate.test') cb(null, [{ address: '127.0.0.1', family: 4, ttl: 60 }]);
      else cb(Object.assign(new Error('no such name'), { code: 'ENOTFOUND' }), []);
    };
    const pool = createUpstreamPool(
      parseUpstreamUrls(`http://models.fluxgate.test:${mock.port},http://missing.fluxgate.test:${mock.port}`),
      { probe: false, lookup, maxRetries: 0 },
    );
    try {
      const names = new Set<string | null>();
      for (let i = 0; i < 2; i++) {
        const out = await forward(pool, { method: 'GET', path: '/echo', body: null, model: null }).done;
        names.add(out.upstream ?? out.error?.code ?? null);
      }
      // One went to the resolvable upstream, the other failed its lookup before sending anything.
      expect(names).toEqual(new Set([`models.fluxgate.test:${mock.port}`, 'upstream_unavailable']));
      expect(mock.requests[0]?.headers['host']).toBe(`models.fluxgate.test:${mock.port}`);
      expect(asked).toContain('models.fluxgate.test');
      expect(asked).toContain('missing.fluxgate.test');
    } finally {
      await pool.close();
    }
  });
});
