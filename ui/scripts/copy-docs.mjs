// Copies the API reference page and Stoplight Elements' prebuilt assets
// (installed from npm, never a CDN) into dist/docs, which the binary embeds
// and serves at /docs.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'docs');
const elements = join(root, 'node_modules', '@stoplight', 'elements');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(root, 'docs', 'index.html'), join(out, 'index.html'));
cpSync(join(root, 'docs', 'docs.css'), join(out, 'docs.css'));
for (const f of ['web-components.min.js', 'styles.min.css', 'LICENSE']) {
  cpSync(join(elements, f), join(out, f));
}
console.log('copied the API reference to dist/docs');
