// Inspector watches messages pass one stage of an integration, live, over
// the API's Server-Sent Events stream (read with fetch, because an
// EventSource cannot send the Authorization header). Bodies stay hidden
// until the user asks; asking reconnects with reveal=true, which needs a
// key with the dlq scope.
import { useEffect, useRef, useState } from 'react';
import { stream } from '../api/client';
import { Button, ProblemView, formatBytes, formatTime, inputClass } from './ui';

export interface InspectedMessage {
  time: string;
  stage: string;
  id: string;
  headers?: Record<string, string>;
  size: number;
  body?: string;
}

/** inspectURL builds the stream's URL; every value is encoded. */
export function inspectURL(integration: string, stage: string, limit: number, reveal: boolean): string {
  const q = new URLSearchParams({ stage, limit: String(limit), reveal: String(reveal) });
  return `/v1/integrations/${encodeURIComponent(integration)}/inspect?${q}`;
}

/** parseMessage reads one event's data, or null when it is not a message. */
export function parseMessage(data: string): InspectedMessage | null {
  try {
    const m = JSON.parse(data) as Partial<InspectedMessage>;
    if (typeof m?.id !== 'string' || typeof m.stage !== 'string') return null;
    return {
      time: String(m.time ?? ''),
      stage: m.stage,
      id: m.id,
      headers: m.headers && typeof m.headers === 'object' ? m.headers : undefined,
      size: typeof m.size === 'number' ? m.size : 0,
      body: typeof m.body === 'string' ? m.body : undefined,
    };
  } catch {
    return null;
  }
}

export function Inspector({ integration, producers }: { integration: string; producers: string[] }) {
  const stages = ['in', ...producers.map((p) => `out.${p}`)];
  const [stage, setStage] = useState('in');
  const [limit, setLimit] = useState(20);
  const [reveal, setReveal] = useState(false);
  const [running, setRunning] = useState(false);
  const [messages, setMessages] = useState<InspectedMessage[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [ended, setEnded] = useState('');
  const abort = useRef<AbortController | null>(null);

  function start(withBodies: boolean) {
    abort.current?.abort();
    const ctl = new AbortController();
    abort.current = ctl;
    setReveal(withBodies);
    setMessages([]);
    setError(null);
    setEnded('');
    setRunning(true);
    stream(
      inspectURL(integration, stage, limit, withBodies),
      (e) => {
        if (e.event !== 'message') return;
        const m = parseMessage(e.data);
        if (m) setMessages((all) => [...all, m].slice(-100));
      },
      ctl.signal,
    )
      .then(() => setEnded('The stream ended (limit reached or 5 minutes passed).'))
      .catch((err) => {
        if (!ctl.signal.aborted) setError(err);
      })
      .finally(() => {
        if (abort.current === ctl) setRunning(false);
      });
  }

  function stop() {
    abort.current?.abort();
    setRunning(false);
    setEnded('Stopped.');
  }

  useEffect(() => () => abort.current?.abort(), []);

  return (
    <div className="space-y-3">
      <div className="flex flex-wrap items-end gap-3">
        <label className="flex flex-col gap-1 text-sm">
          <span className="font-medium">Stage</span>
          <select className={inputClass} value={stage} onChange={(e) => setStage(e.target.value)} disabled={running}>
            {stages.map((s) => (
              <option key={s} value={s}>
                {s === 'in' ? 'in (entering the steps)' : `${s} (to producer ${s.slice(4)})`}
              </option>
            ))}
          </select>
        </label>
        <label className="flex flex-col gap-1 text-sm">
          <span className="font-medium">Messages</span>
          <input
            className={`${inputClass} w-20`}
            type="number"
            min={1}
            max={100}
            value={limit}
            disabled={running}
            onChange={(e) => setLimit(Math.min(100, Math.max(1, Number(e.target.value) || 1)))}
          />
        </label>
        {running ? (
          <Button onClick={stop}>Stop watching</Button>
        ) : (
          <Button kind="primary" onClick={() => start(false)}>
            Watch
          </Button>
        )}
        {!reveal && (
          <Button onClick={() => start(true)} title="Reconnects and shows message bodies; needs the dlq scope">
            Show bodies
          </Button>
        )}
      </div>
      <p className="text-sm text-slate-600" aria-live="polite">
        {running ? `Watching ${stage}${reveal ? ' with bodies' : ''}: ${messages.length} message(s) so far.` : ended}
      </p>
      <ProblemView error={error} />
      {messages.length > 0 && (
        <ol className="space-y-2">
          {messages.map((m, i) => (
            <li key={`${m.id}-${i}`} className="rounded border border-slate-200 bg-white p-2 text-sm">
              <div className="flex flex-wrap gap-x-3 text-xs text-slate-600">
                <span className="font-mono">{m.id}</span>
                <span>{formatTime(m.time)}</span>
                <span>{formatBytes(m.size)}</span>
              </div>
              {m.headers && Object.keys(m.headers).length > 0 && (
                <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-2 text-xs">
                  {Object.entries(m.headers).map(([k, v]) => (
                    <div key={k} className="contents">
                      <dt className="font-mono text-slate-500">{k}</dt>
                      <dd className="break-all font-mono">{v}</dd>
                    </div>
                  ))}
                </dl>
              )}
              {m.body !== undefined ? (
                <pre className="mt-1 max-h-48 overflow-auto rounded bg-slate-100 p-2 text-xs">{m.body}</pre>
              ) : (
                <p className="mt-1 text-xs text-slate-500">Body hidden.</p>
              )}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
