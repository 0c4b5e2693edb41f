// The wizard's YAML tab: a spec to YAML and back, the same shape the CLI
// and `vrsky apply` read.
import { parseDocument, stringify } from 'yaml';

export function specToYaml(spec: unknown): string {
  return stringify(spec, { lineWidth: 0 });
}

export type Parsed = { ok: true; spec: Record<string, unknown> } | { ok: false; error: string };

/** yamlToSpec parses YAML text; anything but one mapping is an error with its line. */
export function yamlToSpec(text: string): Parsed {
  if (text.length > 1 << 20) return { ok: false, error: 'The YAML is over 1 MiB.' };
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : '';
    return { ok: false, error: `${where}${e.message.split('\n')[0]}` };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // The yaml library refuses alias bombs here.
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return { ok: false, error: 'The spec must be a mapping (name, consumer, steps, producers).' };
  return { ok: true, spec: value as Record<string, unknown> };
}
