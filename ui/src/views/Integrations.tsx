import { Link } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { api, ok } from '../api/client';
import { Empty, Loading, PageTitle, ProblemView, StatusBadge, formatTime } from '../components/ui';

/** Integrations lists the tenant's integrations with their status. */
export function Integrations() {
  const list = useQuery({
    queryKey: ['integrations'],
    queryFn: () => ok(api.GET('/v1/integrations', { params: { query: { limit: 100 } } })),
    refetchInterval: 5000,
  });
  const items = list.data?.items ?? [];
  return (
    <div className="space-y-4">
      <PageTitle
        actions={
          <Link to="/integrations/new" className="rounded bg-blue-700 px-3 py-1.5 text-sm font-medium text-white hover:bg-blue-800">
            New integration
          </Link>
        }
      >
        Integrations
      </PageTitle>
      {list.isPending && <Loading what="integrations" />}
      <ProblemView error={list.error} />
      {list.isSuccess && items.length === 0 && (
        <Empty title="No integrations yet">
          Build one with <Link className="text-blue-800 underline" to="/integrations/new">New integration</Link>: pick a consumer, the steps and
          where the messages go, test it with a sample, then deploy.
        </Empty>
      )}
      {items.length > 0 && (
        <div className="overflow-x-auto rounded border border-slate-200 bg-white">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Integrations</caption>
            <thead className="bg-slate-50 text-slate-600">
              <tr>
                <th className="px-3 py-2">Integration</th>
                <th className="px-3 py-2">Status</th>
                <th className="px-3 py-2">Desired</th>
                <th className="px-3 py-2">Version</th>
                <th className="px-3 py-2">Consumer</th>
                <th className="px-3 py-2">Updated</th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={i.id} className="border-t border-slate-100">
                  <td className="px-3 py-2">
                    <Link className="font-medium text-blue-800 underline" to={`/integrations/${encodeURIComponent(i.id)}`}>
                      {i.name}
                    </Link>
                    {i.last_error && <div className="text-xs text-red-700">{i.last_error}</div>}
                  </td>
                  <td className="px-3 py-2">
                    <StatusBadge status={i.status} />
                  </td>
                  <td className="px-3 py-2">{i.desired_status}</td>
                  <td className="px-3 py-2">
                    v{i.version}
                    {i.deployed_version > 0 && i.deployed_version !== i.version ? ` (v${i.deployed_version} deployed)` : ''}
                    {i.deployed_version === 0 ? ' (not deployed)' : ''}
                  </td>
                  <td className="px-3 py-2 font-mono text-xs">{i.spec.consumer.connector}</td>
                  <td className="px-3 py-2">{formatTime(i.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
