import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ok } from '../api/client';
import type { APIKey, Scope } from '../api/types';
import { Button, Card, Confirm, CopyButton, Empty, Loading, PageTitle, ProblemView, formatTime, useNotice } from '../components/ui';

const scopes: { scope: Scope; what: string }[] = [
  { scope: 'read', what: 'see integrations, status and logs' },
  { scope: 'write', what: 'create, change, deploy and stop integrations; secrets' },
  { scope: 'dlq', what: 'see, replay and discard dead letters' },
  { scope: 'admin', what: 'everything above, and manage keys' },
];

/** ApiKeys lists the tenant's keys, creates one with scopes, revokes one. */
export function ApiKeys() {
  const queries = useQueryClient();
  const notice = useNotice();
  const list = useQuery({ queryKey: ['api-keys'], queryFn: () => ok(api.GET('/v1/api-keys')) });
  const [chosen, setChosen] = useState<Scope[]>(['read']);
  const [revoking, setRevoking] = useState<APIKey | null>(null);
  const create = useMutation({
    mutationFn: () => ok(api.POST('/v1/api-keys', { body: { scopes: chosen } })),
    onSuccess: (k) => {
      notice(`Created key ${k.prefix}… with scopes ${(k.scopes ?? []).join(', ')}.`);
      queries.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => ok(api.DELETE('/v1/api-keys/{keyId}', { params: { path: { keyId: id } } })),
    onSuccess: (_, id) => {
      notice(`Revoked key ${id}: it no longer authenticates.`);
      setRevoking(null);
      queries.invalidateQueries({ queryKey: ['api-keys'] });
    },
    onError: () => setRevoking(null),
  });
  const items = list.data?.items ?? [];
  return (
    <div className="space-y-4">
      <PageTitle>API keys</PageTitle>
      <Card title="New key">
        <fieldset className="space-y-1">
          <legend className="text-sm font-medium text-slate-700">Scopes</legend>
          {scopes.map((s) => (
            <label key={s.scope} className="flex items-center gap-2 text-sm">
              <input
                type="checkbox"
                checked={chosen.includes(s.scope)}
                onChange={(e) => setChosen(e.target.checked ? [...chosen, s.scope] : chosen.filter((c) => c !== s.scope))}
              />
              <span className="font-mono">{s.scope}</span>
              <span className="text-slate-500">— {s.what}</span>
            </label>
          ))}
        </fieldset>
        <div className="mt-3 flex flex-wrap items-center gap-2">
          <Button kind="primary" disabled={create.isPending || chosen.length === 0} onClick={() => create.mutate()}>
            Create key
          </Button>
          {chosen.length === 0 && <span className="text-xs text-slate-500">Pick at least one scope.</span>}
        </div>
        <div className="mt-2">
          <ProblemView error={create.error} />
        </div>
        {create.data && (
          <div className="mt-3 rounded bg-amber-50 p-3 text-sm">
            <p>The new key, shown only now:</p>
            <div className="mt-1 flex flex-wrap items-center gap-2">
              <code data-testid="new-api-key" className="break-all rounded bg-white px-2 py-1 text-xs">
                {create.data.secret}
              </code>
              <CopyButton text={create.data.secret} label="Copy key" />
            </div>
          </div>
        )}
      </Card>
      {list.isPending && <Loading what="keys" />}
      <ProblemView error={list.error} />
      <ProblemView error={revoke.error} />
      {list.isSuccess && items.length === 0 && <Empty title="No keys">Create one above.</Empty>}
      {items.length > 0 && (
        <div className="overflow-x-auto rounded border border-slate-200 bg-white">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">API keys</caption>
            <thead className="bg-slate-50 text-slate-600">
              <tr>
                <th className="px-3 py-2">Key</th>
                <th className="px-3 py-2">Scopes</th>
                <th className="px-3 py-2">Created</th>
                <th className="px-3 py-2">Last used</th>
                <th className="px-3 py-2">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((k) => (
                <tr key={k.id} className="border-t border-slate-100">
                  <td className="px-3 py-2">
                    <div className="font-mono text-xs">{k.prefix}…</div>
                    <div className="font-mono text-xs text-slate-500">{k.id}</div>
                  </td>
                  <td className="px-3 py-2">{(k.scopes ?? []).join(', ')}</td>
                  <td className="px-3 py-2">{formatTime(k.created_at)}</td>
                  <td className="px-3 py-2">{formatTime(k.last_used_at)}</td>
                  <td className="px-3 py-2 text-right">
                    {k.revoked_at ? (
                      <span className="text-xs text-slate-500">revoked {formatTime(k.revoked_at)}</span>
                    ) : (
                      <Button kind="ghost" aria-label={`Revoke ${k.prefix}`} onClick={() => setRevoking(k)}>
                        Revoke
                      </Button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Confirm
        open={!!revoking}
        title={`Revoke key ${revoking?.prefix ?? ''}…?`}
        confirmLabel="Revoke"
        busy={revoke.isPending}
        onCancel={() => setRevoking(null)}
        onConfirm={() => revoking && revoke.mutate(revoking.id)}
      >
        Whoever uses it gets 401 from now on. Revoking the key you signed in with signs you out on your next request.
      </Confirm>
    </div>
  );
}
