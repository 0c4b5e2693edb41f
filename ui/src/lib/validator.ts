// A react-jsonschema-form validator on @cfworker/json-schema, which
// interprets schemas instead of compiling them to code: the UI's
// Content-Security-Policy allows no eval, which AJV needs. The API checks
// every spec again (and better: expressions, secrets, names); this only
// catches shape mistakes in the form.
import { Validator, type Schema } from '@cfworker/json-schema';
import {
  createErrorHandler,
  toErrorSchema,
  unwrapErrorHandler,
  validationDataMerge,
  type CustomValidator,
  type ErrorSchema,
  type ErrorTransformer,
  type RJSFSchema,
  type RJSFValidationError,
  type UiSchema,
  type ValidatorType,
} from '@rjsf/utils';

// Wrapper keywords whose failure is reported again by the keyword that failed inside.
const wrappers = new Set(['properties', 'items', '$ref', 'allOf', 'prefixItems', 'additionalProperties', 'unevaluatedProperties', 'dependentSchemas']);

const cache = new WeakMap<object, Map<object | undefined, Validator>>();

function compile(schema: RJSFSchema, root?: RJSFSchema): Validator {
  let byRoot = cache.get(schema);
  if (!byRoot) {
    byRoot = new Map();
    cache.set(schema, byRoot);
  }
  let v = byRoot.get(root);
  if (!v) {
    // A sub-schema's $refs point into the root's $defs.
    const withDefs = root && root !== schema && (root as Record<string, unknown>).$defs ? { ...schema, $defs: (root as Record<string, unknown>).$defs } : schema;
    v = new Validator(withDefs as Schema, '2020-12', false);
    byRoot.set(root, v);
  }
  return v;
}

/** pointerToProperty turns "#/routes/0/when" into ".routes.0.when". */
export function pointerToProperty(pointer: string): string {
  const parts = pointer
    .replace(/^#/, '')
    .split('/')
    .filter((p) => p !== '')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.length === 0 ? '.' : '.' + parts.join('.');
}

/** errorsOf validates data against schema and returns rjsf's error list. */
export function errorsOf(schema: RJSFSchema, data: unknown, root?: RJSFSchema): RJSFValidationError[] {
  const result = compile(schema, root).validate(data);
  if (result.valid) return [];
  const seen = new Set<string>();
  const out: RJSFValidationError[] = [];
  for (const e of result.errors) {
    if (wrappers.has(e.keyword)) continue;
    const property = pointerToProperty(e.instanceLocation);
    const message = e.error.replace(/^Instance(?: at "[^"]*")? /, '');
    const key = `${property}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name: e.keyword, property, message, stack: `${property} ${message}`.trim(), schemaPath: e.keywordLocation });
  }
  return out;
}

export const validator: ValidatorType = {
  validateFormData(
    formData: unknown,
    schema: RJSFSchema,
    customValidate?: CustomValidator,
    transformErrors?: ErrorTransformer,
    uiSchema?: UiSchema,
  ) {
    let errors = errorsOf(schema, formData ?? {});
    if (transformErrors) errors = transformErrors(errors, uiSchema);
    let data = { errors, errorSchema: toErrorSchema(errors) as ErrorSchema };
    if (customValidate) {
      const handler = customValidate(formData, createErrorHandler(formData), uiSchema);
      data = validationDataMerge(data, unwrapErrorHandler(handler));
    }
    return data;
  },
  isValid(schema: RJSFSchema, formData: unknown, rootSchema: RJSFSchema) {
    try {
      return compile(schema, rootSchema).validate(formData).valid;
    } catch {
      return false;
    }
  },
  rawValidation(schema: RJSFSchema, formData?: unknown) {
    try {
      return { errors: errorsOf(schema, formData) as never[] };
    } catch (e) {
      return { validationError: e as Error };
    }
  },
};
