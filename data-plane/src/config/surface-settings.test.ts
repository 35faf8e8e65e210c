import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';

describe('proxy surface settings', () => {
  it('TRUSTED_PROXIES takes addresses and CIDRs, IPv4 and IPv6', () => {
    expect(loadConfig({}).TRUSTED_PROXIES).toEqual([]);
    expect(loadConfig({ TRUSTED_PROXIES: ' 10.0.0.2, 172.16.0.0/12 ,fd00::/8,::1 ' }).TRUSTED_PROXIES).toEqual([
      '10.0.0.2',
      '172.16.0.0/12',
      'fd00::/8',
      '::1',
    ]);
  });

  it('a bad TRUSTED_PROXIES entry is one line naming the variable and the entry position', () => {
    for (const bad of ['proxy.internal', '10.0.0.0/33', '10.0.0.2,fd00::/200', '10.0.0.0/']) {
      let message = '';
      try {
        loadConfig({ TRUSTED_PROXIES: bad });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        message = (e as Error).message;
      }
      expect(message, bad).toMatch(/^invalid TRUSTED_PROXIES: entry \d is not an IP address or CIDR/);
      expect(message.split('\n'), bad).toHaveLength(1);
    }
  });

  it('PROXY_MODEL_MANAGEMENT is off unless set', () => {
    expect(loadConfig({}).PROXY_MODEL_MANAGEMENT).toBe(false);
    expect(loadConfig({ PROXY_MODEL_MANAGEMENT: 'true' }).PROXY_MODEL_MANAGEMENT).toBe(true);
    expect(() => loadConfig({ PROXY_MODEL_MANAGEMENT: 'maybe' })).toThrow(/invalid PROXY_MODEL_MANAGEMENT/);
  });
});
