/** prettyBody pretty-prints a body when it is JSON and returns it as is otherwise. */
export function prettyBody(body: string | undefined, contentType?: string): { text: string; json: boolean } {
  if (body === undefined) return { text: '', json: false };
  const looksJSON = (contentType ?? '').includes('json') || /^\s*[[{]/.test(body);
  if (looksJSON) {
    try {
      return { text: JSON.stringify(JSON.parse(body), null, 2), json: true };
    } catch {
      /* not JSON after all */
    }
  }
  return { text: body, json: false };
}

/** localInputToISO turns a datetime-local value into RFC 3339, or undefined. */
export function localInputToISO(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
