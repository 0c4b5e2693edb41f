import { afterEach, describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderView } from '../test/render';
import { fakeApi } from '../test/fakeApi';
import Wizard from './Wizard';

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
