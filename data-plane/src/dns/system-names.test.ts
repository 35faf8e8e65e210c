import { describe, expect, it } from 'vitest';
import { createSystemNames, type SystemLookup } from './system-names.js';

describe('createSystemNames', () => {
  it('matches exact names and names strictly under *.suffix, and refuses other patterns', () => {
    const s = createSystemNames(['Ollama', '*.svc.cluster.local']);
    expect(['ollama', 'vllm.models.svc.cluster.local'].map((n) => s.matches(n))).toEqual([true, true]);
    expect(['ollama2', 'svc.cluster.local', 'x.ollama'].map((n) => s.matches(n))).toEqual([false, false, false]);
    for (const bad of ['*', 'a.*.b', 'no spaces', '**.x']) expect(() => createSystemNames([bad]), bad).toThrow('DNS_SYSTEM_NAMES');
  });

  it('asks the system once per name and family for ttlSec, coalescing concurrent lookups; failures are not kept', async () => {
    let now = 0;
    const calls: string[] = [];
    let fail = false;
    const lookup: SystemLookup = async (name, family) => {
      calls.push(`${family} ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      if (fail) throw Object.assign(new Error('try again'), { code: 'EAI_AGAIN' });
      return family === 4 ? ['172.18.0.5'] : [];
    };
    const s = createSystemNames(['ollama'], { lookup, ttlSec: 5, now: () => now });
    const all = await Promise.all(Array.from({ length: 10 }, () => s.resolve('ollama', 'A')));
    expect(all[0]).toEqual({ addresses: ['172.18.0.5'], ttl: 5, rcode: 'NOERROR' });
    expect(await s.resolve('ollama', 'AAAA')).toEqual({ addresses: [], ttl: 5, rcode: 'NOERROR' });
    now = 4_500;
    expect(await s.resolve('ollama', 'A')).toEqual({ addresses: ['172.18.0.5'], ttl: 1, rcode: 'NOERROR' });
    expect(calls).toEqual(['4 ollama', '6 ollama']);
    now = 5_000;
    fail = true;
    expect(await s.resolve('ollama', 'A')).toEqual({ addresses: [], ttl: 0, rcode: 'SERVFAIL' });
    fail = false;
    expect(await s.resolve('ollama', 'A')).toMatchObject({ rcode: 'NOERROR', addresses: ['172.18.0.5'] });
    expect(calls).toHaveLength(4);
  });
});
