// VersionDiff shows two spec versions as YAML with the lines that changed.
import { stringify } from 'yaml';
import { diffLines } from '../lib/diff';
import { cx } from './ui';

export default function VersionDiff({ from, to, fromLabel, toLabel }: { from: unknown; to: unknown; fromLabel: string; toLabel: string }) {
  const lines = diffLines(stringify(from ?? {}), stringify(to ?? {}));
  const changed = lines.filter((l) => l.op !== ' ').length;
  return (
    <div>
      <p className="mb-1 text-sm text-slate-600">
        {fromLabel} → {toLabel}: {changed === 0 ? 'no difference' : `${changed} changed line${changed === 1 ? '' : 's'}`}
      </p>
      <pre className="overflow-x-auto rounded bg-slate-900 p-2 text-xs" aria-label={`Differences between ${fromLabel} and ${toLabel}`}>
        {lines.map((l, i) => (
          <div
            key={i}
            className={cx(l.op === '+' && 'bg-green-900/60 text-green-100', l.op === '-' && 'bg-red-900/60 text-red-100', l.op === ' ' && 'text-slate-300')}
          >
            <span aria-hidden="true">{l.op} </span>
            <span className="sr-only">{l.op === '+' ? 'added: ' : l.op === '-' ? 'removed: ' : ''}</span>
            {l.text}
          </div>
        ))}
      </pre>
    </div>
  );
}
