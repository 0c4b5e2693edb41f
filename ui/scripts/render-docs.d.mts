// Types of render-docs.mjs, for the UI's tests.
export function escapeHTML(s: unknown): string;
export function slug(s: unknown): string;
export function markdown(text: string | undefined): string;
export function typeOf(s: unknown, depth?: number): string;
export function properties(s: unknown, depth?: number): string;
export function renderReference(doc: unknown, opts?: { styles?: string[] }): string;
