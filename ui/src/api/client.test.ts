import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, createSSEParser, fieldErrors, ok, ProblemError, stream, toProblem, type SSEEvent } from './client';
import { saveKey } from './session';
import { fakeApi } from '../test/fakeApi';

afterEach(() => vi.unstubAllGlobals());

describe('the client wrapper', () => {
  it('sends the session key as a bearer token and returns the data', async () => {
    const { seen } = fakeApi({ 'GET /v1/api-keys': () => ({ body: { items: [{ id: 'key-1', tenant_id: 'acme', prefix: 'vrsky_abc', scopes: ['read'], created_at: '2026-12-06T10:00:00Z' }] } }) });
    saveKey('vrsky_' + 'a'.repeat(64));
    const out = await ok(api.GET('/v1/api-keys'));
    expect(out.items?.[0].tenant_id).toBe('acme');
    expect(seen[0].auth).toBe('Bearer vrsky_' + 'a'.repeat(64));
  });

  it('sends no Authorization header when nobody is signed in', async () => {
    const { seen } = fakeApi({ 'GET /v1/api-keys': () => ({ body: { items: [] } }) });
    await ok(api.GET('/v1/api-keys'));
    expect(seen[0].auth).toBeNull();
  });

  it('turns a problem detail into a ProblemError with its located errors', async () => {
    fakeApi({
      'POST /v1/integrations': () => ({
        status: 422,
        body: { title: 'Unprocessable Entity', status: 422, detail: 'the spec has 1 problem(s)', errors: [{ location: 'body.steps[0].config', message: 'bad expression' }] },
      }),
    });
    const err = await ok(api.POST('/v1/integrations', { body: { name: 'x', consumer: { connector: 'http-webhook' }, producers: {} } })).catch((e) => e);
    expect(err).toBeInstanceOf(ProblemError);
    expect(err.status).toBe(422);
    expect(err.message).toBe('Unprocessable Entity: the spec has 1 problem(s)');
    expect(fieldErrors(err.problem).get('body.steps[0].config')).toEqual(['bad expression']);
  });

  it('reports a network failure as a problem', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))));
    const err = await ok(api.GET('/v1/secrets')).catch((e) => e);
    expect(err).toBeInstanceOf(ProblemError);
    expect(err.status).toBe(0);
    expect(err.problem.title).toBe('The API could not be reached');
  });

  it('reads hostile or odd error bodies without trusting their shape', () => {
    expect(toProblem(500, null)).toEqual({ status: 500, title: 'HTTP 500' });
    expect(toProblem(502, 'x'.repeat(5000)).detail).toHaveLength(500);
    const p = toProblem(422, { title: 7, errors: [null, 'str', { location: 5, message: 'm' }], detail: { html: '<b>' } });
    expect(p.title).toBeUndefined();
    expect(p.detail).toBeUndefined();
    expect(p.errors).toEqual([{ message: 'm', location: undefined, value: undefined }]);
  });
});

describe('the Server-Sent Events reader', () => {
  it('parses events split across chunks, skipping comments', () => {
    const got: SSEEvent[] = [];
    const feed = createSSEParser((e) => got.push(e));
    feed(': keep-alive\n\nevent: mess');
    feed('age\ndata: {"id":"1",\r\ndata: "stage":"in"}\n');
    expect(got).toHaveLength(0);
    feed('\nid: 7\ndata: plain\n\n');
    expect(got).toEqual([
      { event: 'message', data: '{"id":"1",\n"stage":"in"}', id: undefined },
      { event: 'message', data: 'plain', id: '7' },
    ]);
  });

  it('streams from a response body with the key and stops at its end', async () => {
    saveKey('vrsky_' + 'b'.repeat(64));
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        const enc = new TextEncoder();
        c.enqueue(enc.encode('event: message\ndata: {"id":"m1"}\n\n'));
        c.enqueue(enc.encode('event: message\ndata: {"id":"m2"}\n\n'));
        c.close();
      },
    });
    const fetchImpl = vi.fn(async () => new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }));
    const got: string[] = [];
    await stream('/v1/integrations/x/inspect?stage=in', (e) => got.push(e.data), new AbortController().signal, fetchImpl as unknown as typeof fetch);
    expect(got).toEqual(['{"id":"m1"}', '{"id":"m2"}']);
    const init = (fetchImpl.mock.calls[0] as unknown[])[1] as RequestInit;
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer vrsky_' + 'b'.repeat(64));
  });

  it('throws the problem when the stream is refused', async () => {
    const fetchImpl = vi.fn(async () => new Response(JSON.stringify({ title: 'Forbidden', status: 403, detail: 'needs scope dlq' }), { status: 403 }));
    const err = await stream('/x', () => {}, new AbortController().signal, fetchImpl as unknown as typeof fetch).catch((e) => e);
    expect(err).toBeInstanceOf(ProblemError);
    expect(err.message).toBe('Forbidden: needs scope dlq');
  });
});
