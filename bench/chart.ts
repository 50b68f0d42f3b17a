/**
 * The throughput chart, as hand-written SVG (no dependency): bsworker's drain rate against concurrency
 * on a log axis, a marker for `--processes 2`, and horizontal lines for the raw pipelined reserve+delete
 * limit and for fivebeans' own worker.
 */
import type { ScenarioResult } from './report.js';
import { CONCURRENCIES, DRAIN, P2_CONCURRENCY } from './scenarios/drain.js';
import { PEERS } from './scenarios/peers.js';
import { RAW } from './scenarios/raw.js';

const WIDTH = 880;
const HEIGHT = 470;
const PLOT = { left: 90, right: 560, top: 60, bottom: 390 } as const;
const COLOURS = { bsworker: '#1f6feb', processes: '#d97706', raw: '#111827', fivebeans: '#dc2626', grid: '#e5e7eb', text: '#374151' };
/** The x axis spans concurrency 1 to 64; a little room either side keeps markers off the frame. */
const X_MIN = 1;
const X_MAX = 64;
const X_PAD = 24;
const TITLE = 'Worker throughput against concurrency (no-op jobs, ~100-byte kwargs)';

/** Options of {@link renderChart}. */
export interface ChartOptions {
  /** A subtitle, e.g. the date and machine. */
  readonly subtitle: string;
}

/** Renders the chart from the run's results; scenarios that were not run are left out. */
export function renderChart(results: readonly ScenarioResult[], options: ChartOptions): string {
  const rate = (name: string): number | undefined => {
    const value = results.find((r) => r.name === name)?.medians.jobsPerSecond;
    return value !== undefined && Number.isFinite(value) ? value : undefined;
  };
  const drain = CONCURRENCIES.map((c) => ({ c, value: rate(DRAIN.single(c)) })).filter(
    (point): point is { c: (typeof CONCURRENCIES)[number]; value: number } => point.value !== undefined,
  );
  const twoProcesses = rate(DRAIN.twoProcesses);
  const raw = rate(RAW.reserveDelete);
  const fivebeans = rate(PEERS.fivebeansWorker);
  const values = [...drain.map((p) => p.value), twoProcesses, raw, fivebeans].filter((v): v is number => v !== undefined);
  const { max: yMax, step } = niceScale(Math.max(1, ...values) * 1.08);

  const x = (c: number): number =>
    PLOT.left + X_PAD + ((Math.log2(c) - Math.log2(X_MIN)) / (Math.log2(X_MAX) - Math.log2(X_MIN))) * (PLOT.right - PLOT.left - 2 * X_PAD);
  const y = (v: number): number => PLOT.bottom - (v / yMax) * (PLOT.bottom - PLOT.top);
  const f = (n: number): string => n.toFixed(1);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, sans-serif" font-size="12" role="img" aria-labelledby="title">`,
    `<title id="title">${TITLE}: ${escapeXml(options.subtitle)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${PLOT.left}" y="26" font-size="16" font-weight="600" fill="${COLOURS.text}">${TITLE}</text>`,
    `<text x="${PLOT.left}" y="44" fill="${COLOURS.text}">${escapeXml(options.subtitle)}</text>`,
  );
  // Grid and y axis.
  for (let v = 0; v <= yMax + step / 2; v += step) {
    parts.push(
      `<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="${COLOURS.grid}"/>`,
      `<text x="${PLOT.left - 8}" y="${f(y(v) + 4)}" text-anchor="end" fill="${COLOURS.text}">${Math.round(v).toLocaleString('en-US')}</text>`,
    );
  }
  // x axis: the measured concurrencies.
  parts.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${PLOT.bottom}" y2="${PLOT.bottom}" stroke="${COLOURS.text}"/>`);
  parts.push(`<line x1="${PLOT.left}" x2="${PLOT.left}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="${COLOURS.text}"/>`);
  for (const c of CONCURRENCIES) {
    parts.push(
      `<line x1="${f(x(c))}" x2="${f(x(c))}" y1="${PLOT.bottom}" y2="${PLOT.bottom + 5}" stroke="${COLOURS.text}"/>`,
      `<text x="${f(x(c))}" y="${PLOT.bottom + 19}" text-anchor="middle" fill="${COLOURS.text}">${c}</text>`,
    );
  }
  parts.push(
    `<text x="${(PLOT.left + PLOT.right) / 2}" y="${PLOT.bottom + 42}" text-anchor="middle" fill="${COLOURS.text}">concurrency: jobs in flight (-c), log scale</text>`,
    `<text transform="translate(24 ${(PLOT.top + PLOT.bottom) / 2}) rotate(-90)" text-anchor="middle" fill="${COLOURS.text}">jobs/s</text>`,
  );
  // Reference lines.
  const horizontal = (value: number, colour: string, dash: string): string =>
    `<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${f(y(value))}" y2="${f(y(value))}" stroke="${colour}" stroke-width="2" stroke-dasharray="${dash}"/>`;
  if (raw !== undefined) parts.push(horizontal(raw, COLOURS.raw, '8 5'));
  if (fivebeans !== undefined) parts.push(horizontal(fivebeans, COLOURS.fivebeans, '2 4'));
  // bsworker's drain line.
  if (drain.length > 0) {
    parts.push(
      `<polyline fill="none" stroke="${COLOURS.bsworker}" stroke-width="2.5" points="${drain.map((p) => `${f(x(p.c))},${f(y(p.value))}`).join(' ')}"/>`,
    );
    for (const p of drain) {
      parts.push(
        `<circle cx="${f(x(p.c))}" cy="${f(y(p.value))}" r="4.5" fill="${COLOURS.bsworker}"/>`,
        `<text x="${f(x(p.c))}" y="${f(y(p.value) - 10)}" text-anchor="middle" fill="${COLOURS.bsworker}">${Math.round(p.value).toLocaleString('en-US')}</text>`,
      );
    }
  }
  // --processes 2 sits at its total number of slots.
  if (twoProcesses !== undefined) {
    const cx = x(2 * P2_CONCURRENCY);
    const cy = y(twoProcesses);
    parts.push(
      `<path d="M${f(cx)} ${f(cy - 7)} L${f(cx + 7)} ${f(cy)} L${f(cx)} ${f(cy + 7)} L${f(cx - 7)} ${f(cy)} Z" fill="${COLOURS.processes}"/>`,
    );
  }
  // Legend, with the values of the marker and the reference lines (labels on the plot would collide).
  const value = (v: number | undefined): string => (v === undefined ? 'not run' : `${Math.round(v).toLocaleString('en-US')}/s`);
  const legend: [string, string][] = [];
  const lx = PLOT.right + 20;
  let ly = PLOT.top + 8;
  const entry = (swatch: string, text: string): void => {
    legend.push([swatch, `<text x="${lx + 34}" y="${ly + 4}" fill="${COLOURS.text}">${escapeXml(text)}</text>`]);
    ly += 24;
  };
  entry(
    `<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${COLOURS.bsworker}" stroke-width="2.5"/><circle cx="${lx + 13}" cy="${ly}" r="4" fill="${COLOURS.bsworker}"/>`,
    'bsworker CLI drain',
  );
  entry(
    `<path d="M${lx + 13} ${ly - 6} L${lx + 19} ${ly} L${lx + 13} ${ly + 6} L${lx + 7} ${ly} Z" fill="${COLOURS.processes}"/>`,
    `--processes 2 -c ${P2_CONCURRENCY} (x = ${2 * P2_CONCURRENCY}): ${value(twoProcesses)}`,
  );
  entry(
    `<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${COLOURS.raw}" stroke-width="2" stroke-dasharray="8 5"/>`,
    `raw reserve+delete: ${value(raw)}`,
  );
  entry(
    `<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${COLOURS.fivebeans}" stroke-width="2" stroke-dasharray="2 4"/>`,
    `fivebeans' worker: ${value(fivebeans)}`,
  );
  for (const [swatch, text] of legend) parts.push(swatch, text);
  parts.push('</svg>', '');
  return parts.join('\n');
}

/** A round axis maximum and tick step (1, 2 or 5 times a power of ten, about five ticks). */
function niceScale(max: number): { max: number; step: number } {
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  return { max: Math.ceil(max / step) * step, step };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
