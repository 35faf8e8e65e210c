import { describe, expect, it } from 'vitest';
import { ConfigError, configWith, loadConfig } from './load.js';

const strong = (n: number): string => `k${n}Xb7QpL2vR9sT4wZ8yN3mC6fH1jD5gA0eU`;

describe('MCP configuration', () => {
  it('MCP_TOKENS: name:token is an operator, name:reader:token a reader; MCP_TOKEN stays separate', () => {
    const c = configWith({ MCP_TOKENS: ` alice:${strong(1)}, rita:reader:${strong(2)},ops:operator:${strong(3)}`, MCP_TOKEN: strong(4) });
    expect(c.MCP_TOKENS).toEqual([
      { name: 'alice', role: 'operator', token: strong(1) },
      { name: 'rita', role: 'reader', token: strong(2) },
      { name: 'ops', role: 'operator', token: strong(3) },
    ]);
    expect(c.MCP_TOKEN).toBe(strong(4));
    expect(c.MCP_MAX_PENALTY).toBe(86_400);
    expect(c.MCP_STDIO_ROLE).toBe('reader');
    expect(c.MCP_STDIO_NAME).toBe('stdio');
  });

  it('refuses weak, short, duplicated or malformed tokens, naming the entry and never the token', () => {
    const problem = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    const weak = 'changeme-changeme-changeme-changeme';
    const m = problem({ MCP_TOKENS: `bob:${weak}` });
    expect(m).toBe(
      'invalid MCP_TOKENS: entry 1 (bob): the token is too weak (only 8 distinct characters); use a random value, e.g. `openssl rand -base64 32`',
    );
    expect(m).not.toContain(weak);
    expect(problem({ MCP_TOKENS: `a:${strong(1)},b:short` })).toMatch(/entry 2 \(b\): the token must be at least 32 characters/);
    expect(problem({ MCP_TOKENS: `a:${strong(1)},a:${strong(2)}` })).toMatch(/entry 2: the name a is used twice/);
    expect(problem({ MCP_TOKENS: `a:${strong(1)},b:${strong(1)}` })).toMatch(/entry 2 \(b\): the same token is given to two names/);
    expect(problem({ MCP_TOKENS: 'justatoken' })).toMatch(/entry 1: expected name:token or name:reader\|operator:token/);
    expect(problem({ MCP_TOKENS: `bad name:${strong(1)}` })).toMatch(/entry 1: the name must be/);
    expect(problem({ MCP_TOKEN: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' })).toMatch(
      /^invalid MCP_TOKEN: the token is too weak \(only 1 distinct characters\)/,
    );
    expect(problem({ MCP_TOKEN: strong(1), MCP_TOKENS: `x:${strong(1)}` })).toBe('invalid MCP_TOKEN: the same token is also in MCP_TOKENS');
    expect(problem({ MCP_TOKEN: strong(1), MCP_TOKENS: `mcp-token:${strong(2)}` })).toMatch(/the name mcp-token is MCP_TOKEN's/);
    expect(problem({ MCP_STDIO_ROLE: 'admin' })).toMatch(/^invalid MCP_STDIO_ROLE: /);
  });

  it('allowed hosts and origins are checked for shape', () => {
    const c = configWith({
      MCP_ALLOWED_HOSTS: 'MCP.example.com, [::1]',
      MCP_ALLOWED_ORIGINS: 'https://console.example.com/, http://10.0.0.5:8080',
    });
    expect(c.MCP_ALLOWED_HOSTS).toEqual(['mcp.example.com', '[::1]']);
    expect(c.MCP_ALLOWED_ORIGINS).toEqual(['https://console.example.com', 'http://10.0.0.5:8080']);
    expect(() => configWith({ MCP_ALLOWED_HOSTS: 'mcp.example.com:8000' })).toThrow(
      /MCP_ALLOWED_HOSTS: expected host names without a port/,
    );
    expect(() => configWith({ MCP_ALLOWED_ORIGINS: 'https://console.example.com/app' })).toThrow(/MCP_ALLOWED_ORIGINS: expected origins/);
  });
});
