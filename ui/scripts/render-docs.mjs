// Renders the API reference's first page from the OpenAPI document at
// build time: every operation (grouped by tag, with its parameters,
// request body, responses and scopes) and every schema, as plain HTML with
// no script, so that /docs lists the operations as soon as the page
// arrives. The interactive reference (Stoplight Elements, with "try it")
// is a second page, /docs/interactive, loaded only when asked for.
//
// Everything taken from the document is HTML-escaped; descriptions get a
// small Markdown subset (paragraphs, `code`, **bold**, links to http(s) or
// relative URLs).

const methods = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];

/** escapeHTML makes text safe inside an element or a quoted attribute. */
export function escapeHTML(s) {
  return String(s ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** slug is an anchor-safe form of a name. */
export function slug(s) {
  return String(s).toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
}

/** markdown renders a description's Markdown subset as HTML, escaping everything else. */
export function markdown(text) {
  if (!text) return '';
  const inline = (s) => {
    // Code spans first, so nothing inside them is formatted.
    const parts = escapeHTML(s).split(/`([^`]*)`/);
    return parts
      .map((p, i) => {
        if (i % 2 === 1) return `<code>${p}</code>`;
        return p
          .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
          .replace(/\[([^\]]+)\]\(((?:https?:\/\/|\/|#)[^)\s]*)\)/g, (_, label, href) => `<a href="${href}">${label}</a>`);
      })
      .join('');
  };
  return String(text)
    .split(/\n\s*\n/)
    .map((para) => {
      const lines = para.split('\n');
      if (lines.every((l) => /^\s*[-*] /.test(l))) return `<ul>${lines.map((l) => `<li>${inline(l.replace(/^\s*[-*] /, ''))}</li>`).join('')}</ul>`;
      return `<p>${inline(para)}</p>`;
    })
    .join('');
}

/** refName is the schema name a local $ref points at, or null. */
function refName(ref) {
  const m = /^#\/components\/schemas\/(.+)$/.exec(ref ?? '');
  return m ? decodeURIComponent(m[1]) : null;
}

function schemaLink(name) {
  return `<a href="#schema-${slug(name)}">${escapeHTML(name)}</a>`;
}

/** typeOf describes a schema's type in a few words, linking to named schemas. */
export function typeOf(s, depth = 0) {
  if (!s || typeof s !== 'object' || depth > 8) return 'any';
  if (s.$ref) {
    const name = refName(s.$ref);
    return name ? schemaLink(name) : escapeHTML(s.$ref);
  }
  for (const [key, sep] of [['oneOf', ' | '], ['anyOf', ' | '], ['allOf', ' &amp; ']]) {
    if (Array.isArray(s[key])) return s[key].map((x) => typeOf(x, depth + 1)).join(sep);
  }
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  const one = (t) => {
    if (t === 'array') return `array of ${typeOf(s.items, depth + 1)}`;
    if (t === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties) return `map of ${typeOf(s.additionalProperties, depth + 1)}`;
    return escapeHTML(t) + (s.format ? ` <span class="fmt">(${escapeHTML(s.format)})</span>` : '');
  };
  if (types.length === 0) return s.properties ? 'object' : 'any';
  return types.map(one).join(' | ');
}

/** constraints lists a schema's enum, default, bounds and pattern. */
function constraints(s) {
  if (!s || typeof s !== 'object') return '';
  const c = [];
  if (Array.isArray(s.enum)) c.push(`one of: ${s.enum.map((v) => `<code>${escapeHTML(JSON.stringify(v))}</code>`).join(', ')}`);
  if (s.default !== undefined) c.push(`default <code>${escapeHTML(JSON.stringify(s.default))}</code>`);
  for (const [k, label] of [['minimum', '≥'], ['maximum', '≤'], ['exclusiveMinimum', '>'], ['exclusiveMaximum', '<']]) {
    if (typeof s[k] === 'number') c.push(`${label} ${s[k]}`);
  }
  for (const [k, label] of [['minLength', 'min length'], ['maxLength', 'max length'], ['minItems', 'min items'], ['maxItems', 'max items']]) {
    if (typeof s[k] === 'number') c.push(`${label} ${s[k]}`);
  }
  if (s.pattern) c.push(`pattern <code>${escapeHTML(s.pattern)}</code>`);
  if (s.readOnly) c.push('read-only');
  return c.length ? `<div class="cons">${c.join('; ')}</div>` : '';
}

/** properties renders an object schema's properties as a table, nested objects inline. */
export function properties(s, depth = 0) {
  if (!s || typeof s !== 'object' || !s.properties || depth > 6) return '';
  const required = new Set(s.required ?? []);
  const rows = Object.entries(s.properties)
    .filter(([name]) => name !== '$schema')
    .map(([name, p]) => {
      const nested = p && !p.$ref && p.properties ? properties(p, depth + 1) : p?.items && !p.items.$ref && p.items.properties ? properties(p.items, depth + 1) : '';
      return `<tr><td><code>${escapeHTML(name)}</code>${required.has(name) ? ' <span class="req">required</span>' : ''}</td><td>${typeOf(p)}</td><td>${markdown(p?.description)}${constraints(p)}${nested}</td></tr>`;
    })
    .join('');
  return `<table class="props"><thead><tr><th>field</th><th>type</th><th>description</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** schemaBlock renders a schema used by an operation: a link to a named one, or its shape inline. */
function schemaBlock(s) {
  if (!s) return '';
  if (s.$ref) return `<p>${typeOf(s)}</p>`;
  return `<p>${typeOf(s)}</p>${constraints(s)}${properties(s)}${s.items && !s.items.$ref ? properties(s.items) : ''}`;
}

function operationsOf(doc) {
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of methods) {
      const op = item?.[method];
      if (!op) continue;
      ops.push({ path, method, op, id: op.operationId ?? `${method}-${path}`, params: [...(item.parameters ?? []), ...(op.parameters ?? [])] });
    }
  }
  return ops;
}

function operation({ path, method, op, id, params }) {
  const parts = [];
  parts.push(`<article class="op" id="${escapeHTML(slug(id))}" data-operation="${escapeHTML(id)}">`);
  parts.push(`<h3>${escapeHTML(op.summary ?? id)}</h3>`);
  parts.push(
    `<p class="route"><span class="method ${escapeHTML(method)}">${method.toUpperCase()}</span> <code>${escapeHTML(path)}</code>` +
      ` <a class="try" href="/docs/interactive#/operations/${encodeURIComponent(id)}">Try it</a></p>`,
  );
  if (op.deprecated) parts.push('<p class="deprecated">Deprecated.</p>');
  parts.push(markdown(op.description));
  const security = op.security ?? [];
  const scopes = security.flatMap((req) => Object.entries(req).map(([scheme, s]) => `${escapeHTML(scheme)}${s.length ? ` (${s.map(escapeHTML).join(', ')})` : ''}`));
  parts.push(`<p class="auth">Authorization: ${security.length === 0 ? 'none' : scopes.join(' or ')}</p>`);
  if (params.length > 0) {
    parts.push('<h4>Parameters</h4><table class="params"><thead><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr></thead><tbody>');
    for (const p of params) {
      parts.push(
        `<tr><td><code>${escapeHTML(p.name)}</code>${p.required ? ' <span class="req">required</span>' : ''}</td><td>${escapeHTML(p.in)}</td>` +
          `<td>${typeOf(p.schema)}</td><td>${markdown(p.description)}${constraints(p.schema)}</td></tr>`,
      );
    }
    parts.push('</tbody></table>');
  }
  const body = op.requestBody;
  if (body) {
    parts.push(`<h4>Request body${body.required ? ' <span class="req">required</span>' : ''}</h4>${markdown(body.description)}`);
    for (const [type, media] of Object.entries(body.content ?? {})) parts.push(`<p class="media">${escapeHTML(type)}</p>${schemaBlock(media.schema)}`);
  }
  parts.push('<h4>Responses</h4><dl class="responses">');
  for (const [status, r] of Object.entries(op.responses ?? {})) {
    parts.push(`<dt>${escapeHTML(status)}</dt><dd>${markdown(r.description)}`);
    const headers = Object.entries(r.headers ?? {});
    if (headers.length) parts.push(`<p>Headers: ${headers.map(([h, v]) => `<code>${escapeHTML(h)}</code> ${typeOf(v.schema)}`).join(', ')}</p>`);
    for (const [type, media] of Object.entries(r.content ?? {})) parts.push(`<p class="media">${escapeHTML(type)}</p>${schemaBlock(media.schema)}`);
    parts.push('</dd>');
  }
  parts.push('</dl></article>');
  return parts.join('');
}

/**
 * renderReference returns the whole reference page for doc. styles are
 * the stylesheet URLs it links (hashed by the build).
 */
export function renderReference(doc, { styles = [] } = {}) {
  const ops = operationsOf(doc);
  const groups = new Map();
  for (const o of ops) {
    const tag = o.op.tags?.[0] ?? 'Other';
    if (!groups.has(tag)) groups.set(tag, []);
    groups.get(tag).push(o);
  }
  const schemas = Object.entries(doc.components?.schemas ?? {});
  const title = doc.info?.title ?? 'API';
  const nav = [];
  const main = [];
  for (const [tag, list] of groups) {
    nav.push(`<h2>${escapeHTML(tag)}</h2><ul>`);
    for (const o of list) nav.push(`<li><a href="#${escapeHTML(slug(o.id))}"><span class="method ${o.method}">${o.method.toUpperCase()}</span> ${escapeHTML(o.op.summary ?? o.id)}</a></li>`);
    nav.push('</ul>');
    main.push(`<section id="tag-${escapeHTML(slug(tag))}"><h2>${escapeHTML(tag)}</h2>${list.map(operation).join('')}</section>`);
  }
  if (schemas.length) {
    nav.push('<h2>Schemas</h2><ul>');
    for (const [name] of schemas) nav.push(`<li><a href="#schema-${escapeHTML(slug(name))}">${escapeHTML(name)}</a></li>`);
    nav.push('</ul>');
    main.push('<section id="schemas"><h2>Schemas</h2>');
    for (const [name, s] of schemas) {
      main.push(`<article class="schema" id="schema-${escapeHTML(slug(name))}"><h3>${escapeHTML(name)}</h3>${markdown(s.description)}<p>${typeOf({ ...s, $ref: undefined })}</p>${constraints(s)}${properties(s)}</article>`);
    }
    main.push('</section>');
  }
  const auth = Object.entries(doc.components?.securitySchemes ?? {})
    .map(([name, s]) => `<p><strong>${escapeHTML(name)}</strong>: ${markdown(s.description)}</p>`)
    .join('');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="referrer" content="no-referrer">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${escapeHTML(title)} reference</title>
${styles.map((href) => `    <link rel="stylesheet" href="${escapeHTML(href)}">`).join('\n')}
  </head>
  <body>
    <header class="top">
      <h1>${escapeHTML(title)}</h1>
      <p class="links"><a href="/docs/interactive">Interactive reference (try requests)</a> · <a href="/openapi.json">OpenAPI document</a></p>
    </header>
    <div class="layout">
      <nav class="sidebar" aria-label="Operations">${nav.join('')}</nav>
      <main>
        <section id="overview">${markdown(doc.info?.description)}${auth}</section>
        ${main.join('\n')}
      </main>
    </div>
  </body>
</html>
`;
}
