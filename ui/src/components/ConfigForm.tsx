// ConfigForm is a connector's settings form, generated from its JSON Schema
// with react-jsonschema-form. Secret references ({"secret": NAME}) are
// picked from the tenant's secret names rather than typed, wherever the
// schema allows one: a single setting, a list of them, or a map of them
// (the http producer's secretHeaders); errors the API reported for this
// connector are shown on their field.
import { createContext, useContext, useEffect, useMemo, useRef, useState } from 'react';
// The package's index also loads a test registry that needs AJV (which
// compiles with eval); the Form alone does not.
import Form from '@rjsf/core/lib/components/Form.js';
import type { FieldProps, RJSFSchema, UiSchema } from '@rjsf/utils';
import { validator } from '../lib/validator';
import type { ErrorTree } from '../lib/locations';
import { inputClass } from './ui';

/** SecretNames carries the tenant's secret names to the secret pickers. */
export const SecretNames = createContext<string[]>([]);

type Schema = Record<string, unknown> & {
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  $ref?: string;
  $defs?: Record<string, Schema>;
};

/** isSecretRef tells a secret reference: the SDK's Secret type, {env, secret}. */
export function isSecretRef(s: Schema | undefined, defs: Record<string, Schema> = {}): boolean {
  if (!s) return false;
  if (typeof s.$ref === 'string') {
    const name = s.$ref.split('/').pop() ?? '';
    if (name === 'Secret') return true;
    return isSecretRef(defs[name], {});
  }
  const keys = Object.keys(s.properties ?? {}).sort();
  return keys.length === 2 && keys[0] === 'env' && keys[1] === 'secret';
}

/** secretUiSchema marks every secret reference in a schema with a secret picker: single ones, lists and maps of them. */
export function secretUiSchema(schema: Schema, defs: Record<string, Schema> = schema.$defs ?? {}, depth = 0): UiSchema {
  const ui: UiSchema = {};
  if (depth > 6) return ui;
  const resolve = (s: Schema): Schema => (typeof s.$ref === 'string' ? (defs[s.$ref.split('/').pop() ?? ''] ?? s) : s);
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (!prop || typeof prop !== 'object') continue;
    if (isSecretRef(prop, defs)) {
      ui[name] = { 'ui:field': 'secretRef' };
      continue;
    }
    const r = resolve(prop);
    const values = r.additionalProperties;
    if (values && typeof values === 'object' && isSecretRef(values, defs)) {
      ui[name] = { 'ui:field': 'secretMap' };
    } else if (r.properties) {
      const inner = secretUiSchema(r, defs, depth + 1);
      if (Object.keys(inner).length > 0) ui[name] = inner;
    } else if (r.items) {
      if (isSecretRef(r.items, defs)) {
        ui[name] = { items: { 'ui:field': 'secretRef' } };
        continue;
      }
      const item = resolve(r.items);
      if (item.properties) {
        const inner = secretUiSchema(item, defs, depth + 1);
        if (Object.keys(inner).length > 0) ui[name] = { items: inner };
      }
    }
  }
  return ui;
}

type SecretRef = { secret?: string; env?: string };

/** SecretOptions lists the tenant's secret names, and a name the spec uses that is not stored (yet). */
function SecretOptions({ names, current }: { names: string[]; current?: string }) {
  return (
    <>
      <option value="">{names.length === 0 ? '— no secrets yet: store one under Secrets —' : '— choose a secret —'}</option>
      {names.map((n) => (
        <option key={n} value={n}>
          {n}
        </option>
      ))}
      {current && !names.includes(current) && <option value={current}>{current} (not stored yet)</option>}
    </>
  );
}

/** A row of a map of secret references being edited: its key and its reference. */
export interface SecretRow {
  key: string;
  ref: SecretRef;
}

/** secretRows lists a map of secret references as rows, in the map's order. */
export function secretRows(v: unknown): SecretRow[] {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
  return Object.entries(v as Record<string, unknown>).map(([key, ref]) => {
    const r = (ref && typeof ref === 'object' ? ref : {}) as Record<string, unknown>;
    return {
      key,
      ref: {
        ...(typeof r.secret === 'string' ? { secret: r.secret } : {}),
        ...(typeof r.env === 'string' ? { env: r.env } : {}),
      },
    };
  });
}

/**
 * secretMap is the map the rows stand for: rows without a key or a
 * reference are still being filled in and are left out; undefined when
 * nothing is left, so that an empty map is not sent.
 */
export function secretMap(rows: SecretRow[]): Record<string, SecretRef> | undefined {
  const out: Record<string, SecretRef> = {};
  for (const r of rows) {
    const key = r.key.trim();
    if (!key || (!r.ref.secret && !r.ref.env)) continue;
    // Keys come from the user or a pasted spec: never let one reach a prototype.
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    out[key] = r.ref.env ? { env: r.ref.env } : { secret: r.ref.secret };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** SecretMapField edits a map of secret references: a name and a secret picker a row. */
function SecretMapField(props: FieldProps) {
  const names = useContext(SecretNames);
  const label = props.schema.title ?? props.name;
  const id = props.fieldPathId.$id;
  const [rows, setRows] = useState<SecretRow[]>(() => secretRows(props.formData));
  // What this field last sent: a different value came from elsewhere (the
  // YAML tab) and replaces the rows.
  const sent = useRef(JSON.stringify(secretMap(secretRows(props.formData)) ?? {}));
  useEffect(() => {
    const now = JSON.stringify(props.formData ?? {});
    if (now !== sent.current) {
      sent.current = now;
      setRows(secretRows(props.formData));
    }
  }, [props.formData]);
  const update = (next: SecretRow[]) => {
    setRows(next);
    const out = secretMap(next);
    sent.current = JSON.stringify(out ?? {});
    props.onChange(out, props.fieldPathId.path);
  };
  const keys = rows.map((r) => r.key.trim());
  const errors = props.errorSchema?.__errors ?? [];
  return (
    <fieldset className="mb-3 flex flex-col gap-2" data-testid={`secret-map-${props.name}`}>
      <legend className="text-sm font-medium">{label}</legend>
      {props.schema.description && <p className="text-xs text-slate-500">{props.schema.description}</p>}
      {rows.length === 0 && <p className="text-xs text-slate-500">None. Each entry is a name and one of the tenant's secrets.</p>}
      {rows.map((r, i) => {
        const rowErrors = (props.errorSchema?.[r.key] as { __errors?: string[] } | undefined)?.__errors ?? [];
        return (
          <div key={i} className="flex flex-wrap items-start gap-2">
            <label className="flex min-w-32 flex-1 flex-col gap-1 text-xs">
              <span>
                {label} {i + 1}: name
              </span>
              <input
                id={`${id}-${i}-key`}
                className={inputClass}
                value={r.key}
                disabled={props.disabled || props.readonly}
                onChange={(e) => update(rows.map((x, j) => (j === i ? { ...x, key: e.target.value } : x)))}
              />
              {r.key.trim() !== '' && keys.indexOf(r.key.trim()) !== i && (
                <span className="text-red-700" role="alert">
                  {r.key.trim()} is named twice: the last one counts.
                </span>
              )}
            </label>
            <label className="flex min-w-32 flex-1 flex-col gap-1 text-xs">
              <span>
                {label} {i + 1}: secret
              </span>
              {r.ref.env ? (
                <span className="py-1.5">
                  The runner's environment variable <code>{r.ref.env}</code> (set in YAML)
                </span>
              ) : (
                <select
                  id={`${id}-${i}-secret`}
                  className={inputClass}
                  value={r.ref.secret ?? ''}
                  disabled={props.disabled || props.readonly}
                  onChange={(e) => update(rows.map((x, j) => (j === i ? { ...x, ref: e.target.value ? { secret: e.target.value } : {} } : x)))}
                >
                  <SecretOptions names={names} current={r.ref.secret} />
                </select>
              )}
            </label>
            <button
              type="button"
              className="mt-5 rounded border border-slate-300 px-2 py-1 text-xs"
              aria-label={`Remove ${label} ${i + 1}`}
              onClick={() => update(rows.filter((_, j) => j !== i))}
            >
              Remove
            </button>
            {rowErrors.map((e) => (
              <p key={e} className="w-full text-xs text-red-700" role="alert">
                {e}
              </p>
            ))}
          </div>
        );
      })}
      <div>
        <button
          type="button"
          className="rounded border border-slate-300 px-2 py-1 text-xs"
          disabled={props.disabled || props.readonly}
          onClick={() => update([...rows, { key: '', ref: {} }])}
        >
          Add to {label}
        </button>
      </div>
      {errors.map((e) => (
        <p key={e} className="text-xs text-red-700" role="alert">
          {e}
        </p>
      ))}
    </fieldset>
  );
}

function SecretField(props: FieldProps) {
  const names = useContext(SecretNames);
  const value = (props.formData ?? {}) as { secret?: string; env?: string };
  const id = props.fieldPathId.$id;
  const label = props.schema.title ?? props.name;
  const errors = props.errorSchema?.__errors ?? [];
  return (
    <div className="mb-3 flex flex-col gap-1">
      <label htmlFor={id} className="text-sm font-medium">
        {label} {props.required && <span aria-hidden="true">*</span>}
      </label>
      {value.env ? (
        <p className="text-sm">
          Reads the runner's environment variable <code>{value.env}</code> (set in YAML; only names the operator allows resolve).
        </p>
      ) : (
        <select
          id={id}
          className={inputClass}
          value={value.secret ?? ''}
          disabled={props.disabled || props.readonly}
          onChange={(e) => props.onChange(e.target.value ? { secret: e.target.value } : undefined, props.fieldPathId.path)}
        >
          <SecretOptions names={names} current={value.secret} />
        </select>
      )}
      {props.schema.description && <p className="text-xs text-slate-500">{props.schema.description}</p>}
      {errors.map((e) => (
        <p key={e} className="text-xs text-red-700" role="alert">
          {e}
        </p>
      ))}
    </div>
  );
}

const fields = { secretRef: SecretField, secretMap: SecretMapField };

/**
 * pruneEmpty drops the empty objects and unset values a generated form
 * leaves behind for optional nested settings, so that what the user did not
 * fill in is not sent (an empty {"secret": {}} would be refused). Empty
 * lists stay: they can mean something (a router's default: []).
 */
export function pruneEmpty(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(pruneEmpty);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = pruneEmpty(x);
      if (p === undefined || p === null || (typeof p === 'object' && !Array.isArray(p) && Object.keys(p as object).length === 0)) continue;
      out[k] = p;
    }
    return out;
  }
  return v;
}

// Defaults: fill in none the user did not ask for.
const defaultsBehavior = { emptyObjectFields: 'skipEmptyDefaults', arrayMinItems: { populate: 'never' } } as const;

export default function ConfigForm({
  schema,
  value,
  onChange,
  errors,
  idPrefix,
}: {
  schema: unknown;
  value: unknown;
  onChange: (v: unknown) => void;
  errors?: ErrorTree;
  idPrefix: string;
}) {
  const { formSchema, uiSchema } = useMemo(() => {
    const s = { ...((schema ?? {}) as Schema) };
    // The connector's name and summary are shown by the wizard itself.
    delete s.title;
    delete s.description;
    delete s.$schema;
    return { formSchema: s as RJSFSchema, uiSchema: { ...secretUiSchema(s), 'ui:submitButtonOptions': { norender: true } } as UiSchema };
  }, [schema]);
  return (
    <div className="rjsf-form">
      <Form
        schema={formSchema}
        uiSchema={uiSchema}
        formData={value ?? {}}
        validator={validator}
        fields={fields}
        idPrefix={idPrefix}
        extraErrors={errors as never}
        showErrorList={false}
        noHtml5Validate
        experimental_defaultFormStateBehavior={defaultsBehavior}
        onChange={(e) => onChange(pruneEmpty(e.formData))}
      />
    </div>
  );
}
