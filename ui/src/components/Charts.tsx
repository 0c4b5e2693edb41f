// Charts draws an integration's metrics with uPlot: throughput, errors and
// latency over time. It is loaded lazily with the detail view's charts.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { MetricsPoint } from '../api/types';

interface Series {
  label: string;
  color: string;
  value: (p: MetricsPoint) => number | null | undefined;
  /** dots marks every point: a series with gaps (latency: a bucket without deliveries) may have lone points that a line cannot show. */
  dots?: boolean;
}

export const charts: { title: string; unit: string; series: Series[] }[] = [
  {
    title: 'Throughput',
    unit: 'msg/s',
    series: [
      { label: 'in', color: '#1d4ed8', value: (p) => p.in_per_second },
      { label: 'out', color: '#15803d', value: (p) => p.out_per_second },
    ],
  },
  {
    title: 'Errors',
    unit: 'msg/s',
    series: [
      { label: 'errors', color: '#b91c1c', value: (p) => p.errors_per_second },
      { label: 'to DLQ', color: '#a16207', value: (p) => p.dlq_per_second },
    ],
  },
  {
    title: 'Latency',
    unit: 'ms',
    series: [
      { label: 'p50', color: '#0f766e', value: (p) => p.p50_ms, dots: true },
      { label: 'p99', color: '#7c3aed', value: (p) => p.p99_ms, dots: true },
    ],
  },
];

/** toColumns turns metric points into uPlot's column data. */
export function toColumns(points: MetricsPoint[], series: Series[]): uPlot.AlignedData {
  const xs = points.map((p) => Date.parse(p.time) / 1000);
  return [xs, ...series.map((s) => points.map((p) => s.value(p) ?? null))] as uPlot.AlignedData;
}

function Chart({ title, unit, series, points, window }: { title: string; unit: string; series: Series[]; points: MetricsPoint[]; window: [number, number] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // The time axis spans the window asked for, not just the samples in it.
  const span = useRef(window);
  span.current = window;
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 160,
      legend: { show: true },
      scales: { x: { time: true, range: () => span.current } },
      axes: [{}, { label: unit, size: 50 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false, ...(s.dots ? { points: { show: true, size: 5, fill: s.color } } : {}) }))],
    };
    plot.current = new uPlot(opts, toColumns([], series), el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: 160 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [series, unit]);
  useEffect(() => {
    plot.current?.setData(toColumns(points, series));
  }, [points, series]);
  const peaks = peaksOf(points, series);
  const summary = summaryOf(points, series, unit);
  return (
    <figure
      className="min-w-0 rounded border border-slate-200 bg-white p-2"
      data-testid={`chart-${title.toLowerCase()}`}
      data-peak={peaks[series[0].label]}
      data-peaks={JSON.stringify(peaks)}
    >
      <figcaption className="text-sm font-medium">
        {title} <span className="font-normal text-slate-500" data-testid={`chart-${title.toLowerCase()}-latest`}>(latest: {summary})</span>
      </figcaption>
      <div ref={box} role="img" aria-label={`${title} chart, latest ${summary}`} />
    </figure>
  );
}

/** peaksOf is each series' highest value over the points (0 when none has one). */
export function peaksOf(points: MetricsPoint[], series: Series[]): Record<string, number> {
  return Object.fromEntries(series.map((s) => [s.label, Math.max(0, ...points.map((p) => s.value(p) ?? 0))]));
}

/**
 * summaryOf is a chart's latest values in words. A series the API sends as
 * null everywhere (latency: nothing was delivered in the window) is said to
 * be unmeasured, not drawn as a gap; a latest point without a value (no
 * delivery in that bucket) shows a dash.
 */
export function summaryOf(points: MetricsPoint[], series: Series[], unit: string): string {
  const last = points[points.length - 1];
  if (!last) return 'no samples yet';
  if (points.every((p) => series.every((s) => s.value(p) === null || s.value(p) === undefined))) return 'not measured yet';
  return series.map((s) => `${s.label} ${fmt(s.value(last), unit)}`).join(', ');
}

function fmt(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined) return '—';
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(2)} ${unit}`;
}

/** Charts draws the points of the window [from, to] (Unix seconds). */
export default function Charts({ points, from, to }: { points: MetricsPoint[]; from: number; to: number }) {
  return (
    <div className="grid gap-3 lg:grid-cols-3">
      {charts.map((c) => (
        <Chart key={c.title} title={c.title} unit={c.unit} series={c.series} points={points} window={[from, to]} />
      ))}
    </div>
  );
}
