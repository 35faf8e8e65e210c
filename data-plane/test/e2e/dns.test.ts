import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';

const run = promisify(execFile);
let mock: MockUpstream;
let gw: Gateway;
let key: string;

beforeAll(async () => {
  mock = await startMockUpstream({ events: 2 });
  // `models.fluxgate.test` exists only in the gateway's overrides: the system resolver cannot answer it.
  gw = await startGateway({
    upstreams: `http://models.fluxgate.test:${mock.port}`,
    env: { DNS_OVERRIDES: '127.0.0.1 models.fluxgate.test; 127.0.0.1 app.fluxgate.test', DOH_UPSTREAMS: '' },
  });
  key = (await gw.issueKey()).secret;
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
});

describe('the gateway resolves upstream names itself', () => {
  it('reaches an upstream named only by a gateway override', async () => {
    const res = await request(`${gw.url}/v1/models`, { dispatcher: gw.dispatcher, headers: { authorization: `Bearer ${key}` } });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { data: unknown[] }).data.length).toBeGreaterThan(0);
    expect(mock.requests.at(-1)?.headers.host).toBe(`models.fluxgate.test:${mock.port}`);
  });
});

describe('/dns-query (RFC 8484)', () => {
  it('answers a wire-format POST with the override address and the request id', async () => {
    const query = dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'app.fluxgate.test' }] });
    const res = await request(`${gw.url}/dns-query`, { method: 'POST', dispatcher: gw.dispatcher, headers: { 'content-type': 'application/dns-message' }, body: query });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/dns-message');
    const answer = dnsPacket.decode(Buffer.from(await res.body.arrayBuffer()));
    expect(answer.id).toBe(4242);
    expect(answer.answers?.[0]).toMatchObject({ type: 'A', name: 'app.fluxgate.test', data: '127.0.0.1' });
  });

  it('answers random bytes with 400 and keeps serving', async () => {
    const res = await request(`${gw.url}/dns-query`, { method: 'POST', dispatcher: gw.dispatcher, headers: { 'content-type': 'application/dns-message' }, body: Buffer.from([1, 2, 3, 250, 251]) });
    expect(res.statusCode).toBe(400);
    await res.body.text();
    const health = await request(`${gw.url}/healthz`, { dispatcher: gw.dispatcher });
    expect(health.statusCode).toBe(200);
    await health.body.text();
  });

  it('serves curl --doh-url: curl resolves the override through the gateway and fetches through it', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--doh-url', `https://127.0.0.1:${gw.publicPort}/dns-query`,
      '--doh-insecure',
      '-H', `authorization: Bearer ${key}`,
      `http://app.fluxgate.test:${mock.port}/v1/models`,
    ]);
    expect((JSON.parse(stdout) as { object: string }).object).toBe('list');
  });
});
