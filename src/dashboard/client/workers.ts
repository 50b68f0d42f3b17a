/**
 * Workers: how many connections watch each tube and how many of them wait in a reserve (beanstalkd's
 * `current-watching` and `current-waiting`, per server), and, for the workers `bsworker serve
 * --worker-metrics` names, their state, jobs held and rates, read from their own `/metrics`. The rates
 * are the change of the workers' counters between two polls of this page.
 */
import { api } from './api.js';
import { type Child, el, replace, table } from './dom.js';
import { POLL_MS } from './overview.js';
import type { TubesReport, WorkerReading } from './types.js';

/** The outcomes a worker's row shows, as `bsworker_jobs_total` labels them. */
const OUTCOMES = ['completed', 'failed', 'buried'] as const;

function connectionsTable(report: TubesReport): HTMLElement {
  const rows: Child[][] = report.tubes.flatMap((tube) =>
    tube.servers.map((counts) => [
      el('a', { href: `#/tube/${encodeURIComponent(tube.name)}` }, tube.name),
      counts.server,
      el('span', { 'data-count': 'watching' }, counts.watching),
      el('span', { 'data-count': 'waiting' }, counts.waiting),
      counts.reserved,
      counts.ready,
    ]),
  );
  return table('Connections per tube', ['Tube', 'Server', 'Watching', 'Waiting in reserve', 'Reserved', 'Ready'], rows, 'numbers');
}

/** Jobs per second of `outcome` between two readings of one worker; null for the first reading. */
function rate(now: WorkerReading, before: { reading: WorkerReading; at: number } | undefined, at: number, outcome: string): string {
  if (!before || !now.reachable || !before.reading.reachable) return '–';
  const seconds = (at - before.at) / 1000;
  const delta = (now.jobs[outcome] ?? 0) - (before.reading.jobs[outcome] ?? 0);
  // A restarted worker starts its counters again: a negative change is no rate.
  return seconds > 0 && delta >= 0 ? (delta / seconds).toFixed(1) : '–';
}

function stateOf(reading: WorkerReading): Child {
  if (!reading.reachable) return el('span', { class: 'down' }, `unreachable: ${reading.error ?? ''}`);
  const up = reading.workersUp ?? 0;
  return el('span', { class: up > 0 ? 'up' : 'down' }, up > 0 ? `reserving (${up} up)` : 'not reserving');
}

/** Renders the Workers view into `main`; returns the function that stops its polling. */
export function showWorkers(main: HTMLElement): () => void {
  const connections = el('section', { 'aria-label': 'Connections' });
  const workers = el('section', { 'aria-label': 'Worker metrics' });
  replace(main, el('h1', {}, 'Workers'), connections, workers);
  const previous = new Map<string, { reading: WorkerReading; at: number }>();
  let stopped = false;
  let timer: number | undefined;
  const poll = async (): Promise<void> => {
    const [tubes, metrics] = await Promise.allSettled([api.tubes(), api.workers()]);
    if (stopped) return;
    if (tubes.status === 'fulfilled') replace(connections, connectionsTable(tubes.value));
    else replace(connections, el('p', { class: 'error' }, (tubes.reason as Error).message));
    if (metrics.status === 'rejected') replace(workers, el('p', { class: 'error' }, (metrics.reason as Error).message));
    else if (metrics.value.workers.length === 0) {
      replace(
        workers,
        el('h2', {}, 'Worker metrics'),
        el(
          'p',
          { id: 'no-workers' },
          'No worker endpoints are configured: start workers with ',
          el('code', {}, '--metrics-port'),
          ' and the server with ',
          el('code', {}, 'bsworker serve --worker-metrics URL,...'),
          ' to see them here.',
        ),
      );
    } else {
      const at = Date.now();
      const rows: Child[][] = metrics.value.workers.map((reading) => {
        const before = previous.get(reading.url);
        previous.set(reading.url, { reading, at });
        return [
          el('code', {}, reading.url),
          stateOf(reading),
          reading.active ?? '–',
          ...OUTCOMES.map((outcome) => reading.jobs[outcome] ?? 0),
          rate(reading, before, at, 'completed'),
          reading.reconnects ?? '–',
        ];
      });
      replace(
        workers,
        el('h2', {}, 'Worker metrics'),
        table('Workers', ['Endpoint', 'State', 'Active', 'Completed', 'Failed', 'Buried', 'Done/s', 'Reconnects'], rows, 'numbers workers'),
      );
    }
    timer = window.setTimeout(poll, POLL_MS);
  };
  void poll();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
