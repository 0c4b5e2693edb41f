// Where an API validation error belongs in the wizard. The API reports
// spec problems as problem-detail errors whose location is a path into the
// request body: "body.steps[0].config.expression" for create-integration,
// "body.spec.steps[0].config.expression" for the test route.

/** A section is one connector of the spec: "consumer", "steps[0]" or "producers.NAME"; "spec" is the rest. */
export interface Placed {
  section: string;
  /** field of the section: "config", "connector", or "" for the section itself */
  field: string;
  /** path inside the config */
  path: string[];
  message: string;
}

export function placeError(location: string | undefined, message: string): Placed {
  let loc = (location ?? '').replace(/^body(\.spec)?\.?/, '');
  let section = 'spec';
  let m: RegExpMatchArray | null;
  if ((m = loc.match(/^(steps\[\d+\])\.?(.*)$/)) || (m = loc.match(/^(consumer)\.?(.*)$/)) || (m = loc.match(/^(producers\.[^.[\]]+)\.?(.*)$/))) {
    section = m[1];
    loc = m[2];
  } else {
    return { section, field: loc, path: [], message };
  }
  const [field = '', ...rest] = loc.split('.');
  const path = rest.flatMap((p) => p.split(/[[\]]/).filter(Boolean));
  return { section, field, path, message };
}

/** ErrorTree is rjsf's extraErrors shape. */
export type ErrorTree = { __errors?: string[] } & { [key: string]: ErrorTree | string[] | undefined };

/** configErrors builds the extraErrors of one section's config form. */
export function configErrors(placed: Placed[], section: string): ErrorTree | undefined {
  const mine = placed.filter((p) => p.section === section && p.field === 'config' && p.path.length > 0);
  if (mine.length === 0) return undefined;
  const root: ErrorTree = {};
  for (const p of mine) {
    // Errors about the whole config are shown by the wizard above the form.
    if (p.path.length === 0) continue;
    let node = root;
    for (const k of p.path) {
      // A location comes from the server, but never let one reach a prototype.
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') break;
      if (!Object.hasOwn(node, k)) node[k] = {};
      node = node[k] as ErrorTree;
    }
    node.__errors = [...(node.__errors ?? []), p.message];
  }
  return root;
}

/** otherErrors are a section's errors that are not inside its config. */
export function otherErrors(placed: Placed[], section: string): string[] {
  return placed.filter((p) => p.section === section && p.field !== 'config').map((p) => (p.field ? `${p.field}: ${p.message}` : p.message));
}
