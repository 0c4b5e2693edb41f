// ConfigForm is a connector's settings form, generated from its JSON Schema
// with react-jsonschema-form. Secret references ({"secret": NAME}) are
// picked from the tenant's secret names rather than typed; errors the API
// reported for this connector are shown on their field.
import { createContext, useContext, useMemo } from 'react';
// The package's index also loads a test registry that needs AJV (which
// compiles with eval); the Form alone does not.
import Form from '@rjsf/core/lib/components/Form.js';
import type { FieldProps, RJSFSchema, UiSchema } from '@rjsf/utils';
import { validator } from '../lib/validator';
import type { ErrorTree } from '../lib/locations';
import { inputClass } from './ui';

/** SecretNames carries the tenant's secret names to the secret pickers. */
export const SecretNames = createContext<string[]>([]);

type Schema = Record<string, unknown> & { properties?: Record<string, Schema>; items?: Schema; $ref?: string; $defs?: Record<string, Schema> };

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

/** secretUiSchema marks every secret reference in a schema with the secret picker. */
export function secretUiSchema(schema: Schema, defs: Record<string, Schema> = schema.$defs ?? {}, depth = 0): UiSchema {
  const ui: UiSchema = {};
  if (depth > 6) return ui;
  const resolve = (s: Schema): Schema => (typeof s.$ref === 'string' ? (defs[s.$ref.split('/').pop() ?? ''] ?? s) : s);
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (isSecretRef(prop, defs)) {
      ui[name] = { 'ui:field': 'secretRef' };
      continue;
    }
    const r = resolve(prop);
    if (r.properties) {
      const inner = secretUiSchema(r, defs, depth + 1);
      if (Object.keys(inner).length > 0) ui[name] = inner;
    } else if (r.items) {
      const item = resolve(r.items);
      if (item.properties) {
        const inner = secretUiSchema(item, defs, depth + 1);
        if (Object.keys(inner).length > 0) ui[name] = { items: inner };
      }
    }
  }
  return ui;
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
          <option value="">{names.length === 0 ? '— no secrets yet: store one under Secrets —' : '— choose a secret —'}</option>
          {names.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
          {value.secret && !names.includes(value.secret) && <option value={value.secret}>{value.secret} (not stored yet)</option>}
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

const fields = { secretRef: SecretField };

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
