import { lazy, Suspense, useCallback, useState } from 'react';
import { NavLink, Navigate, Route, Routes } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { clearKey, loadKey, roleOf, type Session } from './api/session';
import { SignIn } from './views/SignIn';
import { Tenants } from './views/Tenants';
import { ApiKeys } from './views/ApiKeys';
import { Connectors } from './views/Connectors';
import { Integrations } from './views/Integrations';
import { IntegrationDetail } from './views/IntegrationDetail';
import { DeadLetters } from './views/DeadLetters';
import { Overview } from './views/Overview';
import { Secrets } from './views/Secrets';
import { Loading, cx } from './components/ui';

// The wizard carries the form generator, the validator and the YAML
// editor: it loads only when opened.
const Wizard = lazy(() => import('./views/Wizard'));

function restore(): Session | null {
  const key = loadKey();
  if (!key) return null;
  const tenant = sessionStorage.getItem('vrsky.tenant') ?? undefined;
  return { key, role: roleOf(key), tenant };
}

export function App() {
  const [session, setSession] = useState<Session | null>(restore);
  const queries = useQueryClient();
  const signOut = useCallback(() => {
    clearKey();
    sessionStorage.removeItem('vrsky.tenant');
    queries.clear();
    setSession(null);
  }, [queries]);

  if (!session) {
    return (
      <SignIn
        onSignedIn={(s) => {
          if (s.tenant) sessionStorage.setItem('vrsky.tenant', s.tenant);
          setSession(s);
        }}
      />
    );
  }
  const admin = session.role === 'admin';
  const links = admin
    ? [
        ['/overview', 'Overview'],
        ['/tenants', 'Tenants'],
        ['/connectors', 'Connectors'],
      ]
    : [
        ['/integrations', 'Integrations'],
        ['/dlq', 'Dead letters'],
        ['/keys', 'API keys'],
        ['/secrets', 'Secrets'],
        ['/connectors', 'Connectors'],
      ];
  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:bg-white focus:p-2">
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-2">
          <span className="font-semibold text-blue-900">VRSky</span>
          <nav aria-label="Main" className="flex flex-wrap gap-1">
            {links.map(([to, label]) => (
              <NavLink
                key={to}
                to={to}
                className={({ isActive }) =>
                  cx('rounded px-2 py-1 text-sm', isActive ? 'bg-blue-100 text-blue-900' : 'text-slate-700 hover:bg-slate-100')
                }
              >
                {label}
              </NavLink>
            ))}
          </nav>
          <div className="ml-auto flex items-center gap-2 text-sm text-slate-600">
            <span data-testid="whoami">{admin ? 'platform admin' : `tenant ${session.tenant ?? ''}`}</span>
            <a className="text-blue-800 underline" href="/docs">
              API reference
            </a>
            <button type="button" className="rounded px-2 py-1 text-blue-800 hover:bg-blue-50" onClick={signOut}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-6xl px-4 py-6">
        <Suspense fallback={<Loading what="the view" />}>
          <Routes>
            {admin ? (
              <>
                <Route path="/overview" element={<Overview />} />
                <Route path="/tenants" element={<Tenants />} />
                <Route path="/connectors" element={<Connectors />} />
                <Route path="*" element={<Navigate to="/overview" replace />} />
              </>
            ) : (
              <>
                <Route path="/integrations" element={<Integrations />} />
                <Route path="/integrations/new" element={<Wizard />} />
                <Route path="/integrations/:id/edit" element={<Wizard />} />
                <Route path="/integrations/:id/*" element={<IntegrationDetail tenant={session.tenant ?? ''} />} />
                <Route path="/dlq" element={<DeadLetters />} />
                <Route path="/keys" element={<ApiKeys />} />
                <Route path="/secrets" element={<Secrets />} />
                <Route path="/connectors" element={<Connectors />} />
                <Route path="*" element={<Navigate to="/integrations" replace />} />
              </>
            )}
          </Routes>
        </Suspense>
      </main>
    </div>
  );
}
