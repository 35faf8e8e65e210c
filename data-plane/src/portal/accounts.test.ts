import { describe, expect, it } from 'vitest';
import { normaliseEmail } from './accounts.js';
import { keyIdFromPath } from './keys.js';

describe('normaliseEmail', () => {
  it('trims and lower-cases', () => {
    expect(normaliseEmail('  Ada.Lovelace+Portal@Example.COM ')).toBe('ada.lovelace+portal@example.com');
  });

  it.each([
    '',
    'no-at-sign',
    '@example.com',
    'a@b',
    'a b@example.com',
    "x'; DROP TABLE users;--@example.com",
    `${'a'.repeat(65)}@example.com`,
    `a@${'b'.repeat(250)}.com`,
  ])('refuses %j', (raw) => {
    expect(normaliseEmail(raw)).toBeNull();
  });
});

describe('keyIdFromPath', () => {
  it('takes a uuid after /portal/keys/ and nothing else', () => {
    const id = '0b7f4a3e-2c1d-4e5f-8a9b-0c1d2e3f4a5b';
    expect(keyIdFromPath(`/portal/keys/${id.toUpperCase()}`)).toBe(id);
    expect(keyIdFromPath(`/portal/keys/${id}/x`)).toBeNull();
    expect(keyIdFromPath('/portal/keys/1%27%20OR%201=1')).toBeNull();
    expect(keyIdFromPath('/portal/keys/')).toBeNull();
  });
});
