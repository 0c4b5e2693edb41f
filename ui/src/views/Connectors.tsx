import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api, ok } from '../api/client';
import type { Connector } from '../api/types';
import { Card, Empty, Loading, PageTitle, ProblemView, cx, inputClass } from '../components/ui';
import { SchemaDoc } from '../components/SchemaDoc';

const kinds = ['consumer', 'converter', 'filter', 'producer'] as const;

/** Connectors is the catalogue: what each connector does and how it is configured. */
export function Connectors() {
  const list = useQuery({ queryKey: ['connectors'], queryFn: () => ok(api.GET('/v1/connectors')), staleTime: 300_000 });
  const [filter, setFilter] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const items = (list.data?.items ?? []).filter(
    (c) => !filter || c.name.includes(filter.toLowerCase()) || c.description.toLowerCase().includes(filter.toLowerCase()),
  );
  return (
    <div className="space-y-4">
      <PageTitle>Connectors</PageTitle>
      <p className="text-sm text-slate-600">
        A consumer takes data in, converters and filters shape it, producers deliver it. Each connector's settings are listed below; the
        integration wizard builds its form from the same schema.
      </p>
      <label className="flex max-w-sm flex-col gap-1 text-sm">
        <span className="font-medium">Filter</span>
        <input className={inputClass} value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="name or description" />
      </label>
      {list.isPending && <Loading what="connectors" />}
      <ProblemView error={list.error} />
      {list.isSuccess && items.length === 0 && <Empty title="No connector matches">Clear the filter to see them all.</Empty>}
      {kinds.map((kind) => {
        const group = items.filter((c) => c.kind === kind);
        if (group.length === 0) return null;
        return (
          <section key={kind} aria-labelledby={`kind-${kind}`}>
            <h2 id={`kind-${kind}`} className="mb-2 text-base font-semibold capitalize">
              {kind}s
            </h2>
            <div className="grid gap-3 md:grid-cols-2">
              {group.map((c) => (
                <ConnectorCard key={c.name} c={c} open={open === c.name} onToggle={() => setOpen(open === c.name ? null : c.name)} />
              ))}
            </div>
          </section>
        );
      })}
    </div>
  );
}

function ConnectorCard({ c, open, onToggle }: { c: Connector; open: boolean; onToggle: () => void }) {
  return (
    <Card className={cx(open && 'md:col-span-2')}>
      <div className="flex items-start justify-between gap-2">
        <div>
          <h3 className="font-mono text-sm font-semibold">{c.name}</h3>
          <p className="text-sm text-slate-700">{c.description}</p>
        </div>
        <button type="button" className="text-sm text-blue-800 underline" aria-expanded={open} onClick={onToggle}>
          {open ? 'Hide settings' : 'Settings'}
          <span className="sr-only"> of {c.name}</span>
        </button>
      </div>
      {open && (
        <div className="mt-3 grid gap-4 lg:grid-cols-2">
          <div>
            <h4 className="mb-1 text-sm font-semibold">Settings</h4>
            <SchemaDoc schema={c.schema} />
          </div>
          <div>
            <h4 className="mb-1 text-sm font-semibold">Example</h4>
            {c.example === null || c.example === undefined ? (
              <p className="text-sm text-slate-500">No example.</p>
            ) : (
              <pre className="overflow-x-auto rounded bg-slate-900 p-3 text-xs text-slate-100">{JSON.stringify(c.example, null, 2)}</pre>
            )}
          </div>
        </div>
      )}
    </Card>
  );
}
