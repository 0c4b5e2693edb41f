// The signed-in API key lives in sessionStorage only: it is gone when the
// tab closes, and it is never put in a URL.
const STORAGE_KEY = 'vrsky.apiKey';

export type Role = 'admin' | 'tenant';

export interface Session {
  key: string;
  role: Role;
  tenant?: string;
}

/** roleOf tells the platform admin key from a tenant's key by its prefix. */
export function roleOf(key: string): Role {
  return key.startsWith('vrsky_admin_') ? 'admin' : 'tenant';
}

export function loadKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function saveKey(key: string): void {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function clearKey(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** looksLikeKey rejects what cannot be a key before it is sent anywhere. */
export function looksLikeKey(key: string): boolean {
  return /^vrsky_[A-Za-z0-9_]{8,200}$/.test(key);
}
