import { useState } from 'react';
import { api, ok } from '../api/client';
import { clearKey, looksLikeKey, roleOf, saveKey, type Session } from '../api/session';
import { Button, Field, ProblemView, inputClass } from '../components/ui';

/**
 * SignIn asks for an API key, checks it against the API and keeps it in
 * sessionStorage. The platform admin key opens the platform views; a
 * tenant's key its tenant's.
 */
export function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const k = key.trim();
    if (!looksLikeKey(k)) {
      setError(new Error('That is not a VRSky API key: keys start with vrsky_.'));
      return;
    }
    setBusy(true);
    setError(null);
    saveKey(k);
    try {
      const role = roleOf(k);
      if (role === 'admin') {
        await ok(api.GET('/v1/tenants', { params: { query: { limit: 1 } } }));
        onSignedIn({ key: k, role });
      } else {
        const keys = await ok(api.GET('/v1/api-keys'));
        onSignedIn({ key: k, role, tenant: keys.items?.[0]?.tenant_id });
      }
    } catch (err) {
      clearKey();
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" className="flex min-h-screen items-center justify-center p-4">
      <form onSubmit={submit} className="w-full max-w-md space-y-4 rounded border border-slate-200 bg-white p-6 shadow-sm" aria-labelledby="signin-title">
        <h1 id="signin-title" className="text-xl font-semibold">
          Sign in to VRSky
        </h1>
        <p className="text-sm text-slate-600">
          Paste an API key. The platform admin key (under <code>vrsky dev</code> it is in <code>.vrsky/admin-key</code>) manages tenants; a
          tenant's key manages its integrations. The key stays in this browser tab only.
        </p>
        <Field label="API key" htmlFor="api-key">
          <input
            id="api-key"
            name="api-key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            className={inputClass}
            value={key}
            onChange={(e) => setKey(e.target.value)}
            required
          />
        </Field>
        <ProblemView error={error} />
        <Button kind="primary" type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </Button>
      </form>
    </main>
  );
}
