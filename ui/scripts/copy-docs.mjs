// Builds the API reference into dist/docs, which the binary embeds and
// serves: /docs is a page rendered here from the OpenAPI document
// (openapi.json, the snapshot the API's tests keep current) that lists
// every operation and schema without any script (render-docs.mjs);
// /docs/interactive is Stoplight Elements' page with "try it", installed
// from npm (never a CDN) and loaded only when asked for.
//
// The assets go under dist/docs/assets/ with a content hash in their names,
// so the server can let browsers keep them for a year; the pages are
// rewritten to load them. Every compressible file of dist/ over 1 KiB also
// gets a gzipped copy (NAME.gz) made here once, so that the server never
// compresses Elements' 2 MB script while a browser waits for it.
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReference } from './render-docs.mjs';

/** hashedName puts a short content hash before a file's extensions: styles.min.css -> styles.min-1a2b3c4d.css. */
export function hashedName(file, body) {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
  const ext = extname(file);
  return `${basename(file, ext)}-${hash}${ext}`;
}

/** rewrite points the page's references at the hashed names. */
export function rewrite(html, names) {
  let out = html;
  for (const [from, to] of Object.entries(names)) out = out.split(`/docs/${from}"`).join(`/docs/assets/${to}"`);
  return out;
}

const compressible = /\.(js|mjs|css|html|json|svg|txt|map)$/;

/** precompress writes NAME.gz next to every compressible file over 1 KiB under dir. */
export function precompress(dir) {
  let n = 0;
  for (const entry of readdirSync(dir, { recursive: true })) {
    const p = join(dir, String(entry));
    if (!compressible.test(p) || !statSync(p).isFile()) continue;
    const body = readFileSync(p);
    if (body.length <= 1024) continue;
    writeFileSync(`${p}.gz`, gzipSync(body, { level: 9 }));
    n++;
  }
  return n;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const out = join(root, 'dist', 'docs');
  const elements = join(root, 'node_modules', '@stoplight', 'elements');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'assets'), { recursive: true });
  const names = {};
  for (const [from, src] of [
    ['web-components.min.js', join(elements, 'web-components.min.js')],
    ['styles.min.css', join(elements, 'styles.min.css')],
    ['docs.css', join(root, 'docs', 'docs.css')],
    ['reference.css', join(root, 'docs', 'reference.css')],
  ]) {
    const body = readFileSync(src);
    names[from] = hashedName(from, body);
    writeFileSync(join(out, 'assets', names[from]), body);
  }
  cpSync(join(elements, 'LICENSE'), join(out, 'LICENSE'));
  const interactive = rewrite(readFileSync(join(root, 'docs', 'interactive.html'), 'utf8'), names);
  for (const from of ['web-components.min.js', 'styles.min.css', 'docs.css']) {
    if (!interactive.includes(`/docs/assets/${names[from]}"`)) throw new Error(`docs/interactive.html does not load /docs/${from}`);
  }
  writeFileSync(join(out, 'interactive.html'), interactive);
  const doc = JSON.parse(readFileSync(join(root, 'openapi.json'), 'utf8'));
  writeFileSync(join(out, 'index.html'), renderReference(doc, { styles: [`/docs/assets/${names['reference.css']}`] }));
  const n = precompress(join(root, 'dist'));
  console.log(`copied the API reference to dist/docs; gzipped ${n} files of dist/`);
}
