import { useEffect, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ok } from '../api/client';
import type { DeadLetter } from '../api/types';
import { localInputToISO, prettyBody } from '../lib/json';
import { Button, Card, Confirm, Empty, Field, Loading, PageTitle, ProblemView, StatusBadge, formatBytes, formatTime, inputClass, useNotice } from '../components/ui';

interface Filters {
  integration: string;
  producer: string;
  since: string;
  until: string;
  error: string;
}

function query(f: Filters) {
  return {
    integration: f.integration || undefined,
    producer: f.producer || undefined,
    since: localInputToISO(f.since),
    until: localInputToISO(f.until),
    error: f.error || undefined,
  };
}

/** DeadLetters lists, inspects, replays and discards the tenant's dead letters. */
export function DeadLetters() {
  const [params, setParams] = useSearchParams();
  const initial: Filters = {
    integration: params.get('integration') ?? '',
    producer: params.get('producer') ?? '',
    since: '',
    until: '',
    error: params.get('error') ?? '',
  };
  const [draft, setDraft] = useState<Filters>(initial);
  const [filters, setFilters] = useState<Filters>(initial);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [open, setOpen] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<null | { action: 'replay' | 'discard'; scope: 'selected' | 'all' }>(null);
  const [job, setJob] = useState<{ id: string; action: string } | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const queries = useQueryClient();
  const notice = useNotice();

  const list = useInfiniteQuery({
    queryKey: ['dlq', filters],
    initialPageParam: '',
    queryFn: ({ pageParam }) => ok(api.GET('/v1/dlq', { params: { query: { ...query(filters), cursor: pageParam || undefined, limit: 100 } } })),
    getNextPageParam: (last) => last.next || undefined,
  });
  const items: DeadLetter[] = list.data?.pages.flatMap((p) => p.items ?? []) ?? [];

  async function run(action: 'replay' | 'discard', scope: 'selected' | 'all') {
    setConfirm(null);
    setActionError(null);
    const body = scope === 'selected' ? { ...query(filters), ids: [...selected] } : query(filters);
    const what = scope === 'selected' ? `${selected.size} selected dead letter(s)` : 'every dead letter matching the filters';
    try {
      const out = action === 'replay' ? await ok(api.POST('/v1/dlq/replay', { body })) : await ok(api.POST('/v1/dlq/discard', { body }));
      notice(`${action === 'replay' ? 'Replaying' : 'Discarding'} ${what}.`);
      setSelected(new Set());
      if (out.replay_id) setJob({ id: out.replay_id, action });
      queries.invalidateQueries({ queryKey: ['dlq'] });
    } catch (e) {
      setActionError(e);
    }
  }
  const toggle = (id: string) => {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  };

  return (
    <div className="space-y-4">
      <PageTitle>Dead letters</PageTitle>
      <Card title="Filter">
        <form
          className="grid gap-3 sm:grid-cols-3 lg:grid-cols-6"
          onSubmit={(e) => {
            e.preventDefault();
            setFilters(draft);
            setSelected(new Set());
            const p: Record<string, string> = {};
            if (draft.integration) p.integration = draft.integration;
            if (draft.producer) p.producer = draft.producer;
            if (draft.error) p.error = draft.error;
            setParams(p, { replace: true });
          }}
        >
          <Field label="Integration" htmlFor="f-integration">
            <input id="f-integration" className={inputClass} value={draft.integration} onChange={(e) => setDraft({ ...draft, integration: e.target.value })} />
          </Field>
          <Field label="Producer" htmlFor="f-producer">
            <input id="f-producer" className={inputClass} value={draft.producer} onChange={(e) => setDraft({ ...draft, producer: e.target.value })} />
          </Field>
          <Field label="Since" htmlFor="f-since">
            <input id="f-since" type="datetime-local" className={inputClass} value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} />
          </Field>
          <Field label="Until" htmlFor="f-until">
            <input id="f-until" type="datetime-local" className={inputClass} value={draft.until} onChange={(e) => setDraft({ ...draft, until: e.target.value })} />
          </Field>
          <Field label="Error contains" htmlFor="f-error">
            <input id="f-error" className={inputClass} value={draft.error} onChange={(e) => setDraft({ ...draft, error: e.target.value })} maxLength={200} />
          </Field>
          <div className="flex items-end">
            <Button kind="primary" type="submit">
              Apply filters
            </Button>
          </div>
        </form>
      </Card>
      <div className="flex flex-wrap items-center gap-2">
        <Button kind="primary" disabled={selected.size === 0} onClick={() => setConfirm({ action: 'replay', scope: 'selected' })}>
          Replay selected ({selected.size})
        </Button>
        <Button disabled={selected.size === 0} onClick={() => setConfirm({ action: 'discard', scope: 'selected' })}>
          Discard selected
        </Button>
        <Button disabled={items.length === 0} onClick={() => setConfirm({ action: 'replay', scope: 'all' })}>
          Replay all matching
        </Button>
        <Button disabled={items.length === 0} onClick={() => setConfirm({ action: 'discard', scope: 'all' })}>
          Discard all matching
        </Button>
        <Button kind="ghost" onClick={() => list.refetch()}>
          Refresh
        </Button>
      </div>
      <ProblemView error={actionError} />
      {job && <JobProgress id={job.id} action={job.action} onDone={() => queries.invalidateQueries({ queryKey: ['dlq'] })} />}
      {list.isPending && <Loading what="dead letters" />}
      <ProblemView error={list.error} />
      {list.isSuccess && items.length === 0 && (
        <Empty title="No dead letters match">
          Messages land here after their last retry fails. Nothing to do — or widen the filters.
        </Empty>
      )}
      {items.length > 0 && (
        <div className="overflow-x-auto rounded border border-slate-200 bg-white">
          <table className="w-full text-left text-sm" data-testid="dlq-table">
            <caption className="sr-only">Dead letters</caption>
            <thead className="bg-slate-50 text-slate-600">
              <tr>
                <th className="px-3 py-2">
                  <input
                    type="checkbox"
                    aria-label="Select all shown"
                    checked={selected.size > 0 && selected.size === items.length}
                    onChange={(e) => setSelected(e.target.checked ? new Set(items.map((i) => i.id)) : new Set())}
                  />
                </th>
                <th className="px-3 py-2">When</th>
                <th className="px-3 py-2">Integration</th>
                <th className="px-3 py-2">Stage</th>
                <th className="px-3 py-2">Error</th>
                <th className="px-3 py-2">Attempts</th>
                <th className="px-3 py-2">
                  <span className="sr-only">Inspect</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <DeadLetterRow key={d.id} d={d} selected={selected.has(d.id)} onToggle={() => toggle(d.id)} open={open === d.id} onOpen={() => setOpen(open === d.id ? null : d.id)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.hasNextPage && (
        <Button onClick={() => list.fetchNextPage()} disabled={list.isFetchingNextPage}>
          Load more
        </Button>
      )}
      <Confirm
        open={!!confirm}
        title={confirm ? `${confirm.action === 'replay' ? 'Replay' : 'Discard'} ${confirm.scope === 'selected' ? `${selected.size} dead letter(s)` : 'all matching dead letters'}?` : ''}
        confirmLabel={confirm?.action === 'replay' ? 'Replay' : 'Discard'}
        onCancel={() => setConfirm(null)}
        onConfirm={() => confirm && run(confirm.action, confirm.scope)}
      >
        {confirm?.action === 'replay'
          ? 'Each is published again on the subject it failed on, once, and leaves the queue.'
          : 'They are removed from the queue for good.'}
      </Confirm>
    </div>
  );
}

function DeadLetterRow({ d, selected, onToggle, open, onOpen }: { d: DeadLetter; selected: boolean; onToggle: () => void; open: boolean; onOpen: () => void }) {
  return (
    <>
      <tr className="border-t border-slate-100 align-top">
        <td className="px-3 py-2">
          <input type="checkbox" aria-label={`Select dead letter ${d.id}`} checked={selected} onChange={onToggle} />
        </td>
        <td className="px-3 py-2 whitespace-nowrap">{formatTime(d.at)}</td>
        <td className="px-3 py-2 font-mono text-xs">{d.integration}</td>
        <td className="px-3 py-2 font-mono text-xs">{d.producer ? `deliver → ${d.producer}` : d.stage}</td>
        <td className="max-w-md px-3 py-2 text-red-800">{d.error}</td>
        <td className="px-3 py-2">{d.attempts}</td>
        <td className="px-3 py-2">
          <Button kind="ghost" aria-expanded={open} aria-label={`Inspect dead letter ${d.id}`} onClick={onOpen}>
            {open ? 'Close' : 'Inspect'}
          </Button>
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={7} className="bg-slate-50 px-3 py-3">
            <DeadLetterDetail id={d.id} />
          </td>
        </tr>
      )}
    </>
  );
}

function DeadLetterDetail({ id }: { id: string }) {
  const q = useQuery({ queryKey: ['dlq-one', id], queryFn: () => ok(api.GET('/v1/dlq/{messageId}', { params: { path: { messageId: id } } })) });
  if (q.isPending) return <Loading what="the dead letter" />;
  if (q.error) return <ProblemView error={q.error} />;
  const d = q.data;
  const body = d.body_encoding === 'base64' ? { text: d.body ?? '', json: false } : prettyBody(d.body, d.content_type);
  return (
    <div className="grid gap-4 lg:grid-cols-2">
      <div className="text-sm">
        <h3 className="font-semibold">Message</h3>
        <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-3 gap-y-1">
          <dt className="text-slate-500">Message ID</dt>
          <dd className="break-all font-mono text-xs">{d.message_id}</dd>
          <dt className="text-slate-500">Subject</dt>
          <dd className="break-all font-mono text-xs">{d.subject}</dd>
          <dt className="text-slate-500">Size</dt>
          <dd>
            {formatBytes(d.body_size)}
            {d.claim_checked ? ' (kept in the blob store)' : ''}
          </dd>
        </dl>
        <h3 className="mt-3 font-semibold">Headers</h3>
        {d.headers && Object.keys(d.headers).length > 0 ? (
          <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-xs" data-testid="dlq-headers">
            {Object.entries(d.headers).map(([k, v]) => (
              <div key={k} className="contents">
                <dt className="font-mono text-slate-500">{k}</dt>
                <dd className="break-all font-mono">{v}</dd>
              </div>
            ))}
          </dl>
        ) : (
          <p className="text-slate-500">None.</p>
        )}
      </div>
      <div className="text-sm">
        <h3 className="font-semibold">
          Body {body.json && <span className="font-normal text-slate-500">(JSON, formatted)</span>}
          {d.body_encoding === 'base64' && <span className="font-normal text-slate-500">(binary, base64)</span>}
        </h3>
        {d.body_omitted ? (
          <p className="text-slate-500">The body is over 1 MiB and not shown.</p>
        ) : (
          <pre className="mt-1 max-h-80 overflow-auto rounded bg-slate-900 p-2 text-xs text-slate-100" data-testid="dlq-body">
            {body.text}
          </pre>
        )}
      </div>
    </div>
  );
}

/** JobProgress follows a bulk replay or discard until it finishes. */
function JobProgress({ id, action, onDone }: { id: string; action: string; onDone: () => void }) {
  const q = useQuery({
    queryKey: ['replay', id],
    queryFn: () => ok(api.GET('/v1/dlq/replays/{replayId}', { params: { path: { replayId: id } } })),
    refetchInterval: (s) => (s.state.data && s.state.data.state !== 'running' ? false : 1000),
  });
  const p = q.data;
  const finished = p && p.state !== 'running';
  useEffect(() => {
    if (finished) onDone();
  }, [finished, onDone]);
  return (
    <Card title={`Bulk ${action}`}>
      <ProblemView error={q.error} />
      {p && (
        <div className="space-y-2 text-sm" data-testid="bulk-progress">
          <p>
            <StatusBadge status={p.state} /> {p.done} of {p.total} done{p.failed ? `, ${p.failed} failed` : ''}.
          </p>
          <progress className="w-full" max={Math.max(1, p.total)} value={p.done} aria-label={`Bulk ${action} progress`} />
        </div>
      )}
    </Card>
  );
}
