// Small shared pieces: buttons, fields, the problem view, empty states,
// notices, a copy button and a confirmation dialog. Every control has a
// visible or accessible label and is reachable with the keyboard.
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { ProblemError, problemText, type Problem } from '../api/client';

export function cx(...c: (string | false | null | undefined)[]): string {
  return c.filter(Boolean).join(' ');
}

type ButtonProps = React.ButtonHTMLAttributes<HTMLButtonElement> & { kind?: 'primary' | 'secondary' | 'danger' | 'ghost' };

export function Button({ kind = 'secondary', className, ...props }: ButtonProps) {
  const styles = {
    primary: 'bg-blue-700 text-white hover:bg-blue-800 disabled:bg-blue-300',
    secondary: 'bg-white text-slate-800 border border-slate-300 hover:bg-slate-100 disabled:text-slate-400',
    danger: 'bg-red-700 text-white hover:bg-red-800 disabled:bg-red-300',
    ghost: 'text-blue-800 hover:bg-blue-50 disabled:text-slate-400',
  }[kind];
  return (
    <button
      type="button"
      {...props}
      className={cx('inline-flex items-center gap-1 rounded px-3 py-1.5 text-sm font-medium disabled:cursor-not-allowed', styles, className)}
    />
  );
}

export function Field({ label, hint, error, children, htmlFor }: { label: string; hint?: string; error?: string; children: ReactNode; htmlFor: string }) {
  return (
    <div className="flex flex-col gap-1">
      <label htmlFor={htmlFor} className="text-sm font-medium text-slate-700">
        {label}
      </label>
      {children}
      {hint && <p className="text-xs text-slate-500">{hint}</p>}
      {error && (
        <p className="text-xs text-red-700" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export const inputClass = 'rounded border border-slate-300 bg-white px-2 py-1.5 text-sm focus:border-blue-600';

export function asProblem(e: unknown): Problem {
  if (e instanceof ProblemError) return e.problem;
  if (e instanceof Error) return { title: e.message };
  return { title: String(e) };
}

/** ProblemView shows what the API answered, errors listed with where. */
export function ProblemView({ error }: { error: unknown }) {
  if (!error) return null;
  const p = asProblem(error);
  return (
    <div role="alert" className="rounded border border-red-300 bg-red-50 p-3 text-sm text-red-900">
      <p className="font-semibold">{problemText(p)}</p>
      {p.errors && p.errors.length > 0 && (
        <ul className="mt-1 list-disc pl-5">
          {p.errors.map((e, i) => (
            <li key={i}>
              {e.location && <code className="mr-1 text-xs">{e.location}</code>}
              {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="rounded border border-dashed border-slate-300 bg-white p-6 text-center">
      <p className="font-medium text-slate-800">{title}</p>
      {children && <div className="mt-2 text-sm text-slate-600">{children}</div>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="text-sm text-slate-500" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
      <h1 className="text-xl font-semibold text-slate-900">{children}</h1>
      {actions && <div className="flex flex-wrap gap-2">{actions}</div>}
    </div>
  );
}

export function Card({ title, children, className }: { title?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={cx('rounded border border-slate-200 bg-white p-4 shadow-sm', className)}>
      {title && <h2 className="mb-3 text-base font-semibold text-slate-800">{title}</h2>}
      {children}
    </section>
  );
}

export function StatusBadge({ status }: { status?: string }) {
  const color =
    {
      running: 'bg-green-100 text-green-900',
      active: 'bg-green-100 text-green-900',
      up: 'bg-green-100 text-green-900',
      completed: 'bg-green-100 text-green-900',
      degraded: 'bg-amber-100 text-amber-900',
      provisioning: 'bg-amber-100 text-amber-900',
      pending: 'bg-amber-100 text-amber-900',
      deleting: 'bg-amber-100 text-amber-900',
      failed: 'bg-red-100 text-red-900',
      down: 'bg-red-100 text-red-900',
    }[status ?? ''] ?? 'bg-slate-100 text-slate-800';
  return <span className={cx('inline-block rounded px-2 py-0.5 text-xs font-medium', color)}>{status || 'unknown'}</span>;
}

/** CopyButton copies text and says so. */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <Button
      aria-label={label}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setDone(true);
        } catch {
          // Clipboard access may be refused (insecure origin); select-and-copy still works.
          setDone(false);
        }
        setTimeout(() => setDone(false), 2000);
      }}
    >
      {done ? 'Copied' : label}
    </Button>
  );
}

/** Notices: every change says what it did, in a polite live region. */
interface Notice {
  id: number;
  text: string;
  kind: 'ok' | 'error';
}
const NoticeContext = createContext<(text: string, kind?: 'ok' | 'error') => void>(() => {});

export function NoticeProvider({ children }: { children: ReactNode }) {
  const [notices, setNotices] = useState<Notice[]>([]);
  const next = useRef(0);
  const push = useCallback((text: string, kind: 'ok' | 'error' = 'ok') => {
    const id = ++next.current;
    setNotices((n) => [...n.slice(-3), { id, text, kind }]);
    setTimeout(() => setNotices((n) => n.filter((x) => x.id !== id)), 6000);
  }, []);
  return (
    <NoticeContext.Provider value={push}>
      {children}
      <div aria-live="polite" role="status" className="fixed bottom-4 right-4 z-50 flex max-w-sm flex-col gap-2">
        {notices.map((n) => (
          <p
            key={n.id}
            className={cx('rounded px-3 py-2 text-sm shadow', n.kind === 'ok' ? 'bg-slate-900 text-white' : 'bg-red-700 text-white')}
          >
            {n.text}
          </p>
        ))}
      </div>
    </NoticeContext.Provider>
  );
}

export function useNotice() {
  return useContext(NoticeContext);
}

/** Confirm is a modal dialog that asks before a destructive change. */
export function Confirm({
  open,
  title,
  children,
  confirmLabel,
  onConfirm,
  onCancel,
  busy,
}: {
  open: boolean;
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  busy?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
    }
    if (!open && d.open) {
      if (typeof d.close === 'function') d.close();
      else d.removeAttribute('open');
    }
  }, [open]);
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={onCancel} className="m-auto max-w-md rounded p-5 shadow-xl backdrop:bg-slate-900/40">
      <h2 id="confirm-title" className="text-lg font-semibold">
        {title}
      </h2>
      <div className="mt-2 text-sm text-slate-700">{children}</div>
      <div className="mt-4 flex justify-end gap-2">
        <Button onClick={onCancel}>Cancel</Button>
        <Button kind="danger" onClick={onConfirm} disabled={busy}>
          {confirmLabel}
        </Button>
      </div>
    </dialog>
  );
}

export function formatTime(t?: string | null): string {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

export function formatBytes(n?: number | null): string {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}
