// The one way the UI talks to VRSky: a client generated from the API's
// OpenAPI document (schema.d.ts, from openapi.json), the session's key as a
// bearer token, and every error turned into the API's problem detail.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';
import { loadKey } from './session';

export type Schemas = components['schemas'];

/** A problem detail (RFC 9457) as the API answers errors. */
export interface Problem {
  title?: string;
  status?: number;
  detail?: string;
  type?: string;
  errors?: { message?: string; location?: string; value?: unknown }[];
}

/** ProblemError carries the API's problem detail to the view that shows it. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly status: number;
  constructor(status: number, problem: Problem) {
    super(problemText(problem, status));
    this.name = 'ProblemError';
    this.status = status;
    this.problem = problem;
  }
}

/** problemText is the one-line summary of a problem. */
export function problemText(p: Problem, status?: number): string {
  const head = p.title || (status ? `HTTP ${status}` : 'Request failed');
  return p.detail ? `${head}: ${p.detail}` : head;
}

/** toProblem reads whatever an error response held as a problem. */
export function toProblem(status: number, body: unknown): Problem {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    const errors = Array.isArray(b.errors)
      ? b.errors.filter((e): e is Record<string, unknown> => !!e && typeof e === 'object').map((e) => ({
          message: typeof e.message === 'string' ? e.message : undefined,
          location: typeof e.location === 'string' ? e.location : undefined,
          value: e.value,
        }))
      : undefined;
    return {
      title: typeof b.title === 'string' ? b.title : undefined,
      status: typeof b.status === 'number' ? b.status : status,
      detail: typeof b.detail === 'string' ? b.detail : undefined,
      type: typeof b.type === 'string' ? b.type : undefined,
      errors,
    };
  }
  if (typeof body === 'string' && body.trim() !== '') return { status, title: `HTTP ${status}`, detail: body.slice(0, 500) };
  return { status, title: `HTTP ${status}` };
}

const auth: Middleware = {
  onRequest({ request }) {
    const key = loadKey();
    if (key) request.headers.set('Authorization', `Bearer ${key}`);
    return request;
  },
};

/** makeClient builds a typed client; tests pass their own fetch. */
export function makeClient(options: { baseUrl?: string; fetch?: typeof fetch } = {}) {
  const c = createClient<paths>({
    baseUrl: options.baseUrl ?? (typeof window !== 'undefined' ? window.location.origin : ''),
    // Late-bound, so that a test's stub (or a polyfill) is the one called.
    fetch: options.fetch ?? ((input: Request) => globalThis.fetch(input)),
  });
  c.use(auth);
  return c;
}

export const api = makeClient();

/**
 * ok returns a call's data, or throws a ProblemError with what the API
 * said. A network failure becomes a problem too, so every view shows one
 * kind of error.
 */
export async function ok<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (e) {
    throw new ProblemError(0, { title: 'The API could not be reached', detail: e instanceof Error ? e.message : String(e) });
  }
  const { data, error, response } = result;
  if (!response.ok) throw new ProblemError(response.status, toProblem(response.status, error));
  return data as T;
}

/** fieldErrors maps problem locations (body.spec.steps[0].config.x) to messages. */
export function fieldErrors(p: Problem | undefined): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const e of p?.errors ?? []) {
    const loc = e.location ?? '';
    const list = m.get(loc) ?? [];
    list.push(e.message ?? 'invalid');
    m.set(loc, list);
  }
  return m;
}

/** SSEEvent is one parsed Server-Sent Event. */
export interface SSEEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * parseSSE splits a text/event-stream into events. It is fed chunks as they
 * arrive and keeps the partial tail for the next call.
 */
export function createSSEParser(onEvent: (e: SSEEvent) => void) {
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
  let id: string | undefined;
  return (chunk: string) => {
    buffer += chunk;
    for (;;) {
      const nl = buffer.search(/\r\n|\n|\r/);
      if (nl < 0) break;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? nl + 2 : nl + 1);
      if (line === '') {
        if (data.length > 0) onEvent({ event, data: data.join('\n'), id });
        event = 'message';
        data = [];
        id = undefined;
        continue;
      }
      if (line.startsWith(':')) continue; // a keep-alive comment
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
  };
}

/**
 * stream opens an authenticated Server-Sent Events stream with fetch (an
 * EventSource cannot send the Authorization header) and calls onEvent for
 * each event until it ends or signal aborts.
 */
export async function stream(
  path: string,
  onEvent: (e: SSEEvent) => void,
  signal: AbortSignal,
  fetchImpl: typeof fetch = (...args) => globalThis.fetch(...args),
): Promise<void> {
  const key = loadKey();
  const res = await fetchImpl(path, {
    headers: { Accept: 'text/event-stream', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    signal,
  });
  if (!res.ok || !res.body) {
    let body: unknown = undefined;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    throw new ProblemError(res.status, toProblem(res.status, body));
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const feed = createSSEParser(onEvent);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    feed(value);
  }
}
