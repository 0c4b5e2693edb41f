// SchemaDoc renders a connector's JSON Schema as documentation: each
// property with its type, whether it is required, its default, allowed
// values and description, nested objects and arrays indented.
type JSONSchema = {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JSONSchema>;
  required?: string[];
  items?: JSONSchema;
  enum?: unknown[];
  default?: unknown;
  oneOf?: JSONSchema[];
  anyOf?: JSONSchema[];
  $ref?: string;
  $defs?: Record<string, JSONSchema>;
  additionalProperties?: boolean | JSONSchema;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
};

/** typeLabel is how a schema's type reads in the docs. */
export function typeLabel(s: JSONSchema | undefined): string {
  if (!s) return 'any';
  if (s.$ref) return s.$ref.split('/').pop() ?? 'object';
  if (s.oneOf || s.anyOf) return (s.oneOf ?? s.anyOf ?? []).map(typeLabel).join(' | ');
  const t = Array.isArray(s.type) ? s.type.filter((x) => x !== 'null').join(' | ') : s.type;
  if (t === 'array') return `array of ${typeLabel(s.items)}`;
  if (!t && s.properties) return 'object';
  if (!t && typeof s.additionalProperties === 'object') return `map of ${typeLabel(s.additionalProperties)}`;
  if (t === 'object' && !s.properties && typeof s.additionalProperties === 'object') return `map of ${typeLabel(s.additionalProperties)}`;
  return t ?? 'any';
}

export function SchemaDoc({ schema, depth = 0 }: { schema: unknown; depth?: number }) {
  const s = (schema ?? {}) as JSONSchema;
  const props = s.properties ?? (s.items && s.items.properties ? s.items.properties : undefined);
  const required = new Set(s.required ?? s.items?.required ?? []);
  if (!props || Object.keys(props).length === 0) {
    return depth === 0 ? <p className="text-sm text-slate-500">This connector takes no configuration.</p> : null;
  }
  return (
    <dl className={depth > 0 ? 'mt-1 border-l border-slate-200 pl-3' : 'space-y-2'}>
      {Object.entries(props).map(([name, p]) => (
        <div key={name} className="py-1">
          <dt className="text-sm">
            <code className="font-semibold">{name}</code> <span className="text-xs text-slate-500">{typeLabel(p)}</span>
            {required.has(name) && <span className="ml-1 rounded bg-slate-200 px-1 text-xs">required</span>}
          </dt>
          <dd className="text-sm text-slate-700">
            {p.description && <p>{p.description}</p>}
            {p.enum && (
              <p className="text-xs">
                One of: {p.enum.map((v) => <code key={String(v)} className="mr-1">{JSON.stringify(v)}</code>)}
              </p>
            )}
            {p.default !== undefined && (
              <p className="text-xs">
                Default: <code>{JSON.stringify(p.default)}</code>
              </p>
            )}
            {depth < 4 && <SchemaDoc schema={p.type === 'array' || p.items ? p.items : p} depth={depth + 1} />}
          </dd>
        </div>
      ))}
    </dl>
  );
}
