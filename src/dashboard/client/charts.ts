/**
 * Live rates: jobs put, deleted ("done") and buried per second, from the servers' cumulative counters
 * (`cmd-put`, `cmd-delete`, `cmd-bury`) read at each poll, drawn as small uPlot charts. uPlot is loaded
 * by the shell page as a classic script (its global `uPlot`), before this module runs.
 */
import type UPlot from 'uplot';
import { el } from './dom.js';
import type { ServerReport } from './types.js';

declare global {
  interface Window {
    uPlot?: typeof UPlot;
  }
}

/** The counters each chart follows, and its title. */
const SERIES = [
  { counter: 'cmd-put', label: 'in /s' },
  { counter: 'cmd-delete', label: 'done /s' },
  { counter: 'cmd-bury', label: 'buried /s' },
] as const;

/** Points kept: two minutes at one poll every 2 s. */
const POINTS = 60;

function sum(servers: readonly ServerReport[], counter: string): number {
  return servers.reduce((total, server) => total + (server.stats?.counters[counter] ?? 0), 0);
}

/** Three charts fed with successive readings of the servers. */
export class RateCharts {
  /** The charts' container. */
  readonly node: HTMLElement;
  readonly #times: number[] = [];
  readonly #values: number[][] = SERIES.map(() => []);
  readonly #charts: (UPlot | null)[] = [];
  readonly #labels: HTMLElement[] = [];
  #last: { at: number; counts: number[] } | undefined;

  constructor() {
    this.node = el('div', { class: 'charts' });
    for (const series of SERIES) {
      const label = el('span', { class: 'rate', 'data-rate': series.counter }, '–');
      this.#labels.push(label);
      const box = el('figure', { class: 'chart' }, el('figcaption', {}, `${series.label} `, label));
      this.node.appendChild(box);
      const Plot = window.uPlot;
      this.#charts.push(
        Plot
          ? new Plot(
              {
                width: 260,
                height: 90,
                legend: { show: false },
                cursor: { show: false },
                axes: [{ show: false }, { size: 36, stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } }],
                scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
                series: [{}, { stroke: '#3b82f6', width: 2, fill: 'rgba(59,130,246,0.15)' }],
              },
              [[], []],
              box,
            )
          : null,
      );
    }
  }

  /** Adds one reading; the first only sets the baseline (a rate needs two). */
  push(servers: readonly ServerReport[], at = Date.now()): void {
    const counts = SERIES.map((series) => sum(servers, series.counter));
    const last = this.#last;
    this.#last = { at, counts };
    if (last === undefined || at <= last.at) return;
    const seconds = (at - last.at) / 1000;
    this.#times.push(at / 1000);
    if (this.#times.length > POINTS) this.#times.shift();
    SERIES.forEach((_series, i) => {
      const values = this.#values[i] as number[];
      // A restarted server's counters start again at 0: no negative rate.
      const rate = Math.max(0, ((counts[i] ?? 0) - (last.counts[i] ?? 0)) / seconds);
      values.push(rate);
      if (values.length > POINTS) values.shift();
      (this.#labels[i] as HTMLElement).textContent = rate.toFixed(1);
      this.#charts[i]?.setData([this.#times, values]);
    });
  }

  /** Frees the charts. */
  destroy(): void {
    for (const chart of this.#charts) chart?.destroy();
  }
}
