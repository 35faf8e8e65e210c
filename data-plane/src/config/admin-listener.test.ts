import { describe, expect, it } from 'vitest';
import { adminTlsEnabled, isLoopbackHost } from './admin-listener.js';
import { ConfigError, loadConfig } from './load.js';
import { loadSupervisorConfig } from '../standalone/config.js';

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.8.9.10', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST'])(
    '%s is loopback',
    (h) => {
      expect(isLoopbackHost(h)).toBe(true);
    },
  );
  it.each(['0.0.0.0', '::', '10.0.0.5', '::ffff:10.0.0.1', '128.0.0.1', 'fluxgate.internal', 'localhost.example.com', '2001:db8::1'])(
    '%s is not',
    (h) => {
      expect(isLoopbackHost(h)).toBe(false);
    },
  );
});

describe('admin listener settings at config parse', () => {
  const refuse = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('accepted');
  };

  it('refuses a non-loopback ADMIN_HOST in plain HTTP, naming the variable and the way out', () => {
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'admin.internal']) {
      const message = refuse({ ADMIN_HOST: host });
      expect(message).toMatch(/^invalid ADMIN_HOST: .* is not a loopback address/);
      expect(message).toContain('ADMIN_TLS=true');
      expect(message).toContain('ADMIN_TLS_CERT_PATH');
    }
    // The supervisor checks the same before starting anything.
    expect(() => loadSupervisorConfig({ ADMIN_HOST: '0.0.0.0' })).toThrow(/invalid ADMIN_HOST/);
  });

  it('accepts it with TLS, from ADMIN_TLS=true or from a certificate pair of its own', () => {
    expect(adminTlsEnabled(loadConfig({ ADMIN_HOST: '0.0.0.0', ADMIN_TLS: 'true' }))).toBe(true);
    const own = loadConfig({ ADMIN_HOST: '0.0.0.0', ADMIN_TLS_CERT_PATH: '/c.pem', ADMIN_TLS_KEY_PATH: '/k.pem' });
    expect(adminTlsEnabled(own)).toBe(true);
    expect(adminTlsEnabled(loadConfig({}))).toBe(false);
    // Loopback in plain HTTP stays the default.
    expect(loadConfig({}).ADMIN_HOST).toBe('127.0.0.1');
  });

  it('refuses half a pair, and a pair with ADMIN_TLS=false', () => {
    expect(refuse({ ADMIN_TLS_CERT_PATH: '/c.pem' })).toMatch(/ADMIN_TLS_CERT_PATH and ADMIN_TLS_KEY_PATH must be set together/);
    expect(refuse({ ADMIN_TLS_KEY_PATH: '/k.pem' })).toMatch(/must be set together/);
    expect(refuse({ ADMIN_TLS: 'false', ADMIN_TLS_CERT_PATH: '/c.pem', ADMIN_TLS_KEY_PATH: '/k.pem' })).toMatch(/^invalid ADMIN_TLS:/);
    expect(refuse({ ADMIN_TLS: 'maybe' })).toMatch(/invalid ADMIN_TLS/);
  });
});
