import { afterEach, describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderView } from '../test/render';
import { fakeApi } from '../test/fakeApi';
import { Route, Routes } from 'react-router';
import Wizard, { fromObject, ifMatch, startingVersion, toSpec } from './Wizard';

afterEach(() => vi.unstubAllGlobals());

const connectors = {
  items: [
    { name: 'http-webhook', kind: 'consumer', description: 'Receive webhooks.', schema: { type: 'object', properties: { maxBytes: { type: 'integer' } } }, example: null },
    {
      name: 'router',
      kind: 'filter',
      description: 'Route by condition.',
      schema: { type: 'object', properties: { default: { type: ['array', 'null'], items: { type: 'string' } } } },
      example: { default: ['out'] },
    },
    { name: 'file', kind: 'producer', description: 'Write files.', schema: { type: 'object', properties: { dir: { type: 'string' } } }, example: null },
  ],
};

describe('the wizard', () => {
  it('sends the spec it built and shows each API error on its section and field', async () => {
    const { seen } = fakeApi({
      'GET /v1/connectors': () => ({ body: connectors }),
      'GET /v1/secrets': () => ({ body: { items: [] } }),
      'POST /v1/integrations': () => ({
        status: 422,
        body: {
          title: 'Unprocessable Entity',
          status: 422,
          detail: 'the spec has 2 problem(s)',
          errors: [
            { location: 'body.steps[0].config', message: 'routes[0].when: unexpected token' },
            { location: 'body.producers.out.config.dir', message: 'must stay inside the file root' },
          ],
        },
      }),
    });
    renderView(<Wizard />);
    await userEvent.type(await screen.findByLabelText('Name'), 'orders');
    await userEvent.selectOptions(screen.getByLabelText('1. Consumer: where messages come from: connector'), 'http-webhook');
    await userEvent.click(screen.getByRole('button', { name: 'Add step' }));
    await userEvent.selectOptions(screen.getByLabelText('Step 1: connector'), 'router');
    await userEvent.click(screen.getByRole('button', { name: 'Add producer' }));
    const name = screen.getByLabelText('Producer 1 name');
    await userEvent.clear(name);
    await userEvent.type(name, 'out');
    await userEvent.selectOptions(screen.getByLabelText('Producer out: connector'), 'file');
    await userEvent.click(screen.getByRole('button', { name: 'Create and deploy' }));

    const step = screen.getByRole('region', { name: 'Step 1' });
    expect(await within(step).findByText('config: routes[0].when: unexpected token')).toBeInTheDocument();
    const producer = screen.getByRole('region', { name: 'Producer out' });
    expect(within(producer).getByText('must stay inside the file root')).toBeInTheDocument();
    expect(screen.getByText('Unprocessable Entity: the spec has 2 problem(s)')).toBeInTheDocument();

    await waitFor(() => expect(seen.find((s) => s.method === 'POST')).toBeDefined());
    expect(seen.find((s) => s.method === 'POST')!.body).toEqual({
      name: 'orders',
      consumer: { connector: 'http-webhook', config: {} },
      steps: [{ connector: 'router', config: { default: ['out'] } }],
      producers: { out: { connector: 'file', config: {} } },
    });
  });
});

describe('editing an integration in the wizard', () => {
  const v1 = {
    name: 'orders',
    consumer: { connector: 'http-webhook', config: {} },
    producers: { out: { connector: 'file', config: { dir: 'old' } } },
  };
  const v2 = { ...v1, producers: { out: { connector: 'file', config: { dir: 'newer' } } } };
  const integration = { id: 'orders', name: 'orders', version: 2, deployed_version: 2, desired_status: 'running', status: 'running', spec: v2, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' };
  const versions = {
    items: [
      { version: 2, spec: v2, created_at: '2026-01-02T00:00:00Z' },
      { version: 1, spec: v1, created_at: '2026-01-01T00:00:00Z' },
    ],
  };

  function renderEdit(path: string) {
    return renderView(
      <Routes>
        <Route path="/integrations/:id/edit" element={<Wizard />} />
        <Route path="/integrations/:id" element={<p>detail page</p>} />
      </Routes>,
      path,
    );
  }

  it('starts from the chosen version, saves the change as the next version over the latest (If-Match) and deploys that', async () => {
    const puts: { ifMatch: string | null; body: unknown }[] = [];
    const { seen } = fakeApi({
      'GET /v1/connectors': () => ({ body: connectors }),
      'GET /v1/secrets': () => ({ body: { items: [] } }),
      'GET /v1/integrations/orders': () => ({ body: integration }),
      'GET /v1/integrations/orders/versions': () => ({ body: versions }),
      'PUT /v1/integrations/orders': ({ body }) => ({ body: { ...integration, version: 3, spec: body } }),
      'POST /v1/integrations/orders/deploy': () => ({ status: 202, body: { accepted: true } }),
    });
    // The fake records bodies, not headers: wrap it to see If-Match.
    const inner = globalThis.fetch;
    vi.stubGlobal('fetch', async (input: Request) => {
      if (input.method === 'PUT') puts.push({ ifMatch: input.headers.get('If-Match'), body: await input.clone().json() });
      return inner(input);
    });
    renderEdit('/integrations/orders/edit?version=1');
    const name = (await screen.findByLabelText('Name')) as HTMLInputElement;
    expect(name.value).toBe('orders');
    expect(name.readOnly).toBe(true);
    expect(screen.getByTestId('edit-base').textContent).toContain('Editing v1; saving stores v3, v2 stays deployed');
    const producer = screen.getByRole('region', { name: 'Producer out' });
    const dir = within(producer).getByLabelText('dir') as HTMLInputElement;
    expect(dir.value).toBe('old');
    await userEvent.clear(dir);
    await userEvent.type(dir, 'changed');
    await userEvent.click(screen.getByRole('button', { name: 'Save as v3 and deploy' }));
    expect(await screen.findByText('detail page')).toBeInTheDocument();
    expect(puts).toEqual([{ ifMatch: '"v2"', body: { ...v1, producers: { out: { connector: 'file', config: { dir: 'changed' } } } } }]);
    const deploy = seen.find((s) => s.method === 'POST' && s.path.endsWith('/deploy'));
    expect(deploy?.body).toEqual({ version: 3 });
    expect(seen.some((s) => s.method === 'POST' && s.path === '/v1/integrations')).toBe(false);
  });

  it('keeps the draft and says why when another version was saved meanwhile (412); the chosen version can be changed', async () => {
    let latest = integration;
    const { seen } = fakeApi({
      'GET /v1/connectors': () => ({ body: connectors }),
      'GET /v1/secrets': () => ({ body: { items: [] } }),
      'GET /v1/integrations/orders': () => ({ body: latest }),
      'GET /v1/integrations/orders/versions': () => ({ body: versions }),
      'PUT /v1/integrations/orders': () => {
        latest = { ...integration, version: 5 };
        return { status: 412, body: { title: 'Precondition Failed', status: 412, detail: 'version 5 is the latest, not 2' } };
      },
    });
    renderEdit('/integrations/orders/edit');
    const producer = await screen.findByRole('region', { name: 'Producer out' });
    expect((within(producer).getByLabelText('dir') as HTMLInputElement).value).toBe('newer');
    await userEvent.selectOptions(screen.getByLabelText('Start from version'), '1');
    await waitFor(() => expect((within(screen.getByRole('region', { name: 'Producer out' })).getByLabelText('dir') as HTMLInputElement).value).toBe('old'));
    const dir = within(screen.getByRole('region', { name: 'Producer out' })).getByLabelText('dir');
    await userEvent.type(dir, '-mine');
    await userEvent.click(screen.getByRole('button', { name: 'Save as v3' }));
    expect(await screen.findByText(/Precondition Failed: version 5 is the latest/)).toBeInTheDocument();
    expect(await screen.findByText(/Version 5 was saved while you edited/)).toBeInTheDocument();
    // The draft survives the refetch, and the next save goes over v5.
    expect((within(screen.getByRole('region', { name: 'Producer out' })).getByLabelText('dir') as HTMLInputElement).value).toBe('old-mine');
    expect(await screen.findByRole('button', { name: 'Save as v6' })).toBeInTheDocument();
    expect(seen.some((s) => s.path.endsWith('/deploy'))).toBe(false);
  });

  it('shows the problem when the integration does not exist', async () => {
    fakeApi({
      'GET /v1/connectors': () => ({ body: connectors }),
      'GET /v1/secrets': () => ({ body: { items: [] } }),
      'GET /v1/integrations/gone': () => ({ status: 404, body: { title: 'Not Found', status: 404, detail: 'no integration gone' } }),
      'GET /v1/integrations/gone/versions': () => ({ status: 404, body: { title: 'Not Found', status: 404 } }),
    });
    renderEdit('/integrations/gone/edit');
    expect(await screen.findByText('Not Found: no integration gone')).toBeInTheDocument();
  });
});

describe('the draft', () => {
  it('keeps the spec fields the form does not show (runners, unknown ones), but nothing that reaches a prototype', () => {
    const spec = { name: 'a', runners: 3, future: { x: 1 }, consumer: { connector: 'c' }, producers: { p: { connector: 'f', config: { dir: 'd' } } } };
    const d = fromObject(spec);
    expect(d.rest).toEqual({ runners: 3, future: { x: 1 } });
    expect(toSpec(d)).toEqual(spec);
    const hostile = fromObject(JSON.parse('{"name":"a","__proto__":{"polluted":true},"consumer":{"connector":"c"},"producers":{}}'));
    const out = toSpec(hostile) as unknown as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(out.polluted).toBeUndefined();
  });
});

describe('startingVersion', () => {
  const it0 = { version: 3, spec: { name: 'x' } } as never;
  const vs = [1, 2, 3].map((version) => ({ version, spec: { name: `v${version}` }, created_at: '' })) as never;
  it('takes the version asked for, else the latest; a malformed or unknown one is the latest', () => {
    expect(startingVersion(it0, vs, '2')).toEqual({ version: 2, spec: { name: 'v2' } });
    for (const bad of [null, '', '9', '-1', '2abc', '1e1', '99999999999999999999999', '__proto__']) {
      expect(startingVersion(it0, vs, bad)).toEqual({ version: 3, spec: { name: 'x' } });
    }
    expect(ifMatch(7)).toBe('"v7"');
  });
});
