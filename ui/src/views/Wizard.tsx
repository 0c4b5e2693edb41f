// The integration wizard: a consumer, steps and producers, each chosen
// from the catalogue and configured with a form generated from its schema;
// a YAML tab on the same spec; a dry run with a sample message; then create
// and deploy. Opened on an existing integration (/integrations/ID/edit,
// ?version=N to start from an older version) it saves the spec as the next
// version (PUT, only if no one saved another meanwhile) and deploys that.
// Problems the API finds are shown on the field they concern.
import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ok, ProblemError } from '../api/client';
import type { Connector, Integration, IntegrationSpec, IntegrationVersion, TestResult } from '../api/types';
import { configErrors, otherErrors, placeError, type Placed } from '../lib/locations';
import ConfigForm, { SecretNames } from '../components/ConfigForm';
import { Button, Card, Field, Loading, PageTitle, ProblemView, cx, inputClass, useNotice } from '../components/ui';

const YamlEditor = lazy(() => import('../components/YamlEditor'));

interface Section {
  connector: string;
  config?: unknown;
}

/** Draft is the spec being built; the same shape as the API's. */
export interface Draft {
  name: string;
  consumer: Section;
  steps: Section[];
  producers: Record<string, Section>;
  schedule?: string;
  /** The spec's other fields (runners, and any the wizard does not know), kept as they are. */
  rest?: Record<string, unknown>;
}

const draftKeys = new Set(['name', 'consumer', 'steps', 'producers', 'schedule']);

export const emptyDraft: Draft = { name: '', consumer: { connector: '' }, steps: [], producers: {} };

/** fromObject reads a spec parsed from YAML into a draft, keeping what is there. */
export function fromObject(o: Record<string, unknown>): Draft {
  const section = (v: unknown): Section => {
    const s = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
    return { connector: typeof s.connector === 'string' ? s.connector : '', ...(s.config !== undefined ? { config: s.config } : {}) };
  };
  const producers: Record<string, Section> = {};
  if (o.producers && typeof o.producers === 'object' && !Array.isArray(o.producers)) {
    for (const [k, v] of Object.entries(o.producers)) producers[k] = section(v);
  }
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (draftKeys.has(k) || k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    rest[k] = v;
  }
  return {
    name: typeof o.name === 'string' ? o.name : '',
    consumer: section(o.consumer),
    steps: Array.isArray(o.steps) ? o.steps.map(section) : [],
    producers,
    ...(typeof o.schedule === 'string' && o.schedule ? { schedule: o.schedule } : {}),
    ...(Object.keys(rest).length > 0 ? { rest } : {}),
  };
}

/** toSpec is the draft as the API takes it (no empty steps list, no empty schedule). */
export function toSpec(d: Draft): IntegrationSpec {
  const spec: Record<string, unknown> = { ...d.rest, name: d.name, consumer: d.consumer, producers: d.producers };
  if (d.steps.length > 0) spec.steps = d.steps;
  if (d.schedule) spec.schedule = d.schedule;
  return spec as unknown as IntegrationSpec;
}

/** parseHeaders reads "Name: value" lines. */
export function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim();
    if (k) out[k] = line.slice(i + 1).trim();
  }
  return out;
}

const sampleBody = '{"id":"order-1","items":[{"qty":3,"price":500}]}';

/** startingVersion is the version an edit starts from: the one asked for in the URL if it exists, else the latest. */
export function startingVersion(it: Integration, versions: IntegrationVersion[], asked: string | null): { version: number; spec: IntegrationSpec } {
  const n = asked !== null && /^\d{1,18}$/.test(asked) ? Number(asked) : NaN;
  const v = versions.find((x) => x.version === n);
  return v ? { version: v.version, spec: v.spec } : { version: it.version, spec: it.spec };
}

/** ifMatch is the precondition of saving over the latest version. */
export const ifMatch = (version: number) => `"v${version}"`;

export default function Wizard() {
  const { id: editing } = useParams();
  const [search, setSearch] = useSearchParams();
  const connectors = useQuery({ queryKey: ['connectors'], queryFn: () => ok(api.GET('/v1/connectors')), staleTime: 300_000 });
  const secrets = useQuery({ queryKey: ['secrets'], queryFn: () => ok(api.GET('/v1/secrets')) });
  const current = useQuery({
    queryKey: ['integration', editing],
    queryFn: () => ok(api.GET('/v1/integrations/{integrationId}', { params: { path: { integrationId: editing ?? '' } } })),
    enabled: editing !== undefined,
  });
  const versions = useQuery({
    queryKey: ['integration', editing, 'versions'],
    queryFn: () => ok(api.GET('/v1/integrations/{integrationId}/versions', { params: { path: { integrationId: editing ?? '' } } })),
    enabled: editing !== undefined,
  });
  const queries = useQueryClient();
  const [draft, setDraft] = useState<Draft>(emptyDraft);
  // The version the draft was loaded from (edits only), and for which
  // ?version= it was: a refetch (a newer version saved elsewhere) never
  // replaces what is being edited; choosing another version does.
  const [base, setBase] = useState<number | null>(null);
  const [loadedFor, setLoadedFor] = useState<string | null>(null);
  const asked = search.get('version');
  useEffect(() => {
    if (!current.data || !versions.data || loadedFor === (asked ?? '')) return;
    const start = startingVersion(current.data, versions.data.items ?? [], asked);
    setDraft(fromObject(start.spec as unknown as Record<string, unknown>));
    setBase(start.version);
    setLoadedFor(asked ?? '');
  }, [current.data, versions.data, asked, loadedFor]);
  const [tab, setTab] = useState<'form' | 'yaml'>('form');
  const [problem, setProblem] = useState<unknown>(null);
  const [placed, setPlaced] = useState<Placed[]>([]);
  const [busy, setBusy] = useState('');
  const [sample, setSample] = useState(sampleBody);
  const [sampleHeaders, setSampleHeaders] = useState('Content-Type: application/json');
  const [results, setResults] = useState<TestResult[] | null>(null);
  const navigate = useNavigate();
  const notice = useNotice();

  const byName = useMemo(() => new Map((connectors.data?.items ?? []).map((c) => [c.name, c])), [connectors.data]);
  const ofKind = (...kinds: string[]) => (connectors.data?.items ?? []).filter((c) => kinds.includes(c.kind));
  const secretNames = useMemo(() => (secrets.data?.items ?? []).map((s) => s.name), [secrets.data]);

  function fail(e: unknown) {
    setProblem(e);
    setPlaced(e instanceof ProblemError ? (e.problem.errors ?? []).map((x) => placeError(x.location, x.message ?? 'invalid')) : []);
  }
  function clear() {
    setProblem(null);
    setPlaced([]);
  }

  async function runTest() {
    clear();
    setBusy('test');
    setResults(null);
    try {
      const out = await ok(api.POST('/v1/integrations/test', { body: { spec: toSpec(draft), messages: [{ body: sample, headers: parseHeaders(sampleHeaders) }] } }));
      setResults(out.results ?? []);
      notice('Ran the sample through the integration; nothing was published or delivered.');
    } catch (e) {
      fail(e);
    } finally {
      setBusy('');
    }
  }

  async function save(deploy: boolean) {
    if (!current.data || !editing) return;
    clear();
    setBusy(deploy ? 'deploy' : 'save');
    try {
      const latest = current.data.version;
      const saved = await ok(
        api.PUT('/v1/integrations/{integrationId}', {
          params: { path: { integrationId: editing }, header: { 'If-Match': ifMatch(latest) } },
          body: toSpec(draft),
        }),
      );
      if (deploy) {
        await ok(api.POST('/v1/integrations/{integrationId}/deploy', { params: { path: { integrationId: saved.id } }, body: { version: saved.version } }));
        notice(`Saved ${saved.id} as version ${saved.version} and asked to deploy it.`);
      } else {
        notice(`Saved ${saved.id} as version ${saved.version}; version ${saved.deployed_version || 'none'} stays deployed until you deploy this one.`);
      }
      await queries.invalidateQueries({ queryKey: ['integration', editing] });
      navigate(`/integrations/${encodeURIComponent(saved.id)}`);
    } catch (e) {
      fail(e);
      if (e instanceof ProblemError && e.status === 412) void current.refetch();
    } finally {
      setBusy('');
    }
  }

  async function createAndDeploy() {
    clear();
    setBusy('create');
    try {
      const created = await ok(api.POST('/v1/integrations', { body: toSpec(draft) }));
      await ok(api.POST('/v1/integrations/{integrationId}/deploy', { params: { path: { integrationId: created.id } }, body: {} }));
      notice(`Created ${created.id} (version ${created.version}) and asked to deploy it.`);
      navigate(`/integrations/${encodeURIComponent(created.id)}`);
    } catch (e) {
      fail(e);
    } finally {
      setBusy('');
    }
  }

  const setSection = (key: 'consumer' | number, s: Section) =>
    setDraft((d) => (key === 'consumer' ? { ...d, consumer: s } : { ...d, steps: d.steps.map((x, i) => (i === key ? s : x)) }));
  const producerEntries = Object.entries(draft.producers);

  if (connectors.isPending) return <Loading what="the connector catalogue" />;
  if (connectors.error) return <ProblemView error={connectors.error} />;
  if (editing !== undefined) {
    if (current.error || versions.error) return <ProblemView error={current.error ?? versions.error} />;
    if (!current.data || !versions.data || base === null) return <Loading what={`integration ${editing}`} />;
  }
  const latest = current.data?.version ?? 0;
  const stale = problem instanceof ProblemError && problem.status === 412;

  return (
    <SecretNames.Provider value={secretNames}>
      <div className="space-y-4">
        {editing === undefined ? (
          <PageTitle>New integration</PageTitle>
        ) : (
          <PageTitle>
            <Link to={`/integrations/${encodeURIComponent(editing)}`} className="text-base font-normal text-blue-800 underline">
              {editing}
            </Link>{' '}
            / Edit
          </PageTitle>
        )}
        <Card>
          <Field
            label="Name"
            htmlFor="integration-name"
            hint={
              editing === undefined
                ? "Lowercase letters, digits and hyphens; it is the integration's ID."
                : "The integration's ID; it cannot change (create a new integration to rename)."
            }
            error={otherErrors(placed, 'spec').join('; ') || undefined}
          >
            <input
              id="integration-name"
              className={inputClass}
              value={draft.name}
              readOnly={editing !== undefined}
              onChange={(e) => setDraft({ ...draft, name: e.target.value })}
            />
          </Field>
          {editing !== undefined && (
            <div className="mt-3 flex flex-wrap items-end gap-3 text-sm">
              <label className="flex flex-col gap-1">
                <span className="font-medium">Start from version</span>
                <select
                  className={inputClass}
                  value={String(base)}
                  onChange={(e) => {
                    const next = new URLSearchParams(search);
                    next.set('version', e.target.value);
                    setSearch(next, { replace: true });
                    clear();
                  }}
                >
                  {(versions.data?.items ?? []).map((v) => (
                    <option key={v.version} value={v.version}>
                      v{v.version}
                      {v.version === latest ? ' (latest)' : ''}
                      {v.version === current.data?.deployed_version ? ' (deployed)' : ''}
                    </option>
                  ))}
                </select>
              </label>
              <p className="text-slate-600" data-testid="edit-base">
                Editing v{base}; saving stores v{latest + 1}
                {current.data?.deployed_version ? `, v${current.data.deployed_version} stays deployed until you deploy it` : ''}.
              </p>
            </div>
          )}
        </Card>
        <div role="tablist" aria-label="Edit as" className="flex gap-1 border-b border-slate-200">
          {(['form', 'yaml'] as const).map((t) => (
            <button
              key={t}
              role="tab"
              type="button"
              aria-selected={tab === t}
              aria-controls={`panel-${t}`}
              id={`tab-${t}`}
              className={cx('rounded-t px-3 py-1.5 text-sm', tab === t ? 'border border-b-white border-slate-200 bg-white font-medium' : 'text-slate-600')}
              onClick={() => setTab(t)}
            >
              {t === 'form' ? 'Form' : 'YAML'}
            </button>
          ))}
        </div>
        {tab === 'yaml' ? (
          <div role="tabpanel" id="panel-yaml" aria-labelledby="tab-yaml">
            <Suspense fallback={<Loading what="the editor" />}>
              <YamlEditor spec={toSpec(draft)} onSpec={(o) => setDraft(fromObject(o))} />
            </Suspense>
          </div>
        ) : (
          <div role="tabpanel" id="panel-form" aria-labelledby="tab-form" className="space-y-4">
            <SectionCard
              title="1. Consumer: where messages come from"
              idPrefix="consumer"
              section={draft.consumer}
              choices={ofKind('consumer')}
              byName={byName}
              onChange={(s) => setSection('consumer', s)}
              placed={placed}
              sectionKey="consumer"
            />
            <Card title="2. Steps: converters and filters, in order">
              {draft.steps.length === 0 && <p className="mb-2 text-sm text-slate-500">No steps: messages go to the producers as they come in.</p>}
              <div className="space-y-3">
                {draft.steps.map((s, i) => (
                  <SectionCard
                    key={i}
                    title={`Step ${i + 1}`}
                    idPrefix={`step-${i}`}
                    section={s}
                    choices={ofKind('converter', 'filter')}
                    byName={byName}
                    onChange={(x) => setSection(i, x)}
                    placed={placed}
                    sectionKey={`steps[${i}]`}
                    onRemove={() => setDraft({ ...draft, steps: draft.steps.filter((_, j) => j !== i) })}
                    onUp={i > 0 ? () => setDraft({ ...draft, steps: swap(draft.steps, i, i - 1) }) : undefined}
                  />
                ))}
              </div>
              <Button className="mt-3" onClick={() => setDraft({ ...draft, steps: [...draft.steps, { connector: '' }] })}>
                Add step
              </Button>
            </Card>
            <Card title="3. Producers: where messages go">
              {producerEntries.length === 0 && <p className="mb-2 text-sm text-slate-500">Add at least one producer.</p>}
              <div className="space-y-3">
                {producerEntries.map(([name, s], i) => (
                  <div key={i} className="space-y-2">
                    <Field label={`Producer ${i + 1} name`} htmlFor={`producer-${i}-name`} hint="A router step sends to producers by this name.">
                      <input
                        id={`producer-${i}-name`}
                        className={inputClass}
                        value={name}
                        onChange={(e) => setDraft({ ...draft, producers: renameKey(draft.producers, name, e.target.value) })}
                      />
                    </Field>
                    <SectionCard
                      title={`Producer ${name || i + 1}`}
                      idPrefix={`producer-${i}`}
                      section={s}
                      choices={ofKind('producer')}
                      byName={byName}
                      onChange={(x) => setDraft({ ...draft, producers: { ...draft.producers, [name]: x } })}
                      placed={placed}
                      sectionKey={`producers.${name}`}
                      onRemove={() => {
                        const p = { ...draft.producers };
                        delete p[name];
                        setDraft({ ...draft, producers: p });
                      }}
                    />
                  </div>
                ))}
              </div>
              <Button className="mt-3" onClick={() => setDraft({ ...draft, producers: { ...draft.producers, [freshName(draft.producers)]: { connector: '' } } })}>
                Add producer
              </Button>
            </Card>
          </div>
        )}
        <Card title="Test with a sample message">
          <div className="grid gap-3 md:grid-cols-2">
            <Field label="Sample body" htmlFor="sample-body">
              <textarea id="sample-body" className={`${inputClass} h-28 font-mono text-xs`} value={sample} onChange={(e) => setSample(e.target.value)} />
            </Field>
            <Field label="Headers (one “Name: value” a line)" htmlFor="sample-headers">
              <textarea
                id="sample-headers"
                className={`${inputClass} h-28 font-mono text-xs`}
                value={sampleHeaders}
                onChange={(e) => setSampleHeaders(e.target.value)}
              />
            </Field>
          </div>
          <Button className="mt-3" onClick={runTest} disabled={busy !== ''}>
            {busy === 'test' ? 'Testing…' : 'Run test'}
          </Button>
          {results && <TestResults results={results} />}
        </Card>
        <ProblemView error={problem} />
        {stale && (
          <p className="text-sm text-red-700" role="alert">
            Version {latest} was saved while you edited (the draft started from v{base}). Your changes are still here: look at v{latest} on the
            integration's page, then save again to store them on top of it.
          </p>
        )}
        <div className="flex flex-wrap gap-2">
          {editing === undefined ? (
            <Button kind="primary" onClick={createAndDeploy} disabled={busy !== ''}>
              {busy === 'create' ? 'Creating…' : 'Create and deploy'}
            </Button>
          ) : (
            <>
              <Button kind="primary" onClick={() => save(true)} disabled={busy !== ''}>
                {busy === 'deploy' ? 'Saving…' : `Save as v${latest + 1} and deploy`}
              </Button>
              <Button onClick={() => save(false)} disabled={busy !== ''}>
                {busy === 'save' ? 'Saving…' : `Save as v${latest + 1}`}
              </Button>
            </>
          )}
        </div>
      </div>
    </SecretNames.Provider>
  );
}

function swap<T>(xs: T[], i: number, j: number): T[] {
  const out = [...xs];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

function renameKey(o: Record<string, Section>, from: string, to: string): Record<string, Section> {
  if (from === to || (to !== '' && to in o)) return o;
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k === from ? to : k, v]));
}

function freshName(o: Record<string, Section>): string {
  for (let i = Object.keys(o).length + 1; ; i++) if (!(`producer-${i}` in o)) return `producer-${i}`;
}

function SectionCard({
  title,
  idPrefix,
  section,
  choices,
  byName,
  onChange,
  placed,
  sectionKey,
  onRemove,
  onUp,
}: {
  title: string;
  idPrefix: string;
  section: Section;
  choices: Connector[];
  byName: Map<string, Connector>;
  onChange: (s: Section) => void;
  placed: Placed[];
  sectionKey: string;
  onRemove?: () => void;
  onUp?: () => void;
}) {
  const c = byName.get(section.connector);
  // Errors about the section itself, and about its config as a whole
  // (the form shows those inside a field on their field).
  const errs = [
    ...otherErrors(placed, sectionKey),
    ...placed.filter((p) => p.section === sectionKey && p.field === 'config' && p.path.length === 0).map((p) => `config: ${p.message}`),
  ];
  return (
    <section className="rounded border border-slate-200 bg-white p-3" aria-label={title} data-section={sectionKey}>
      <div className="flex flex-wrap items-end gap-2">
        <label className="flex min-w-48 flex-1 flex-col gap-1 text-sm">
          <span className="font-medium">{title}: connector</span>
          <select
            className={inputClass}
            value={section.connector}
            onChange={(e) => {
              const next = byName.get(e.target.value);
              onChange({ connector: e.target.value, config: next?.example ?? {} });
            }}
          >
            <option value="">— choose —</option>
            {choices.map((x) => (
              <option key={x.name} value={x.name}>
                {x.name} ({x.kind})
              </option>
            ))}
          </select>
        </label>
        {onUp && <Button onClick={onUp}>Move up</Button>}
        {onRemove && (
          <Button onClick={onRemove} aria-label={`Remove ${title}`}>
            Remove
          </Button>
        )}
      </div>
      {errs.map((e) => (
        <p key={e} className="mt-1 text-xs text-red-700" role="alert">
          {e}
        </p>
      ))}
      {c && (
        <div className="mt-3">
          <p className="mb-2 text-sm text-slate-600">{c.description}</p>
          <ConfigForm
            schema={c.schema}
            value={section.config}
            onChange={(config) => onChange({ ...section, config })}
            errors={configErrors(placed, sectionKey)}
            idPrefix={idPrefix}
          />
        </div>
      )}
    </section>
  );
}

function TestResults({ results }: { results: TestResult[] }) {
  return (
    <div className="mt-3 space-y-2" data-testid="test-results">
      {results.map((r) => (
        <div key={r.index} className="rounded border border-slate-200 p-2 text-sm">
          <p className="font-medium">
            Message {r.index + 1}: {r.error ? <span className="text-red-700">failed: {r.error}</span> : r.filtered ? 'filtered out' : 'delivered to'}
          </p>
          {Object.entries(r.producers ?? ({} as NonNullable<TestResult['producers']>)).map(([p, outs]) => (
            <div key={p} className="mt-1">
              <p className="font-mono text-xs">{p}</p>
              {(outs ?? []).map((o, i) => (
                <pre key={i} className="mt-1 overflow-x-auto rounded bg-slate-100 p-2 text-xs">
                  {o.body}
                </pre>
              ))}
            </div>
          ))}
          {!r.error && !r.filtered && Object.keys(r.producers ?? {}).length === 0 && <p className="text-xs text-slate-500">No producer received it.</p>}
        </div>
      ))}
    </div>
  );
}
