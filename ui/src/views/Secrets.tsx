import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ok } from '../api/client';
import { Button, Card, Empty, Field, Loading, PageTitle, ProblemView, formatTime, inputClass, useNotice } from '../components/ui';

/** Secrets lists the tenant's secret names and writes new values; values are never shown. */
export function Secrets() {
  const queries = useQueryClient();
  const notice = useNotice();
  const list = useQuery({ queryKey: ['secrets'], queryFn: () => ok(api.GET('/v1/secrets')) });
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const put = useMutation({
    mutationFn: () => ok(api.PUT('/v1/secrets/{name}', { params: { path: { name } }, body: { value } })),
    onSuccess: (s) => {
      notice(`Stored secret ${s.name} (version ${s.version}).`);
      setValue('');
      queries.invalidateQueries({ queryKey: ['secrets'] });
    },
  });
  const remove = useMutation({
    mutationFn: (n: string) => ok(api.DELETE('/v1/secrets/{name}', { params: { path: { name: n } } })),
    onSuccess: (_, n) => {
      notice(`Deleted secret ${n}.`);
      queries.invalidateQueries({ queryKey: ['secrets'] });
    },
  });
  const items = list.data?.items ?? [];
  return (
    <div className="space-y-4">
      <PageTitle>Secrets</PageTitle>
      <Card title="Store a secret">
        <form
          className="grid gap-3 sm:grid-cols-2"
          onSubmit={(e) => {
            e.preventDefault();
            put.mutate();
          }}
        >
          <Field label="Name" htmlFor="secret-name" hint="Specs refer to it as { secret: NAME }.">
            <input id="secret-name" className={inputClass} value={name} onChange={(e) => setName(e.target.value)} required />
          </Field>
          <Field label="Value" htmlFor="secret-value" hint="Stored encrypted; never shown again.">
            <input id="secret-value" type="password" autoComplete="off" className={inputClass} value={value} onChange={(e) => setValue(e.target.value)} required />
          </Field>
          <div className="sm:col-span-2">
            <ProblemView error={put.error} />
          </div>
          <div>
            <Button kind="primary" type="submit" disabled={put.isPending}>
              Store secret
            </Button>
          </div>
        </form>
      </Card>
      {list.isPending && <Loading what="secrets" />}
      <ProblemView error={list.error ?? remove.error} />
      {list.isSuccess && items.length === 0 && <Empty title="No secrets">Store one above to use it in a connector's config.</Empty>}
      {items.length > 0 && (
        <ul className="divide-y divide-slate-100 rounded border border-slate-200 bg-white">
          {items.map((s) => (
            <li key={s.name} className="flex flex-wrap items-center justify-between gap-2 px-3 py-2 text-sm">
              <span>
                <span className="font-mono">{s.name}</span> <span className="text-slate-500">v{s.version}, updated {formatTime(s.updated_at)}</span>
              </span>
              <Button kind="ghost" aria-label={`Delete secret ${s.name}`} onClick={() => remove.mutate(s.name)}>
                Delete
              </Button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
