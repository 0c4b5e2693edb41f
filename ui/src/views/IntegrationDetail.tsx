import { lazy, Suspense, useState } from 'react';
import { Link, useParams } from 'react-router';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ok } from '../api/client';
import type { IntegrationVersion } from '../api/types';
import { Button, Card, CopyButton, Empty, Loading, PageTitle, ProblemView, StatusBadge, formatTime, inputClass, useNotice } from '../components/ui';
import { Inspector } from '../components/Inspector';

// The charts (uPlot) and the version diff (YAML) load only when shown.
const Charts = lazy(() => import('../components/Charts'));
const VersionDiff = lazy(() => import('../components/VersionDiff'));

/** webhookURL is where senders post messages for an http-webhook integration. */
export function webhookURL(origin: string, tenant: string, integration: string): string {
  return `${origin}/v1/hooks/${encodeURIComponent(tenant)}/${encodeURIComponent(integration)}`;
}

/** curlExample is a copy-and-paste request for the webhook. */
export function curlExample(url: string): string {
  return `curl -X POST '${url}' \\\n  -H 'Content-Type: application/json' \\\n  -H 'Idempotency-Key: order-1' \\\n  -d '{"id":"order-1","items":[{"qty":3,"price":500}]}'`;
}

const linkButtonClass = 'inline-flex items-center rounded border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-800 hover:bg-slate-100';

/** IntegrationDetail shows one integration: state, actions, counters, charts, versions, log and the live inspector. */
export function IntegrationDetail({ tenant }: { tenant: string }) {
  const { id = '' } = useParams();
  const path = { path: { integrationId: id } };
  const queries = useQueryClient();
  const notice = useNotice();
  const integration = useQuery({ queryKey: ['integration', id], queryFn: () => ok(api.GET('/v1/integrations/{integrationId}', { params: path })) });
  const status = useQuery({
    queryKey: ['integration', id, 'status'],
    queryFn: () => ok(api.GET('/v1/integrations/{integrationId}/status', { params: path })),
    refetchInterval: 2000,
  });
  const refresh = () => {
    queries.invalidateQueries({ queryKey: ['integration', id] });
    queries.invalidateQueries({ queryKey: ['integrations'] });
  };
  const action = useMutation({
    mutationFn: async (what: 'deploy' | 'start' | 'stop') => {
      if (what === 'deploy') return ok(api.POST('/v1/integrations/{integrationId}/deploy', { params: path, body: {} }));
      if (what === 'start') return ok(api.POST('/v1/integrations/{integrationId}/start', { params: path, body: {} }));
      return ok(api.POST('/v1/integrations/{integrationId}/stop', { params: path, body: {} }));
    },
    onSuccess: (out, what) => {
      notice(`Asked to ${what} ${id} (version ${out.version}); the status below follows the runners' report.`);
      refresh();
    },
  });

  if (integration.isPending) return <Loading what="the integration" />;
  if (integration.error) return <ProblemView error={integration.error} />;
  const it = integration.data;
  const st = status.data;
  const producers = Object.keys(it.spec.producers ?? {});
  const isWebhook = it.spec.consumer.connector === 'http-webhook';
  const url = webhookURL(window.location.origin, tenant, it.id);
  return (
    <div className="space-y-4">
      <PageTitle
        actions={
          <>
            <Button kind="primary" onClick={() => action.mutate('deploy')} disabled={action.isPending}>
              Deploy v{it.version}
            </Button>
            <Link className={linkButtonClass} to={`/integrations/${encodeURIComponent(it.id)}/edit`}>
              Edit
            </Link>
            <Button onClick={() => action.mutate('start')} disabled={action.isPending}>
              Start
            </Button>
            <Button onClick={() => action.mutate('stop')} disabled={action.isPending}>
              Stop
            </Button>
          </>
        }
      >
        <Link to="/integrations" className="text-base font-normal text-blue-800 underline">
          Integrations
        </Link>{' '}
        / {it.name}
      </PageTitle>
      <ProblemView error={action.error} />
      <Card title="State">
        <dl className="grid grid-cols-2 gap-3 text-sm sm:grid-cols-4">
          <div>
            <dt className="text-slate-500">Status</dt>
            <dd data-testid="integration-status">
              <StatusBadge status={st?.status ?? it.status} />
            </dd>
          </div>
          <div>
            <dt className="text-slate-500">Desired</dt>
            <dd>{st?.desired_status ?? it.desired_status}</dd>
          </div>
          <div>
            <dt className="text-slate-500">Deployed version</dt>
            <dd>{(st?.version ?? it.deployed_version) || 'not deployed'}</dd>
          </div>
          <div>
            <dt className="text-slate-500">Dead letters</dt>
            <dd data-testid="dead-letter-count">
              {st ? (
                <Link className="text-blue-800 underline" to={`/dlq?integration=${encodeURIComponent(it.id)}`}>
                  {st.dead_letters}
                </Link>
              ) : (
                '—'
              )}
            </dd>
          </div>
        </dl>
        {(st?.last_error || it.last_error) && <p className="mt-2 text-sm text-red-700">Last error: {st?.last_error || it.last_error}</p>}
        {st?.runner && (
          <p className="mt-2 text-xs text-slate-500">
            Runner {st.runner.runner} reported {st.runner.status} for v{st.runner.version} at {formatTime(st.runner.updated_at)}.
          </p>
        )}
      </Card>
      {isWebhook && (
        <Card title="Webhook">
          <div className="flex flex-wrap items-center gap-2">
            <code data-testid="webhook-url" className="break-all rounded bg-slate-100 px-2 py-1 text-xs">
              {url}
            </code>
            <CopyButton text={url} label="Copy URL" />
          </div>
          <pre className="mt-2 overflow-x-auto rounded bg-slate-900 p-2 text-xs text-slate-100">{curlExample(url)}</pre>
        </Card>
      )}
      <Card title="Stages">
        {!st?.stages || st.stages.length === 0 ? (
          <p className="text-sm text-slate-500">No counters yet: they appear once the integration is deployed and a runner reports.</p>
        ) : (
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm" data-testid="stage-counters">
              <caption className="sr-only">Per-stage counters</caption>
              <thead className="text-slate-600">
                <tr>
                  <th className="py-1 pr-3">Stage</th>
                  <th className="py-1 pr-3">Finished</th>
                  <th className="py-1 pr-3">Waiting</th>
                  <th className="py-1 pr-3">In flight</th>
                  <th className="py-1 pr-3">Redelivered</th>
                </tr>
              </thead>
              <tbody>
                {st.stages.map((s) => (
                  <tr key={s.stage} className="border-t border-slate-100">
                    <td className="py-1 pr-3 font-mono text-xs">{s.stage}</td>
                    <td className="py-1 pr-3">{s.acked}</td>
                    <td className="py-1 pr-3">{s.pending}</td>
                    <td className="py-1 pr-3">{s.in_flight}</td>
                    <td className="py-1 pr-3">{s.redelivered}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      <MetricsCard id={id} />
      <VersionsCard id={id} />
      <LogCard id={id} />
      <Card title="Live inspector">
        <Inspector integration={id} producers={producers} />
      </Card>
    </div>
  );
}

const windows = [
  { label: 'last 15 minutes', seconds: 900, step: 10 },
  { label: 'last hour', seconds: 3600, step: 30 },
  { label: 'last 24 hours', seconds: 86400, step: 600 },
];

function MetricsCard({ id }: { id: string }) {
  const [win, setWin] = useState(0);
  const w = windows[win];
  const metrics = useQuery({
    queryKey: ['integration', id, 'metrics', w.seconds],
    queryFn: () =>
      ok(
        api.GET('/v1/integrations/{integrationId}/metrics', {
          params: { path: { integrationId: id }, query: { since: new Date(Date.now() - w.seconds * 1000).toISOString(), step: w.step } },
        }),
      ),
    refetchInterval: 5000,
  });
  return (
    <Card
      title={
        <span className="flex flex-wrap items-center justify-between gap-2">
          Metrics
          <label className="text-sm font-normal">
            <span className="sr-only">Time window</span>
            <select className={inputClass} value={win} onChange={(e) => setWin(Number(e.target.value))}>
              {windows.map((x, i) => (
                <option key={x.seconds} value={i}>
                  {x.label}
                </option>
              ))}
            </select>
          </label>
        </span>
      }
    >
      <ProblemView error={metrics.error} />
      {metrics.isPending && <Loading what="metrics" />}
      {metrics.data && (
        <Suspense fallback={<Loading what="charts" />}>
          {(metrics.data.points ?? []).length === 0 ? (
            <p className="text-sm text-slate-500">No samples in this window: the platform records them while the integration runs.</p>
          ) : (
            <Charts points={metrics.data.points ?? []} from={Math.floor(metrics.dataUpdatedAt / 1000) - w.seconds} to={Math.floor(metrics.dataUpdatedAt / 1000)} />
          )}
        </Suspense>
      )}
    </Card>
  );
}

function VersionsCard({ id }: { id: string }) {
  const versions = useQuery({
    queryKey: ['integration', id, 'versions'],
    queryFn: () => ok(api.GET('/v1/integrations/{integrationId}/versions', { params: { path: { integrationId: id } } })),
  });
  const items: IntegrationVersion[] = versions.data?.items ?? [];
  const [a, setA] = useState<number | null>(null);
  const [b, setB] = useState<number | null>(null);
  const from = items.find((v) => v.version === a);
  const to = items.find((v) => v.version === b);
  return (
    <Card title="Versions">
      <ProblemView error={versions.error} />
      {items.length === 0 && versions.isSuccess && <Empty title="No versions">Each save of the spec stores a version.</Empty>}
      {items.length > 0 && (
        <>
          <ul className="space-y-1 text-sm">
            {items.map((v) => (
              <li key={v.version} className="flex flex-wrap items-center gap-3">
                <span className="font-mono">v{v.version}</span>
                <span className="text-slate-500">
                  {formatTime(v.created_at)}
                  {v.created_by ? ` by ${v.created_by}` : ''}
                </span>
                <label className="flex items-center gap-1">
                  <input type="radio" name="diff-from" checked={a === v.version} onChange={() => setA(v.version)} /> from
                </label>
                <label className="flex items-center gap-1">
                  <input type="radio" name="diff-to" checked={b === v.version} onChange={() => setB(v.version)} /> to
                </label>
                <Link
                  className="text-blue-800 underline"
                  to={`/integrations/${encodeURIComponent(id)}/edit?version=${v.version}`}
                  aria-label={`Edit, starting from v${v.version}`}
                >
                  edit from here
                </Link>
              </li>
            ))}
          </ul>
          <div className="mt-3">
            {from && to ? (
              <Suspense fallback={<Loading what="the diff" />}>
                <VersionDiff from={from.spec} to={to.spec} fromLabel={`v${from.version}`} toLabel={`v${to.version}`} />
              </Suspense>
            ) : (
              <p className="text-sm text-slate-500">Pick a “from” and a “to” version to see what changed.</p>
            )}
          </div>
        </>
      )}
    </Card>
  );
}

function LogCard({ id }: { id: string }) {
  const log = useQuery({
    queryKey: ['integration', id, 'logs'],
    queryFn: () => ok(api.GET('/v1/integrations/{integrationId}/logs', { params: { path: { integrationId: id }, query: { limit: 50 } } })),
    refetchInterval: 5000,
  });
  const items = log.data?.items ?? [];
  return (
    <Card title="Lifecycle log">
      <ProblemView error={log.error} />
      {log.isSuccess && items.length === 0 && <p className="text-sm text-slate-500">Nothing yet: deploying, starting and stopping are recorded here.</p>}
      {items.length > 0 && (
        <ol className="space-y-1 text-sm" data-testid="lifecycle-log">
          {items.map((e) => (
            <li key={e.id} className="flex flex-wrap gap-x-3">
              <span className="text-slate-500">{formatTime(e.at)}</span>
              <span className="font-medium">{e.action}</span>
              {(e.from_status || e.to_status) && (
                <span>
                  {e.from_status || '—'} → {e.to_status || '—'}
                </span>
              )}
              <span className="text-slate-500">{e.actor}</span>
              {e.reason && <span className="text-slate-700">{e.reason}</span>}
            </li>
          ))}
        </ol>
      )}
    </Card>
  );
}
