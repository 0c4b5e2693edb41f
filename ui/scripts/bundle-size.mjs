// Measures what a first visit to the admin UI downloads: the files
// dist/app/index.html loads (entry script, modulepreloads, stylesheets),
// gzipped as the server sends them, and fails above the budget. Lazily
// loaded views (charts, editor, forms) are listed apart.
import { readFileSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUDGET_BYTES = 350 * 1024;

export function firstLoadFiles(html) {
  const refs = new Set();
  for (const m of html.matchAll(/(?:src|href)="\/ui\/(assets\/[^"]+\.(?:js|css))"/g)) refs.add(m[1]);
  return [...refs];
}

export function measure(appDir) {
  const html = readFileSync(join(appDir, 'index.html'));
  const gz = (b) => gzipSync(b, { level: 9 }).length;
  const first = firstLoadFiles(html.toString());
  const files = first.map((f) => ({ file: f, gzip: gz(readFileSync(join(appDir, f))) }));
  const total = files.reduce((n, f) => n + f.gzip, gz(html));
  const lazy = readdirSync(join(appDir, 'assets'))
    .map((f) => `assets/${f}`)
    .filter((f) => !first.includes(f) && /\.(js|css)$/.test(f))
    .map((f) => ({ file: f, gzip: gz(readFileSync(join(appDir, f))) }));
  return { total, files, lazy };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const appDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'app');
  const { total, files, lazy } = measure(appDir);
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  for (const f of files) console.log(`first load  ${kb(f.gzip).padStart(9)}  ${f.file}`);
  for (const f of lazy) console.log(`lazy        ${kb(f.gzip).padStart(9)}  ${f.file}`);
  console.log(`first load total (gzip): ${kb(total)} of a ${kb(BUDGET_BYTES)} budget`);
  if (total > BUDGET_BYTES) {
    console.error('the first load is over budget: code-split the view that grew');
    process.exit(1);
  }
}
