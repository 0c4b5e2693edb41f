// A fake of the API for component tests: routes by method and path, records
// the requests it got, answers JSON.
import { vi } from 'vitest';

export interface Seen {
  method: string;
  path: string;
  search: string;
  auth: string | null;
  body: unknown;
}

type Handler = (req: { url: URL; body: unknown }) => { status?: number; body?: unknown } | undefined;

export function fakeApi(routes: Record<string, Handler>) {
  const seen: Seen[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(req.url);
    const text = req.method === 'GET' || req.method === 'HEAD' ? '' : await req.text();
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    seen.push({ method: req.method, path: url.pathname, search: url.search, auth: req.headers.get('Authorization'), body });
    const key = `${req.method} ${url.pathname}`;
    const match = Object.entries(routes).find(([pattern]) => new RegExp(`^${pattern.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(key));
    const out = match ? match[1]({ url, body }) : { status: 404, body: { title: 'Not Found', status: 404, detail: `no route ${key}` } };
    const status = out?.status ?? 200;
    return new Response(status === 204 ? null : JSON.stringify(out?.body ?? {}), {
      status,
      headers: { 'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json' },
    });
  });
  vi.stubGlobal('fetch', fetchMock);
  return { seen, fetchMock };
}
