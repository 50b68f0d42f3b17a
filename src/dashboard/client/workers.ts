/**
 * Workers: how many connections watch each tube and how many of them wait in a reserve (beanstalkd's
 * `current-watching` and `current-waiting`, per server), and, for the workers `bsworker serve
 * --worker-metrics` names, their state, jobs held and rates, read from their own `/metrics`. The rates
 * are the change of the workers' counters between two polls of this page. Then the running jobs that
 * report progress, read from the same workers' `/progress`.
 */
import { api } from './api.js';
import { type Child, el, replace, table } from './dom.js';
import { POLL_MS } from './overview.js';
import type { ProgressReading, SchedulesReading, TubesReport, WorkerReading } from './types.js';

/** A progress value as one line of text: a string as it is, anything else as its JSON. Never HTML. */
function progressText(value: unknown, truncated: boolean): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
  return truncated ? `${text}… (truncated)` : text;
}

function progressTable(reading: ProgressReading): HTMLElement {
  const down = reading.workers.filter((worker) => !worker.reachable);
  const rows: Child[][] = reading.jobs.map((job) => [
    // The id is a worker's: with several servers it is qualified, as the job view takes it.
    el('a', { href: `#/job/${encodeURIComponent(job.jobId)}` }, job.jobId),
    job.tube === null ? '–' : el('a', { href: `#/tube/${encodeURIComponent(job.tube)}` }, job.tube),
    job.task ?? '–',
    el('span', { class: 'progress-value' }, progressText(job.value, job.truncated)),
    new Date(job.at).toLocaleTimeString(),
    el('code', {}, job.worker),
  ]);
  return el(
    'section',
    { 'aria-label': 'Progress', id: 'progress' },
    el('h2', {}, 'Running jobs with progress'),
    rows.length === 0
      ? el('p', { id: 'no-progress' }, 'No running job has reported progress (ctx.progress).')
      : table('Progress', ['Job', 'Tube', 'Task', 'Progress', 'Reported', 'Worker'], rows, 'progress'),
    ...down.map((worker) => el('p', { class: 'hint' }, `${worker.url}: unreachable (${worker.error ?? ''}), its jobs are not listed`)),
  );
}

/** When a schedule runs next, as its marker on the server says. */
function nextRunText(entry: SchedulesReading['schedules'][number]): string {
  if (entry.marker === 'reserved') return 'being put now';
  const when = entry.nextRun === null ? 'never' : new Date(entry.nextRun).toLocaleString();
  if (entry.marker === 'not armed') return `${when} (not yet armed: no scheduler active since it was declared)`;
  return entry.marker === 'ready' ? `${when} (due)` : when;
}

/** The schedules and the active scheduler. Names, expressions and hosts come from the server: text only. */
function schedulesSection(reading: SchedulesReading): HTMLElement {
  const { active } = reading;
  const who =
    active === null
      ? el('p', { id: 'scheduler', class: 'down' }, `No active scheduler (on ${reading.server}).`)
      : active.holding
        ? el(
            'p',
            { id: 'scheduler', class: 'up' },
            `Active scheduler: ${active.host} pid ${active.pid}, since ${active.since} (lease ${active.lease} on ${reading.server}).`,
          )
        : el(
            'p',
            { id: 'scheduler', class: 'down' },
            `No active scheduler: the last one, ${active.host} pid ${active.pid}, no longer holds its lease.`,
          );
  const rows: Child[][] = reading.schedules.map((entry) => [
    entry.name,
    el('code', {}, entry.cron),
    entry.timezone,
    entry.task === null ? 'not declared by the loaded jobs' : `${entry.task.tube}: ${entry.task.name}`,
    nextRunText(entry),
  ]);
  return el(
    'section',
    { 'aria-label': 'Schedules', id: 'schedules' },
    el('h2', {}, 'Schedules'),
    who,
    rows.length === 0
      ? el('p', { id: 'no-schedules' }, 'No schedule is armed on the server (and none is declared by the loaded jobs).')
      : table('Schedules', ['Name', 'Cron', 'Time zone', 'Task', 'Next run'], rows, 'schedules'),
  );
}

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
  const progress = el('div');
  const schedules = el('div');
  replace(main, el('h1', {}, 'Workers'), connections, workers, progress, schedules);
  const previous = new Map<string, { reading: WorkerReading; at: number }>();
  let stopped = false;
  let timer: number | undefined;
  const poll = async (): Promise<void> => {
    const [tubes, metrics, running, scheduled] = await Promise.allSettled([api.tubes(), api.workers(), api.progress(), api.schedules()]);
    if (stopped) return;
    if (scheduled.status === 'rejected') replace(schedules, el('p', { class: 'error' }, (scheduled.reason as Error).message));
    else replace(schedules, schedulesSection(scheduled.value));
    if (running.status === 'rejected') replace(progress, el('p', { class: 'error' }, (running.reason as Error).message));
    else if (running.value.workers.length === 0) replace(progress);
    else replace(progress, progressTable(running.value));
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
