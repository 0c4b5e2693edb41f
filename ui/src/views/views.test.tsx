import { afterEach, describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderView } from '../test/render';
import { fakeApi } from '../test/fakeApi';
import { SignIn } from './SignIn';
import { Tenants } from './Tenants';
import { ApiKeys } from './ApiKeys';
import { Integrations } from './Integrations';
import { DeadLetters } from './DeadLetters';
import { loadKey } from '../api/session';

afterEach(() => vi.unstubAllGlobals());

const adminKey = 'vrsky_admin_' + '1'.repeat(64);
const tenantKey = 'vrsky_' + '2'.repeat(64);

describe('SignIn', () => {
  it('signs the admin in after the API accepts the key', async () => {
    const { seen } = fakeApi({ 'GET /v1/tenants': () => ({ body: { items: [] } }) });
    const onSignedIn = vi.fn();
    renderView(<SignIn onSignedIn={onSignedIn} />);
    await userEvent.type(screen.getByLabelText('API key'), adminKey);
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(onSignedIn).toHaveBeenCalledWith({ key: adminKey, role: 'admin' }));
    expect(seen[0].auth).toBe(`Bearer ${adminKey}`);
    expect(seen[0].search).not.toContain(adminKey);
    expect(loadKey()).toBe(adminKey);
  });

  it('finds the tenant of a tenant key', async () => {
    fakeApi({ 'GET /v1/api-keys': () => ({ body: { items: [{ id: 'k', tenant_id: 'acme', prefix: 'vrsky_222222', scopes: ['read'], created_at: '2026-12-06T10:00:00Z' }] } }) });
    const onSignedIn = vi.fn();
    renderView(<SignIn onSignedIn={onSignedIn} />);
    await userEvent.type(screen.getByLabelText('API key'), tenantKey);
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(onSignedIn).toHaveBeenCalledWith({ key: tenantKey, role: 'tenant', tenant: 'acme' }));
  });

  it('shows the problem and forgets a refused key', async () => {
    fakeApi({ 'GET /v1/tenants': () => ({ status: 401, body: { title: 'Unauthorized', status: 401, detail: 'missing or invalid API key' } }) });
    const onSignedIn = vi.fn();
    renderView(<SignIn onSignedIn={onSignedIn} />);
    await userEvent.type(screen.getByLabelText('API key'), adminKey);
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('Unauthorized: missing or invalid API key')).toBeInTheDocument();
    expect(onSignedIn).not.toHaveBeenCalled();
    expect(loadKey()).toBeNull();
  });

  it('never sends what is not a key', async () => {
    const { fetchMock } = fakeApi({});
    renderView(<SignIn onSignedIn={vi.fn()} />);
    await userEvent.type(screen.getByLabelText('API key'), 'hunter2');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText(/not a VRSky API key/)).toBeInTheDocument();
    expect(fetchMock).not.toHaveBeenCalled();
  });
});

const tenant = (id: string, status = 'active') => ({
  id,
  name: id.toUpperCase(),
  status,
  created_at: '2026-12-06T10:00:00Z',
  egress: {},
  limits: {
    disk_bytes: 1 << 30,
    memory_bytes: 0,
    streams: 200,
    consumers: 2000,
    dlq_bytes: 0,
    integrations: 100,
    messages_per_second: 30,
    remembered_keys: 5_000_000,
  },
});

describe('Tenants', () => {
  it('lists tenants with usage, creates one and shows its key once', async () => {
    const { seen } = fakeApi({
      'GET /v1/tenants': () => ({ body: { items: [tenant('acme')] } }),
      'GET /v1/tenants/acme': () => ({ body: { ...tenant('acme'), usage: { integrations: 3, stored_bytes: 2048 } } }),
      'POST /v1/tenants': ({ body }) => ({
        status: 202,
        body: { tenant: tenant((body as { id: string }).id, 'provisioning'), api_key: { id: 'key-1', tenant_id: 'globex', prefix: 'vrsky_abcdef', scopes: ['read', 'write', 'dlq'], created_at: '2026-12-06T10:00:00Z', secret: 'vrsky_' + 'c'.repeat(64) } },
      }),
    });
    renderView(<Tenants />);
    const row = (await screen.findByText('acme')).closest('tr')!;
    await waitFor(() => expect(within(row).getByText('3 / 100')).toBeInTheDocument());
    expect(within(row).getByText('2.0 KiB / 1.0 GiB')).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'New tenant' }));
    await userEvent.type(screen.getByLabelText('ID'), 'globex');
    await userEvent.type(screen.getByLabelText('Name'), 'Globex');
    await userEvent.click(screen.getByRole('button', { name: 'Create tenant' }));
    expect(await screen.findByTestId('new-tenant-key')).toHaveTextContent('vrsky_' + 'c'.repeat(64));
    expect(screen.getByRole('button', { name: 'Copy key' })).toBeInTheDocument();
    expect(await screen.findByText(/Created tenant globex/)).toBeInTheDocument();
    expect(seen.find((s) => s.method === 'POST')?.body).toEqual({ id: 'globex', name: 'Globex' });
  });

  it('saves limits with PATCH and deletes after confirming', async () => {
    const { seen } = fakeApi({
      'GET /v1/tenants': () => ({ body: { items: [tenant('acme')] } }),
      'GET /v1/tenants/acme': () => ({ body: tenant('acme') }),
      'PATCH /v1/tenants/acme': () => ({ body: tenant('acme') }),
      'DELETE /v1/tenants/acme': () => ({ status: 202, body: tenant('acme', 'deleting') }),
    });
    renderView(<Tenants />);
    await userEvent.click(await screen.findByRole('button', { name: 'Manage acme' }));
    const integrations = screen.getByLabelText('Integrations');
    await userEvent.clear(integrations);
    await userEvent.type(integrations, '7');
    await userEvent.click(screen.getByRole('checkbox', { name: /Allow loopback/ }));
    await userEvent.click(screen.getByRole('button', { name: 'Save limits and egress' }));
    await waitFor(() => expect(seen.find((s) => s.method === 'PATCH')).toBeDefined());
    const patched = seen.find((s) => s.method === 'PATCH')!.body as {
      limits: { integrations: number; disk_bytes: number; messages_per_second: number; remembered_keys: number };
      egress: unknown;
    };
    expect(patched.limits.integrations).toBe(7);
    expect(patched.limits.disk_bytes).toBe(1 << 30);
    // The quotas not edited are sent as they were, not reset to the platform's.
    expect(patched.limits.messages_per_second).toBe(30);
    expect(patched.limits.remembered_keys).toBe(5_000_000);
    expect(patched.egress).toEqual({ allowPrivate: true, allowHosts: [] });
    expect(await screen.findByText('Saved the limits and egress policy of acme.')).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Delete tenant' }));
    expect(seen.find((s) => s.method === 'DELETE')).toBeUndefined();
    await userEvent.click(screen.getByRole('button', { name: 'Delete for good' }));
    await waitFor(() => expect(seen.find((s) => s.method === 'DELETE')?.path).toBe('/v1/tenants/acme'));
  });

  it('says what to do when there are none, and shows the problem when the API fails', async () => {
    fakeApi({ 'GET /v1/tenants': () => ({ body: { items: [] } }) });
    const { unmount } = renderView(<Tenants />);
    expect(await screen.findByText('No tenants yet')).toBeInTheDocument();
    unmount();
    fakeApi({ 'GET /v1/tenants': () => ({ status: 503, body: { title: 'Service Unavailable', status: 503, detail: 'PostgreSQL is down' } }) });
    renderView(<Tenants />);
    expect(await screen.findByText('Service Unavailable: PostgreSQL is down')).toBeInTheDocument();
  });
});

describe('ApiKeys', () => {
  it('creates a key with the chosen scopes and revokes one', async () => {
    const { seen } = fakeApi({
      'GET /v1/api-keys': () => ({ body: { items: [{ id: 'key-1', tenant_id: 'acme', prefix: 'vrsky_111111', scopes: ['read'], created_at: '2026-12-06T10:00:00Z' }] } }),
      'POST /v1/api-keys': ({ body }) => ({ status: 201, body: { id: 'key-2', tenant_id: 'acme', prefix: 'vrsky_222222', scopes: (body as { scopes: string[] }).scopes, created_at: '2026-12-06T10:00:00Z', secret: 'vrsky_' + 'd'.repeat(64) } }),
      'DELETE /v1/api-keys/key-1': () => ({ status: 204 }),
    });
    renderView(<ApiKeys />);
    await userEvent.click(await screen.findByRole('checkbox', { name: /dlq/ }));
    await userEvent.click(screen.getByRole('button', { name: 'Create key' }));
    expect(await screen.findByTestId('new-api-key')).toHaveTextContent('vrsky_' + 'd'.repeat(64));
    expect(seen.find((s) => s.method === 'POST')?.body).toEqual({ scopes: ['read', 'dlq'] });
    await userEvent.click(screen.getByRole('button', { name: 'Revoke vrsky_111111' }));
    await userEvent.click(screen.getByRole('button', { name: 'Revoke' }));
    await waitFor(() => expect(seen.find((s) => s.method === 'DELETE')?.path).toBe('/v1/api-keys/key-1'));
    expect(await screen.findByText(/Revoked key key-1/)).toBeInTheDocument();
  });
});

describe('Integrations', () => {
  it('guides to the wizard when there are none', async () => {
    fakeApi({ 'GET /v1/integrations': () => ({ body: { items: [] } }) });
    renderView(<Integrations />);
    expect(await screen.findByText('No integrations yet')).toBeInTheDocument();
    expect(screen.getAllByRole('link', { name: /New integration/ })[0]).toHaveAttribute('href', '/integrations/new');
  });
});

describe('DeadLetters', () => {
  const dl = (id: string) => ({ id, message_id: `m-${id}`, integration: 'orders', stage: 'deliver-sink', producer: 'sink', error: 'connection refused', attempts: 4, subject: 's', at: '2026-12-06T10:00:00Z', body_size: 12, claim_checked: false });
  it('filters, inspects a body and replays the selected ones', async () => {
    const { seen } = fakeApi({
      'GET /v1/dlq': () => ({ body: { items: [dl('1'), dl('2')] } }),
      'GET /v1/dlq/1': () => ({ body: { ...dl('1'), headers: { 'X-Order': '1' }, body: '{"id":1}', body_encoding: 'utf-8', content_type: 'application/json' } }),
      'POST /v1/dlq/replay': () => ({ status: 202, body: { workflow_id: 'dlq-replay/x', replay_id: 'r-1' } }),
      'GET /v1/dlq/replays/r-1': () => ({ body: { replay_id: 'r-1', state: 'completed', total: 1, done: 1, failed: 0 } }),
    });
    renderView(<DeadLetters />, '/dlq?integration=orders');
    expect(await screen.findAllByText('connection refused')).toHaveLength(2);
    expect(seen[0].search).toContain('integration=orders');

    await userEvent.click(screen.getByRole('button', { name: 'Inspect dead letter 1' }));
    expect(await screen.findByTestId('dlq-body')).toHaveTextContent('"id": 1');
    expect(screen.getByTestId('dlq-headers')).toHaveTextContent('X-Order');

    await userEvent.click(screen.getByRole('checkbox', { name: 'Select dead letter 1' }));
    await userEvent.click(screen.getByRole('button', { name: 'Replay selected (1)' }));
    await userEvent.click(screen.getByRole('button', { name: 'Replay' }));
    await waitFor(() => expect(seen.find((s) => s.method === 'POST')?.body).toEqual({ integration: 'orders', ids: ['1'] }));
    expect(await screen.findByTestId('bulk-progress')).toHaveTextContent('1 of 1 done');
  });
});
