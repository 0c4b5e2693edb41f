import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, ok } from '../api/client';
import { Card, Loading, PageTitle, ProblemView, StatusBadge } from '../components/ui';

/** Overview is the platform admin's summary: tenants, integrations, traffic and the dependencies' health. */
export function Overview() {
  const overview = useQuery({ queryKey: ['overview'], queryFn: () => ok(api.GET('/v1/overview')), refetchInterval: 5000 });
  // /readyz answers 503 with the same body when a dependency is down: show it either way.
  const ready = useQuery({
    queryKey: ['readyz'],
    queryFn: async () => {
      const { data, error, response } = await api.GET('/readyz');
      return { status: response.status, body: data ?? (error as typeof data) };
    },
    refetchInterval: 5000,
  });
  const o = overview.data;
  return (
    <div className="space-y-4">
      <PageTitle>Platform overview</PageTitle>
      {overview.isPending && <Loading what="the overview" />}
      <ProblemView error={overview.error} />
      {o && (
        <>
          <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
            <Stat label="Tenants" value={o.tenants.total} detail={`${o.tenants.active} active, ${o.tenants.provisioning} provisioning, ${o.tenants.failed} failed`} />
            <Stat
              label="Integrations"
              value={o.integrations.total}
              detail={`${o.integrations.running} running, ${o.integrations.degraded} degraded, ${o.integrations.stopped} stopped`}
            />
            <Stat label="Messages per second" value={o.messages_per_second.toFixed(1)} detail={`${o.errors_per_second.toFixed(2)} errors per second`} />
            <Stat label="Dead letters" value={o.dlq_messages} detail="across all tenants" />
          </div>
          {o.tenants.total === 0 && (
            <p className="text-sm text-slate-600">
              No tenants yet: <Link className="text-blue-800 underline" to="/tenants">create the first one</Link>.
            </p>
          )}
          <Card title="Components">
            <ul className="flex flex-wrap gap-4 text-sm" data-testid="components">
              {Object.entries(o.components).map(([name, state]) => (
                <li key={name} className="flex items-center gap-2">
                  <span className="font-medium">{name}</span> <StatusBadge status={String(state)} />
                </li>
              ))}
            </ul>
          </Card>
        </>
      )}
      <Card title="Readiness (/readyz)">
        {ready.isPending && <Loading what="readiness" />}
        {ready.data && (
          <div className="space-y-2 text-sm">
            <p>
              <StatusBadge status={ready.data.body?.status === 'ready' ? 'up' : 'down'} /> {ready.data.body?.status ?? `HTTP ${ready.data.status}`}
            </p>
            <ul className="space-y-1">
              {Object.entries(ready.data.body?.dependencies ?? {}).map(([name, dep]) => (
                <li key={name}>
                  <span className="font-medium">{name}</span> <StatusBadge status={dep.status} /> {dep.error && <span className="text-red-700">{dep.error}</span>}
                </li>
              ))}
            </ul>
          </div>
        )}
      </Card>
    </div>
  );
}

function Stat({ label, value, detail }: { label: string; value: number | string; detail: string }) {
  return (
    <Card>
      <p className="text-sm text-slate-500">{label}</p>
      <p className="text-2xl font-semibold" data-testid={`stat-${label.toLowerCase().replace(/\s+/g, '-')}`}>
        {value}
      </p>
      <p className="text-xs text-slate-500">{detail}</p>
    </Card>
  );
}
