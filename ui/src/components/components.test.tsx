import { describe, expect, it, vi } from 'vitest';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import ConfigForm, { SecretNames, isSecretRef, pruneEmpty, secretMap, secretRows, secretUiSchema } from './ConfigForm';
import { specToYaml, yamlToSpec } from '../lib/specyaml';
// The http producer's config schema as the SDK generates it (sdk.ConfigSchema).
import httpSchema from '../test/fixtures/http-schema.json';
import { SchemaDoc, typeLabel } from './SchemaDoc';
import { inspectURL, parseMessage } from './Inspector';
import { toColumns, charts, summaryOf, peaksOf } from './Charts';
import type { MetricsPoint } from '../api/types';
import { fromObject, parseHeaders, toSpec, emptyDraft } from '../views/Wizard';
import { curlExample, webhookURL } from '../views/IntegrationDetail';

const webhookSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    token: { $ref: '#/$defs/Secret', description: 'A secret URL token.' },
    signature: { $ref: '#/$defs/Signature' },
    maxBytes: { type: 'integer', description: 'Body limit in bytes.' },
  },
  $defs: {
    Secret: { type: 'object', additionalProperties: false, properties: { env: { type: 'string' }, secret: { type: 'string' } } },
    Signature: {
      type: 'object',
      required: ['scheme', 'secret'],
      properties: { scheme: { type: 'string', enum: ['github', 'hmac'] }, secret: { $ref: '#/$defs/Secret' } },
    },
  },
};

describe('ConfigForm', () => {
  it('marks every secret reference, nested ones too', () => {
    expect(isSecretRef(webhookSchema.properties.token, webhookSchema.$defs)).toBe(true);
    expect(isSecretRef(webhookSchema.properties.maxBytes, webhookSchema.$defs)).toBe(false);
    expect(secretUiSchema(webhookSchema as never)).toEqual({ token: { 'ui:field': 'secretRef' }, signature: { secret: { 'ui:field': 'secretRef' } } });
  });

  it("renders the schema's fields, picks secrets from the tenant's names and shows the API's errors on their field", async () => {
    const onChange = vi.fn();
    render(
      <SecretNames.Provider value={['hook-token', 'other']}>
        <ConfigForm
          schema={webhookSchema}
          value={{}}
          onChange={onChange}
          idPrefix="consumer"
          errors={{ maxBytes: { __errors: ['must be at most 10485760'] } }}
        />
      </SecretNames.Provider>,
    );
    expect(screen.getByLabelText('maxBytes')).toBeInTheDocument();
    expect(screen.getByText('must be at most 10485760')).toBeInTheDocument();
    const picker = screen.getByLabelText(/^token/);
    expect(picker.tagName).toBe('SELECT');
    expect([...(picker as HTMLSelectElement).options].map((o) => o.value)).toEqual(['', 'hook-token', 'other']);
    await userEvent.selectOptions(picker, 'hook-token');
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ token: { secret: 'hook-token' } }));
  });

  it('drops what the form leaves empty but keeps empty lists', () => {
    expect(pruneEmpty({ signature: { secret: {} }, events: [], token: undefined, maxBytes: 0, headers: { a: '' } })).toEqual({ events: [], maxBytes: 0, headers: { a: '' } });
  });

  it('says so when the tenant has no secrets', () => {
    render(<ConfigForm schema={webhookSchema} value={{}} onChange={() => {}} idPrefix="c" />);
    expect(screen.getAllByText(/no secrets yet/)[0]).toBeInTheDocument();
  });
});

describe('secrets inside maps (the http producer)', () => {
  it('marks secretHeaders as a map of secret pickers, signature.secret as one, and plain headers as neither', () => {
    expect(secretUiSchema(httpSchema as never)).toEqual({
      secretHeaders: { 'ui:field': 'secretMap' },
      signature: { secret: { 'ui:field': 'secretRef' } },
    });
    expect(secretUiSchema({ properties: { keys: { type: 'array', items: { $ref: '#/$defs/Secret' } } }, $defs: httpSchema.$defs } as never)).toEqual({
      keys: { items: { 'ui:field': 'secretRef' } },
    });
  });

  it('turns rows into the map and back, leaving out rows still being filled in and hostile keys', () => {
    const rows = secretRows({ Authorization: { secret: 'api-token' }, 'X-Env': { env: 'SHARED_KEY' }, Bad: 'inline', Odd: null });
    expect(rows).toEqual([
      { key: 'Authorization', ref: { secret: 'api-token' } },
      { key: 'X-Env', ref: { env: 'SHARED_KEY' } },
      { key: 'Bad', ref: {} },
      { key: 'Odd', ref: {} },
    ]);
    expect(secretMap(rows)).toEqual({ Authorization: { secret: 'api-token' }, 'X-Env': { env: 'SHARED_KEY' } });
    expect(secretMap([{ key: '', ref: { secret: 'x' } }, { key: 'A', ref: {} }])).toBeUndefined();
    const out = secretMap([{ key: '__proto__', ref: { secret: 'x' } }, { key: ' B ', ref: { secret: 'y' } }]);
    expect(out).toEqual({ B: { secret: 'y' } });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(secretRows(['a'])).toEqual([]);
    expect(secretRows(undefined)).toEqual([]);
  });

  function Harness({ initial, onValue }: { initial: unknown; onValue: (v: unknown) => void }) {
    const [value, setValue] = useState<unknown>(initial);
    return (
      <SecretNames.Provider value={['api-token', 'other']}>
        <ConfigForm
          schema={httpSchema}
          value={value}
          onChange={(v) => {
            setValue(v);
            onValue(v);
          }}
          idPrefix="producer-0"
        />
        <button type="button" onClick={() => setValue({ url: 'http://x', secretHeaders: { 'X-From-Yaml': { secret: 'other' } } })}>
          replace
        </button>
      </SecretNames.Provider>
    );
  }

  it('adds a header whose value is picked from the secret names, never typed', async () => {
    const onValue = vi.fn();
    render(<Harness initial={{ url: 'http://sink/alerts' }} onValue={onValue} />);
    const map = screen.getByTestId('secret-map-secretHeaders');
    expect(map.querySelectorAll('input')).toHaveLength(0);
    await userEvent.click(screen.getByRole('button', { name: 'Add to secretHeaders' }));
    await userEvent.type(screen.getByLabelText('secretHeaders 1: name'), 'Authorization');
    // A name without a secret is not sent yet.
    expect(onValue).toHaveBeenLastCalledWith({ url: 'http://sink/alerts' });
    const picker = screen.getByLabelText('secretHeaders 1: secret');
    expect(picker.tagName).toBe('SELECT');
    expect([...(picker as HTMLSelectElement).options].map((o) => o.value)).toEqual(['', 'api-token', 'other']);
    await userEvent.selectOptions(picker, 'api-token');
    expect(onValue).toHaveBeenLastCalledWith({ url: 'http://sink/alerts', secretHeaders: { Authorization: { secret: 'api-token' } } });
    // The only text fields in the map are the header names.
    expect([...map.querySelectorAll('input')].map((i) => (i as HTMLInputElement).value)).toEqual(['Authorization']);

    await userEvent.click(screen.getByRole('button', { name: 'Add to secretHeaders' }));
    await userEvent.type(screen.getByLabelText('secretHeaders 2: name'), 'Authorization');
    expect(screen.getByText('Authorization is named twice: the last one counts.')).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Remove secretHeaders 2' }));
    await userEvent.click(screen.getByRole('button', { name: 'Remove secretHeaders 1' }));
    expect(onValue).toHaveBeenLastCalledWith({ url: 'http://sink/alerts' });
  });

  it('shows a map that came from YAML, a name not stored yet and an env reference', async () => {
    render(<Harness initial={{ url: 'http://x', secretHeaders: { Authorization: { secret: 'missing' }, 'X-Key': { env: 'SHARED_KEY' } } }} onValue={() => {}} />);
    expect((screen.getByLabelText('secretHeaders 1: name') as HTMLInputElement).value).toBe('Authorization');
    const picker = screen.getByLabelText('secretHeaders 1: secret') as HTMLSelectElement;
    expect(picker.value).toBe('missing');
    expect(screen.getByRole('option', { name: 'missing (not stored yet)' })).toBeInTheDocument();
    expect(screen.getByText('SHARED_KEY')).toBeInTheDocument();
    // A new value from elsewhere (the YAML tab) replaces the rows.
    await userEvent.click(screen.getByRole('button', { name: 'replace' }));
    expect((screen.getByLabelText('secretHeaders 1: name') as HTMLInputElement).value).toBe('X-From-Yaml');
    expect((screen.getByLabelText('secretHeaders 1: secret') as HTMLSelectElement).value).toBe('other');
    expect(screen.queryByLabelText('secretHeaders 2: name')).toBeNull();
  });

  it('round-trips a spec with secret references through YAML and the draft unchanged', () => {
    const spec = {
      name: 'orders',
      consumer: { connector: 'http-webhook', config: { token: { secret: 'hook-token' } } },
      steps: [{ connector: 'router', config: { routes: [{ when: 'total > 1000', to: ['alerts'] }] } }],
      producers: {
        alerts: {
          connector: 'http',
          config: { url: 'http://sink/alerts', secretHeaders: { Authorization: { secret: 'api-token' }, 'X-Env': { env: 'SHARED' } }, signature: { secret: { secret: 'sign' } } },
        },
      },
    };
    const text = specToYaml(spec);
    expect(text).toContain('secretHeaders:\n        Authorization:\n          secret: api-token');
    const parsed = yamlToSpec(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(toSpec(fromObject(parsed.spec))).toEqual(spec);
    // What the form keeps of it is the same map.
    expect(secretMap(secretRows(spec.producers.alerts.config.secretHeaders))).toEqual(spec.producers.alerts.config.secretHeaders);
  });
});

describe('chart summaries', () => {
  it('says a series is not measured when every sample is null, and gives the latest values otherwise', () => {
    const points = [
      { time: '2026-01-01T00:00:00Z', in_per_second: 1, out_per_second: 1, errors_per_second: 0, dlq_per_second: 0, p50_ms: null, p99_ms: null },
      { time: '2026-01-01T00:00:05Z', in_per_second: 4, out_per_second: 3, errors_per_second: 0, dlq_per_second: 0, p50_ms: null, p99_ms: null },
    ] as never[];
    const [throughput, , latency] = charts;
    expect(summaryOf(points, latency.series, latency.unit)).toBe('not measured yet');
    expect(summaryOf(points, throughput.series, throughput.unit)).toBe('in 4.00 msg/s, out 3.00 msg/s');
    expect(summaryOf([], latency.series, latency.unit)).toBe('no samples yet');
  });

  it('gives the latest p50 and p99, and a dash for a bucket without deliveries', () => {
    const latency = charts.find((c) => c.title === 'Latency')!;
    const points: MetricsPoint[] = [
      { time: '2026-01-01T00:00:00Z', in_per_second: 1, out_per_second: 1, errors_per_second: 0, dlq_per_second: 0, p50_ms: null, p99_ms: null },
      { time: '2026-01-01T00:00:10Z', in_per_second: 4, out_per_second: 3, errors_per_second: 0, dlq_per_second: 0, p50_ms: 3.25, p99_ms: 120.4 },
    ];
    expect(summaryOf(points, latency.series, latency.unit)).toBe('p50 3.25 ms, p99 120 ms');
    expect(peaksOf(points, latency.series)).toEqual({ p50: 3.25, p99: 120.4 });
    const idle = [...points, { ...points[0], time: '2026-01-01T00:00:20Z' }];
    expect(summaryOf(idle, latency.series, latency.unit)).toBe('p50 —, p99 —');
    expect(peaksOf(idle, latency.series)).toEqual({ p50: 3.25, p99: 120.4 });
    expect(peaksOf([], latency.series)).toEqual({ p50: 0, p99: 0 });
  });
});

describe('SchemaDoc', () => {
  it('documents properties, types, requiredness, enums and defaults', () => {
    render(
      <SchemaDoc
        schema={{
          type: 'object',
          required: ['routes'],
          properties: {
            routes: { type: ['array', 'null'], description: 'Routes, tried in order.', items: { type: 'object', properties: { when: { type: 'string' } } } },
            mode: { type: 'string', enum: ['first', 'all'], default: 'first' },
          },
        }}
      />,
    );
    expect(screen.getByText('routes')).toBeInTheDocument();
    expect(screen.getByText('required')).toBeInTheDocument();
    expect(screen.getByText('Routes, tried in order.')).toBeInTheDocument();
    expect(screen.getByText('when')).toBeInTheDocument();
    expect(screen.getByText('"all"')).toBeInTheDocument();
    expect(typeLabel({ type: 'object', additionalProperties: { type: 'string' } })).toBe('map of string');
    expect(typeLabel({ $ref: '#/$defs/Secret' })).toBe('Secret');
  });
  it('says when there is nothing to configure', () => {
    render(<SchemaDoc schema={{ type: 'object' }} />);
    expect(screen.getByText('This connector takes no configuration.')).toBeInTheDocument();
  });
});

describe('the inspector', () => {
  it('builds an encoded stream URL', () => {
    expect(inspectURL('a/b', 'out.x y', 5, true)).toBe('/v1/integrations/a%2Fb/inspect?stage=out.x+y&limit=5&reveal=true');
  });
  it('reads messages and ignores anything else', () => {
    expect(parseMessage('{"time":"t","stage":"in","id":"m1","size":3,"headers":{"a":"b"}}')).toEqual({ time: 't', stage: 'in', id: 'm1', size: 3, headers: { a: 'b' }, body: undefined });
    expect(parseMessage('not json')).toBeNull();
    expect(parseMessage('{"id":5}')).toBeNull();
    expect(parseMessage('null')).toBeNull();
  });
});

describe('charts', () => {
  it('turns metric points into columns with gaps for missing latency', () => {
    const points = [
      { time: '2026-12-06T10:00:00Z', in_per_second: 1, out_per_second: 2, errors_per_second: 0, dlq_per_second: 0, p50_ms: null, p99_ms: 5 },
      { time: '2026-12-06T10:00:10Z', in_per_second: 3, out_per_second: 4, errors_per_second: 0, dlq_per_second: 0, p50_ms: 1, p99_ms: 9 },
    ];
    const latency = charts.find((c) => c.title === 'Latency')!;
    expect(toColumns(points as never, latency.series)).toEqual([[1796551200, 1796551210], [null, 1], [5, 9]]);
  });
});

describe('the wizard model', () => {
  it('reads a parsed YAML spec and gives the API its shape', () => {
    const d = fromObject({ name: 'x', consumer: { connector: 'http-webhook' }, steps: [{ connector: 'router', config: { routes: [] } }, 'junk'], producers: { out: { connector: 'file' } } });
    expect(d.steps).toEqual([{ connector: 'router', config: { routes: [] } }, { connector: '' }]);
    expect(toSpec(d)).toEqual({ name: 'x', consumer: { connector: 'http-webhook' }, steps: d.steps, producers: { out: { connector: 'file' } } });
    expect(toSpec(emptyDraft)).toEqual({ name: '', consumer: { connector: '' }, producers: {} });
    expect(fromObject({ producers: [1, 2], steps: 'no' })).toEqual(emptyDraft);
  });
  it('reads sample headers', () => {
    expect(parseHeaders('Content-Type: application/json\nX-A:b:c\n\nbad line\n: empty')).toEqual({ 'Content-Type': 'application/json', 'X-A': 'b:c' });
  });
  it('builds the webhook URL and its curl example', () => {
    const url = webhookURL('http://127.0.0.1:8080', 'acme', 'order files');
    expect(url).toBe('http://127.0.0.1:8080/v1/hooks/acme/order%20files');
    expect(curlExample(url)).toContain(`curl -X POST '${url}'`);
  });
});
