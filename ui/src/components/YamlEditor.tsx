// YamlEditor is the wizard's YAML tab: the spec as YAML in a CodeMirror 6
// editor. Every edit that parses to a mapping becomes the wizard's spec, so
// the form and the YAML stay one spec.
import { useEffect, useRef, useState } from 'react';
import { EditorView, basicSetup } from 'codemirror';
import { yaml } from '@codemirror/lang-yaml';
import { specToYaml, yamlToSpec } from '../lib/specyaml';

export default function YamlEditor({ spec, onSpec }: { spec: unknown; onSpec: (s: Record<string, unknown>) => void }) {
  const box = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const [error, setError] = useState('');
  const onSpecRef = useRef(onSpec);
  onSpecRef.current = onSpec;

  useEffect(() => {
    if (!box.current) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const v = new EditorView({
      doc: specToYaml(spec),
      parent: box.current,
      extensions: [
        basicSetup,
        yaml(),
        EditorView.contentAttributes.of({ 'aria-label': 'Integration spec in YAML', 'data-testid': 'yaml-editor' }),
        EditorView.updateListener.of((u) => {
          if (!u.docChanged) return;
          clearTimeout(timer);
          timer = setTimeout(() => {
            const parsed = yamlToSpec(u.state.doc.toString());
            if (parsed.ok) {
              setError('');
              onSpecRef.current(parsed.spec);
            } else {
              setError(parsed.error);
            }
          }, 300);
        }),
      ],
    });
    view.current = v;
    return () => {
      clearTimeout(timer);
      v.destroy();
      view.current = null;
    };
    // The editor owns the text while it is open; it starts from the spec once.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <div>
      <div ref={box} className="overflow-hidden rounded border border-slate-300 bg-white text-sm" />
      <p className="mt-1 text-xs" role={error ? 'alert' : undefined}>
        {error ? <span className="text-red-700">Not applied: {error}</span> : <span className="text-slate-500">Edits apply to the form as you type.</span>}
      </p>
    </div>
  );
}
