import { afterEach, describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderView } from '../test/render';
import { fakeApi } from '../test/fakeApi';
import { Tenants } from './Tenants';

afterEach(() => vi.unstubAllGlobals());

type PlacementState = 'shared' | 'dedicated' | 'moving-to-dedicated' | 'moving-to-shared';

const placed = (state: PlacementState, step = '', forced = false) => ({ state, step, forced, since: '2026-12-06T11:00:00Z' });

const tenant = (id: string, placement = placed('shared'), status = 'active') => ({
  id,
  name: id.toUpperCase(),
  status,
  created_at: '2026-12-06T10:00:00Z',
  egress: {},
  limits: { disk_bytes: 1 << 30, memory_bytes: 0, streams: 200, consumers: 2000, dlq_bytes: 0, integrations: 100 },
  placement,
});

const row = async (id: string) => (await screen.findByText(id)).closest('tr')!;

describe('Tenants placement', () => {
  it('shows where each tenant lives in the Placement column', async () => {
    const items = [tenant('acme'), tenant('globex', placed('dedicated', '', true))];
    fakeApi({
      'GET /v1/tenants': () => ({ body: { items } }),
      'GET /v1/tenants/{id}': ({ url }) => ({ body: items.find((t) => t.id === url.pathname.split('/').pop()) }),
    });
    renderView(<Tenants />);
    expect(await screen.findByRole('columnheader', { name: 'Placement' })).toBeInTheDocument();
    expect(within(await row('acme')).getByTestId('placement-badge')).toHaveTextContent(/^shared$/);
    expect(within(await row('globex')).getByTestId('placement-badge')).toHaveTextContent(/^dedicated$/);
  });

  it('shows a move under way with its step', async () => {
    const moving = tenant('initech', placed('moving-to-dedicated', 'copy-streams'));
    fakeApi({
      'GET /v1/tenants': () => ({ body: { items: [moving] } }),
      'GET /v1/tenants/initech': () => ({ body: moving }),
    });
    renderView(<Tenants />);
    const r = await row('initech');
    expect(within(r).getByTestId('placement-badge')).toHaveTextContent('moving…');
    expect(within(r).getByText('to dedicated · copy-streams')).toBeInTheDocument();
  });

  it('moves a shared tenant to dedicated after confirming, with the reason, and shows its history', async () => {
    const detail = {
      ...tenant('acme'),
      placement_history: [
        { at: '2026-12-06T11:00:00Z', state: 'shared', step: '', reason: 'moved back' },
        { at: '2026-12-06T10:30:00Z', state: 'moving-to-shared', step: 'drain', reason: 'requested by the platform admin' },
      ],
    };
    const { seen } = fakeApi({
      'GET /v1/tenants': () => ({ body: { items: [tenant('acme')] } }),
      'GET /v1/tenants/acme': () => ({ body: detail }),
      'POST /v1/tenants/acme/placement': () => ({ status: 202, body: { requested: 'dedicated', placement: placed('shared') } }),
    });
    renderView(<Tenants />);
    await userEvent.click(await screen.findByRole('button', { name: 'Manage acme' }));
    const section = await screen.findByRole('region', { name: 'Placement of acme' });
    const history = await within(section).findByRole('list', { name: 'Placement history' });
    const items = within(history).getAllByRole('listitem');
    expect(items).toHaveLength(2);
    expect(items[0]).toHaveTextContent('moved back');
    expect(items[1]).toHaveTextContent('drain');

    await userEvent.click(within(section).getByRole('button', { name: 'Move to dedicated' }));
    expect(seen.find((s) => s.method === 'POST')).toBeUndefined();
    const dialog = screen.getByRole('dialog', { name: 'Move acme to a dedicated NATS instance?' });
    await userEvent.type(within(dialog).getByLabelText('Reason (optional)'), 'a big customer');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Move to dedicated' }));
    await waitFor(() => expect(seen.find((s) => s.method === 'POST')?.body).toEqual({ placement: 'dedicated', reason: 'a big customer' }));
    expect(seen.find((s) => s.method === 'POST')?.path).toBe('/v1/tenants/acme/placement');
    expect(await screen.findByText(/Asked to move acme to a dedicated NATS instance; it is shared now/)).toBeInTheDocument();
  });

  it('moves a dedicated tenant back to shared, without a reason, and cancels without asking', async () => {
    const dedicated = tenant('globex', placed('dedicated', '', true));
    const { seen } = fakeApi({
      'GET /v1/tenants': () => ({ body: { items: [dedicated] } }),
      'GET /v1/tenants/globex': () => ({ body: dedicated }),
      'POST /v1/tenants/globex/placement': () => ({ status: 202, body: { requested: 'shared', placement: placed('dedicated', '', true) } }),
    });
    renderView(<Tenants />);
    await userEvent.click(await screen.findByRole('button', { name: 'Manage globex' }));
    const section = await screen.findByRole('region', { name: 'Placement of globex' });
    expect(within(section).getByText('held by an admin')).toBeInTheDocument();
    expect(within(section).getByText('It has never moved.')).toBeInTheDocument();

    await userEvent.click(within(section).getByRole('button', { name: 'Move to shared' }));
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Cancel' }));
    expect(seen.find((s) => s.method === 'POST')).toBeUndefined();

    await userEvent.click(within(section).getByRole('button', { name: 'Move to shared' }));
    await userEvent.click(within(screen.getByRole('dialog', { name: 'Move globex to the shared NATS cluster?' })).getByRole('button', { name: 'Move to shared' }));
    await waitFor(() => expect(seen.find((s) => s.method === 'POST')?.body).toEqual({ placement: 'shared' }));
    expect(await screen.findByText(/Asked to move globex to the shared NATS cluster/)).toBeInTheDocument();
  });

  it('shows the refusal of a move', async () => {
    fakeApi({
      'GET /v1/tenants': () => ({ body: { items: [tenant('acme')] } }),
      'GET /v1/tenants/acme': () => ({ body: tenant('acme') }),
      'POST /v1/tenants/acme/placement': () => ({ status: 503, body: { title: 'Service Unavailable', status: 503, detail: 'the control plane did not take the move; retry later' } }),
    });
    renderView(<Tenants />);
    await userEvent.click(await screen.findByRole('button', { name: 'Manage acme' }));
    const section = await screen.findByRole('region', { name: 'Placement of acme' });
    await userEvent.click(within(section).getByRole('button', { name: 'Move to dedicated' }));
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Move to dedicated' }));
    expect(await within(section).findByText('Service Unavailable: the control plane did not take the move; retry later')).toBeInTheDocument();
  });

  it('moves only an active tenant', async () => {
    const starting = tenant('acme', placed('shared'), 'provisioning');
    fakeApi({ 'GET /v1/tenants': () => ({ body: { items: [starting] } }) });
    renderView(<Tenants />);
    await userEvent.click(await screen.findByRole('button', { name: 'Manage acme' }));
    const section = await screen.findByRole('region', { name: 'Placement of acme' });
    expect(within(section).getByRole('button', { name: 'Move to dedicated' })).toBeDisabled();
  });
});
