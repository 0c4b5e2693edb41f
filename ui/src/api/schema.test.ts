// The generated client types must be what openapi-typescript makes of the
// committed ui/openapi.json (itself checked against the Go code by
// ui/openapi_test.go): regenerate with `npm run gen`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..', '..');

describe('the generated API types', () => {
  it('are current with openapi.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vrsky-schema-'));
    try {
      const out = join(dir, 'schema.d.ts');
      execFileSync(process.execPath, [join(root, 'node_modules', 'openapi-typescript', 'bin', 'cli.js'), join(root, 'openapi.json'), '-o', out], { stdio: 'pipe' });
      const fresh = readFileSync(out, 'utf8');
      const committed = readFileSync(join(root, 'src', 'api', 'schema.d.ts'), 'utf8');
      expect(committed === fresh, 'src/api/schema.d.ts is stale: run `npm run gen` in ui/').toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
