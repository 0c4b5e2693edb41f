import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ok } from '../api/client';
import type { Tenant, TenantLimits } from '../api/types';
import {
  Button,
  Card,
  Confirm,
  CopyButton,
  Empty,
  Field,
  Loading,
  PageTitle,
  ProblemView,
  StatusBadge,
  formatBytes,
  formatTime,
  inputClass,
  useNotice,
} from '../components/ui';

/** Tenants is the platform admin's list of tenants. */
export function Tenants() {
  // A tenant just created may reach the list only once its provisioning
  // workflow has written it: keep looking until it is there.
  const [awaited, setAwaited] = useState<string | null>(null);
  const list = useQuery({
    queryKey: ['tenants'],
    queryFn: () => ok(api.GET('/v1/tenants', { params: { query: { limit: 100 } } })),
    // Provisioning finishes in the background: look again while any is in progress.
    refetchInterval: (q) => {
      const items = q.state.data?.items ?? [];
      const busy = items.some((t) => t.status === 'provisioning' || t.status === 'deleting' || isMoving(t.placement));
      const missing = awaited !== null && !items.some((t) => t.id === awaited);
      return busy || missing ? 2000 : false;
    },
  });
  const [creating, setCreating] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const items = list.data?.items ?? [];
  return (
    <div className="space-y-4">
      <PageTitle
        actions={
          <Button kind="primary" onClick={() => setCreating(true)}>
            New tenant
          </Button>
        }
      >
        Tenants
      </PageTitle>
      {creating && <CreateTenant onCreated={setAwaited} onClose={() => setCreating(false)} />}
      {list.isPending && <Loading what="tenants" />}
      <ProblemView error={list.error} />
      {list.isSuccess && items.length === 0 && (
        <Empty title="No tenants yet">Create the first tenant with “New tenant”; you will get its first API key to sign in with.</Empty>
      )}
      {items.length > 0 && (
        <div className="overflow-x-auto rounded border border-slate-200 bg-white">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Tenants</caption>
            <thead className="bg-slate-50 text-slate-600">
              <tr>
                <th className="px-3 py-2">Tenant</th>
                <th className="px-3 py-2">Status</th>
                <th className="px-3 py-2">Placement</th>
                <th className="px-3 py-2">Integrations</th>
                <th className="px-3 py-2">Stored</th>
                <th className="px-3 py-2">Created</th>
                <th className="px-3 py-2">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((t) => (
                <TenantRow key={t.id} tenant={t} open={selected === t.id} onToggle={() => setSelected(selected === t.id ? null : t.id)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function TenantRow({ tenant, open, onToggle }: { tenant: Tenant; open: boolean; onToggle: () => void }) {
  // The list has no usage; each row asks for its tenant once it is active.
  const detail = useQuery({
    queryKey: ['tenant', tenant.id],
    queryFn: () => ok(api.GET('/v1/tenants/{tenantId}', { params: { path: { tenantId: tenant.id } } })),
    enabled: tenant.status === 'active',
    // A move goes on in the background: follow its steps.
    refetchInterval: (q) => (isMoving(q.state.data?.placement) ? 2000 : false),
  });
  const usage = detail.data?.usage;
  const limits = detail.data?.limits ?? tenant.limits;
  return (
    <>
      <tr className="border-t border-slate-100">
        <td className="px-3 py-2">
          <div className="font-medium">{tenant.name}</div>
          <div className="font-mono text-xs text-slate-500">{tenant.id}</div>
        </td>
        <td className="px-3 py-2">
          <StatusBadge status={tenant.status} />
          {tenant.failure_reason && <div className="text-xs text-red-700">{tenant.failure_reason}</div>}
        </td>
        <td className="px-3 py-2">
          <PlacementBadge placement={detail.data?.placement ?? tenant.placement} />
        </td>
        <td className="px-3 py-2">
          {usage ? usage.integrations : '—'}
          {limits ? ` / ${limits.integrations}` : ''}
        </td>
        <td className="px-3 py-2">
          {usage?.stored_bytes !== undefined ? formatBytes(usage.stored_bytes) : '—'}
          {limits ? ` / ${formatBytes(limits.disk_bytes)}` : ''}
        </td>
        <td className="px-3 py-2">{formatTime(tenant.created_at)}</td>
        <td className="px-3 py-2 text-right">
          <Button kind="ghost" onClick={onToggle} aria-expanded={open} aria-label={`Manage ${tenant.id}`}>
            {open ? 'Close' : 'Manage'}
          </Button>
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={7} className="bg-slate-50 px-3 py-3">
            <ManageTenant tenant={detail.data ?? tenant} />
          </td>
        </tr>
      )}
    </>
  );
}

const limitFields: { key: keyof TenantLimits; label: string; hint: string }[] = [
  { key: 'integrations', label: 'Integrations', hint: 'How many integrations the tenant may have.' },
  { key: 'disk_bytes', label: 'Disk (bytes)', hint: 'All its streams together; at least 1 MiB.' },
  { key: 'dlq_bytes', label: 'Dead-letter queue (bytes)', hint: '0: 128 MiB or the disk limit if smaller.' },
  { key: 'streams', label: 'Streams', hint: 'One per integration, plus its DLQ.' },
  { key: 'consumers', label: 'Consumers', hint: 'JetStream consumers in its account.' },
  { key: 'memory_bytes', label: 'Memory streams (bytes)', hint: 'Usually 0.' },
  { key: 'messages_per_second', label: 'Webhook messages per second', hint: "0: the platform's rate." },
  { key: 'remembered_keys', label: 'Remembered delivery keys', hint: "Each costs NATS memory for a day; 0: the platform's limit." },
];

function ManageTenant({ tenant }: { tenant: Tenant }) {
  const queries = useQueryClient();
  const notice = useNotice();
  const [limits, setLimits] = useState<Record<string, string>>(() =>
    Object.fromEntries(limitFields.map((f) => [f.key, String(tenant.limits?.[f.key] ?? '')])),
  );
  const [allowPrivate, setAllowPrivate] = useState(!!tenant.egress?.allowPrivate);
  const [allowHosts, setAllowHosts] = useState((tenant.egress?.allowHosts ?? []).join('\n'));
  // One dialog asks before deleting or moving the tenant.
  const [asking, setAsking] = useState<'delete' | 'move' | null>(null);
  const [reason, setReason] = useState('');
  const placement = tenant.placement;
  const target: MoveTarget = placement?.state === 'dedicated' || placement?.state === 'moving-to-dedicated' ? 'shared' : 'dedicated';
  const patch = useMutation({
    mutationFn: () =>
      ok(
        api.PATCH('/v1/tenants/{tenantId}', {
          params: { path: { tenantId: tenant.id } },
          body: {
            limits: Object.fromEntries(limitFields.map((f) => [f.key, Number(limits[f.key] || 0)])) as TenantLimits,
            egress: {
              allowPrivate,
              allowHosts: allowHosts
                .split('\n')
                .map((h) => h.trim())
                .filter(Boolean),
            },
          },
        }),
      ),
    onSuccess: () => {
      notice(`Saved the limits and egress policy of ${tenant.id}.`);
      queries.invalidateQueries({ queryKey: ['tenant', tenant.id] });
      queries.invalidateQueries({ queryKey: ['tenants'] });
    },
  });
  const remove = useMutation({
    mutationFn: () => ok(api.DELETE('/v1/tenants/{tenantId}', { params: { path: { tenantId: tenant.id } } })),
    onSuccess: () => {
      setAsking(null);
      notice(`Deleting ${tenant.id}: its keys no longer work; its streams and data are being removed.`);
      queries.invalidateQueries({ queryKey: ['tenants'] });
    },
    onError: () => setAsking(null),
  });
  const move = useMutation({
    mutationFn: (to: MoveTarget) =>
      ok(
        api.POST('/v1/tenants/{tenantId}/placement', {
          params: { path: { tenantId: tenant.id } },
          body: reason.trim() ? { placement: to, reason: reason.trim() } : { placement: to },
        }),
      ),
    onSuccess: (out) => {
      setAsking(null);
      setReason('');
      notice(
        `Asked to move ${tenant.id} to ${out.requested === 'dedicated' ? 'a dedicated NATS instance' : 'the shared NATS cluster'}; it is ${out.placement.state} now and its placement shows each step of the move.`,
      );
      queries.invalidateQueries({ queryKey: ['tenant', tenant.id] });
      queries.invalidateQueries({ queryKey: ['tenants'] });
    },
    onError: () => setAsking(null),
  });
  return (
    <div className="space-y-3">
      <form
        aria-label={`Limits of ${tenant.id}`}
        onSubmit={(e) => {
          e.preventDefault();
          patch.mutate();
        }}
        className="space-y-3"
      >
        <h3 className="text-sm font-semibold">Limits</h3>
        <div className="grid gap-3 sm:grid-cols-3">
          {limitFields.map((f) => (
            <Field key={f.key} label={f.label} hint={f.hint} htmlFor={`limit-${tenant.id}-${f.key}`}>
              <input
                id={`limit-${tenant.id}-${f.key}`}
                className={inputClass}
                inputMode="numeric"
                pattern="[0-9]*"
                value={limits[f.key]}
                onChange={(e) => setLimits({ ...limits, [f.key]: e.target.value })}
              />
            </Field>
          ))}
        </div>
        <h3 className="text-sm font-semibold">Egress: where its connectors may connect</h3>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={allowPrivate} onChange={(e) => setAllowPrivate(e.target.checked)} />
          Allow loopback and private addresses (never link-local or cloud metadata)
        </label>
        <Field label="Also allow these hosts (one a line, host or host:port)" htmlFor={`egress-${tenant.id}`}>
          <textarea id={`egress-${tenant.id}`} className={`${inputClass} h-16 font-mono text-xs`} value={allowHosts} onChange={(e) => setAllowHosts(e.target.value)} />
        </Field>
        <ProblemView error={patch.error} />
        <div className="flex flex-wrap gap-2">
          <Button kind="primary" type="submit" disabled={patch.isPending}>
            Save limits and egress
          </Button>
          <Button kind="danger" onClick={() => setAsking('delete')} disabled={tenant.status === 'deleting'}>
            Delete tenant
          </Button>
        </div>
      </form>
      <ProblemView error={remove.error} />
      <section aria-label={`Placement of ${tenant.id}`} className="space-y-2">
        <h3 className="text-sm font-semibold">Placement: where its NATS streams live</h3>
        <div className="flex flex-wrap items-center gap-2 text-sm">
          <PlacementBadge placement={placement} />
          {placement?.forced && <span className="text-xs text-slate-600">held by an admin</span>}
          {placement && <span className="text-xs text-slate-500">since {formatTime(placement.since)}</span>}
          <Button onClick={() => setAsking('move')} disabled={tenant.status !== 'active' || move.isPending}>
            {target === 'dedicated' ? 'Move to dedicated' : 'Move to shared'}
          </Button>
        </div>
        <ProblemView error={move.error} />
        <PlacementHistory events={tenant.placement_history ?? []} />
      </section>
      <Confirm
        open={asking !== null}
        title={asking === 'move' ? `Move ${tenant.id} to ${target === 'dedicated' ? 'a dedicated NATS instance' : 'the shared NATS cluster'}?` : `Delete tenant ${tenant.id}?`}
        confirmLabel={asking === 'move' ? (target === 'dedicated' ? 'Move to dedicated' : 'Move to shared') : 'Delete for good'}
        busy={asking === 'move' ? move.isPending : remove.isPending}
        onCancel={() => setAsking(null)}
        onConfirm={() => (asking === 'move' ? move.mutate(target) : remove.mutate())}
      >
        {asking === 'move' ? (
          <div className="space-y-2">
            <p>
              {target === 'dedicated'
                ? 'A NATS instance of its own is started and its streams move there while messages keep flowing.'
                : 'Its streams move back to the shared cluster while messages keep flowing, then its dedicated instance is removed.'}{' '}
              The thresholds will not move it back until an admin asks again.
            </p>
            <Field label="Reason (optional)" htmlFor={`move-reason-${tenant.id}`}>
              <input id={`move-reason-${tenant.id}`} className={inputClass} value={reason} maxLength={200} onChange={(e) => setReason(e.target.value)} />
            </Field>
          </div>
        ) : (
          'Its API keys stop working at once, its integrations stop, and its streams, dead letters and stored payloads are removed. The ID is never reused.'
        )}
      </Confirm>
    </div>
  );
}

type Placement = NonNullable<Tenant['placement']>;
type MoveTarget = 'shared' | 'dedicated';

function isMoving(p?: Placement): boolean {
  return p?.state === 'moving-to-dedicated' || p?.state === 'moving-to-shared';
}

/** PlacementBadge shows where a tenant's streams live: shared, dedicated or moving…. */
function PlacementBadge({ placement }: { placement?: Placement }) {
  if (!placement) return <span className="text-slate-400">—</span>;
  const moving = isMoving(placement);
  const color = moving ? 'bg-amber-100 text-amber-900' : placement.state === 'dedicated' ? 'bg-indigo-100 text-indigo-900' : 'bg-slate-100 text-slate-800';
  return (
    <span>
      <span className={`inline-block rounded px-2 py-0.5 text-xs font-medium ${color}`} data-testid="placement-badge">
        {moving ? 'moving…' : placement.state}
      </span>
      {moving && (
        <span className="block text-xs text-slate-600">
          to {placement.state === 'moving-to-dedicated' ? 'dedicated' : 'shared'}
          {placement.step ? ` · ${placement.step}` : ''}
        </span>
      )}
    </span>
  );
}

/** PlacementHistory lists a tenant's last placement changes, newest first. */
function PlacementHistory({ events }: { events: NonNullable<Tenant['placement_history']> }) {
  if (events.length === 0) return <p className="text-xs text-slate-500">It has never moved.</p>;
  return (
    <ol aria-label="Placement history" className="space-y-1 text-xs">
      {events.map((e, i) => (
        <li key={`${e.at}-${i}`} className="flex flex-wrap gap-2">
          <span className="text-slate-500">{formatTime(e.at)}</span>
          <span className="font-medium">{e.state}</span>
          {e.step && <span className="font-mono">{e.step}</span>}
          {e.reason && <span className="text-slate-700">{e.reason}</span>}
        </li>
      ))}
    </ol>
  );
}

function CreateTenant({ onClose, onCreated }: { onClose: () => void; onCreated: (id: string) => void }) {
  const queries = useQueryClient();
  const notice = useNotice();
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: () => ok(api.POST('/v1/tenants', { body: { id, name } })),
    onSuccess: (out) => {
      notice(`Created tenant ${out.tenant.id}; it is being provisioned.`);
      onCreated(out.tenant.id);
      queries.invalidateQueries({ queryKey: ['tenants'] });
    },
  });
  if (create.data) {
    const secret = create.data.api_key.secret;
    return (
      <Card title={`Tenant ${create.data.tenant.id} created`}>
        <p className="text-sm text-slate-700">
          This is its first API key (scopes {(create.data.api_key.scopes ?? []).join(', ')}). It is shown only now: copy it and give it to the tenant. It
          works once the tenant is active.
        </p>
        <div className="mt-2 flex flex-wrap items-center gap-2">
          <code data-testid="new-tenant-key" className="break-all rounded bg-slate-100 px-2 py-1 text-xs">
            {secret}
          </code>
          <CopyButton text={secret} label="Copy key" />
        </div>
        <Button className="mt-3" onClick={onClose}>
          Done
        </Button>
      </Card>
    );
  }
  return (
    <Card title="New tenant">
      <form
        className="grid gap-3 sm:grid-cols-2"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="ID" htmlFor="tenant-id" hint="Lowercase letters, digits and hyphens; never reused.">
          <input id="tenant-id" className={inputClass} value={id} onChange={(e) => setId(e.target.value)} required pattern="[a-z0-9][a-z0-9-]{0,62}" />
        </Field>
        <Field label="Name" htmlFor="tenant-name">
          <input id="tenant-name" className={inputClass} value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </Field>
        <div className="sm:col-span-2">
          <ProblemView error={create.error} />
        </div>
        <div className="flex gap-2 sm:col-span-2">
          <Button kind="primary" type="submit" disabled={create.isPending}>
            Create tenant
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Card>
  );
}
