import type { ReactElement } from 'react';
import { render } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { NoticeProvider } from '../components/ui';

/** renderView renders a view with the providers the app gives it. */
export function renderView(ui: ReactElement, path = '/') {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queries}>
      <MemoryRouter initialEntries={[path]}>
        <NoticeProvider>{ui}</NoticeProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}
