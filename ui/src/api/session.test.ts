import { describe, expect, it } from 'vitest';
import { clearKey, loadKey, looksLikeKey, roleOf, saveKey } from './session';

describe('the session', () => {
  it('tells the admin key from a tenant key', () => {
    expect(roleOf('vrsky_admin_' + 'f'.repeat(64))).toBe('admin');
    expect(roleOf('vrsky_' + 'f'.repeat(64))).toBe('tenant');
  });
  it('keeps the key in sessionStorage only', () => {
    saveKey('vrsky_abc12345');
    expect(sessionStorage.getItem('vrsky.apiKey')).toBe('vrsky_abc12345');
    expect(localStorage.length).toBe(0);
    expect(loadKey()).toBe('vrsky_abc12345');
    clearKey();
    expect(loadKey()).toBeNull();
  });
  it('refuses what cannot be a key', () => {
    expect(looksLikeKey('vrsky_' + 'a'.repeat(64))).toBe(true);
    for (const bad of ['', 'abc', 'Bearer vrsky_aaaaaaaaaa', 'vrsky_aa', 'vrsky_' + 'a'.repeat(300), 'vrsky_aaaaaaaa\nX-Evil: 1', 'vrsky_aaaa aaaa']) {
      expect(looksLikeKey(bad), bad).toBe(false);
    }
  });
});
