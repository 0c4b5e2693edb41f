// The API reference's first page, rendered at build time from the OpenAPI
// document (scripts/render-docs.mjs).
import { describe, expect, it } from 'vitest';
import { markdown, renderReference, typeOf } from '../../scripts/render-docs.mjs';
import openapi from '../../openapi.json';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const doc: any = openapi;

function page(html: string): Document {
  return new DOMParser().parseFromString(html, 'text/html');
}

describe('the rendered API reference', () => {
  const html = renderReference(doc, { styles: ['/docs/assets/reference-0123456789.css'] });
  const d = page(html);

  it('lists every operation with its parameters, body and responses, and every schema', () => {
    const ops: { id: string; method: string; path: string; op: Record<string, any> }[] = [];
    for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<Record<string, any>>(item)) ops.push({ id: op.operationId, method, path, op });
    }
    expect(ops.length).toBeGreaterThan(30);
    for (const { id, method, path, op } of ops) {
      const article = d.querySelector(`article.op[data-operation="${id}"]`);
      expect(article, id).not.toBeNull();
      expect(article!.querySelector('.route')!.textContent).toContain(`${method.toUpperCase()} ${path}`);
      for (const p of op.parameters ?? []) expect(article!.querySelector('.params')!.textContent, `${id} ${p.name}`).toContain(p.name);
      if (op.requestBody) expect(article!.textContent).toContain('Request body');
      for (const status of Object.keys(op.responses)) expect([...article!.querySelectorAll('.responses dt')].map((e) => e.textContent)).toContain(status);
      expect(d.querySelector(`nav a[href="#${article!.id}"]`), id).not.toBeNull();
      expect(article!.querySelector('a.try')!.getAttribute('href')).toBe(`/docs/interactive#/operations/${id}`);
    }
    for (const [name, schema] of Object.entries<Record<string, any>>(doc.components.schemas)) {
      const article = d.getElementById(`schema-${name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-')}`);
      expect(article, name).not.toBeNull();
      for (const field of Object.keys(schema.properties ?? {}).filter((f) => f !== '$schema')) expect(article!.textContent, `${name}.${field}`).toContain(field);
    }
    // Every link to a schema leads somewhere.
    for (const a of d.querySelectorAll('a[href^="#schema-"]')) expect(d.getElementById(a.getAttribute('href')!.slice(1)), a.getAttribute('href')!).not.toBeNull();
  });

  it('has no script and no other origin, and the groups a reader looks for', () => {
    expect(d.querySelectorAll('script')).toHaveLength(0);
    expect(html).not.toMatch(/https?:\/\//);
    expect(d.querySelector('h1')!.textContent).toBe('VRSky API');
    expect([...d.querySelectorAll('nav h2')].map((h) => h.textContent)).toContain('Integrations');
    expect(d.querySelector('link[rel="stylesheet"]')!.getAttribute('href')).toBe('/docs/assets/reference-0123456789.css');
    const metrics = d.querySelector('article.op[data-operation="get-integration-metrics"]')!;
    expect(metrics.textContent).toContain('Bucket width in seconds.');
    expect(metrics.textContent).toContain('≤ 3600');
    expect(metrics.querySelector('.auth')!.textContent).toContain('bearer (read)');
  });

  it('escapes what the document says, and links only to safe URLs', () => {
    const hostile = renderReference({
      openapi: '3.1.0',
      info: { title: '<script>alert(1)</script>', description: 'see [x](javascript:alert(1)) and [docs](/docs) `<b>`' },
      paths: {
        '/v1/<img src=x onerror=alert(1)>': {
          get: { operationId: 'x"><script>', summary: '<b>hi</b>', tags: ['<i>t</i>'], responses: { '200': { description: '**ok**' } },
            parameters: [{ name: '"><svg onload=alert(1)>', in: 'query', schema: { type: 'string', enum: ['</td>'] } }] },
        },
      },
      components: { schemas: { 'A<b>': { type: 'object', properties: { loop: { $ref: '#/components/schemas/A<b>' } } } } },
    });
    const h = page(hostile);
    expect(h.querySelectorAll('script, img, svg, i, b[onload]')).toHaveLength(0);
    expect(h.querySelectorAll('a[href^="javascript"]')).toHaveLength(0);
    expect(h.querySelector('h1')!.textContent).toBe('<script>alert(1)</script>');
    expect(h.querySelector('#overview a[href="/docs"]')!.textContent).toBe('docs');
    expect(h.querySelector('#overview code')!.textContent).toBe('<b>');
    expect(h.querySelector('.responses strong')!.textContent).toBe('ok');
  });

  it('describes types in words', () => {
    expect(typeOf({ type: ['array', 'null'], items: { $ref: '#/components/schemas/Point' } })).toBe('array of <a href="#schema-point">Point</a> | null');
    expect(typeOf({ type: 'object', additionalProperties: { type: 'string' } })).toBe('map of string');
    expect(typeOf({ type: 'string', format: 'date-time' })).toContain('(date-time)');
    expect(typeOf({ oneOf: [{ type: 'string' }, { type: 'integer' }] })).toBe('string | integer');
    expect(typeOf(undefined)).toBe('any');
    expect(markdown('a\n\n- one\n- two')).toBe('<p>a</p><ul><li>one</li><li>two</li></ul>');
  });
});
