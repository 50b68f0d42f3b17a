/**
 * `node --import tsx bench/metrics-overhead.ts`: the per-job CPU cost of the worker metrics, without I/O,
 * in nanoseconds. A drain's wall-clock rate on a shared 2-core machine moves by more than the 5% the
 * metrics may cost; this isolates the part the metrics add: building and emitting the events a job's
 * success path emits once something listens (`job:reserved`, `job:completed`, `job:deleted`), and the
 * listeners. Compared: no listener (what a worker without metrics does), bsworker's WorkerMetrics (with
 * and without its `job:reserved` timing fallback), and the same counts kept with prom-client's own
 * `inc()`/`observe()` on every job; each with the events built as the worker builds them today (object
 * spread) and with their properties written out.
 */
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import { DEFAULT_DURATION_BUCKETS } from '../src/metrics/tally.js';
import { WorkerMetrics } from '../src/metrics/worker-metrics.js';
import { JobQueue } from '../src/tasks/queue.js';
import type { JobEvent, WorkerEvents } from '../src/worker/events.js';
import { Worker } from '../src/worker/worker.js';

const JOBS = 500_000;
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const TUBE = 'bench-metrics';
const silent = pino({ level: 'silent' });
new JobQueue({ inline: true, logger: silent }).task(TUBE, { name: 'noop' })(async () => undefined);

type Emit = <K extends keyof WorkerEvents & string>(event: K, ...args: WorkerEvents[K]) => void;

/**
 * How the success path builds its events: `spread` as src/worker/outcomes.ts does today
 * (`{ ...event, durationMs }`, which V8 on Node 20 runs through a slow path: about 0.6 us each here),
 * `literal` with the properties written out.
 */
type Build = 'spread' | 'literal';

/** What Outcomes and processJob do on a job's success path, event for event. */
function successPath(worker: Worker, jobs: number, build: Build): number {
  const emit = (worker as unknown as { emitSafely: Emit }).emitSafely.bind(worker);
  const listens = (event: keyof WorkerEvents): boolean => worker.listenerCount(event) > 0;
  const started = performance.now();
  for (let i = 0; i < jobs; i += 1) {
    const event: JobEvent = { jobId: String(i), tube: TUBE, task: 'noop' };
    if (listens('job:reserved')) emit('job:reserved', event);
    if (build === 'spread') {
      if (listens('job:completed')) emit('job:completed', { ...event, durationMs: 0.05 });
      if (listens('job:deleted')) emit('job:deleted', { ...event, reason: 'completed' });
    } else {
      const { jobId, tube, task } = event;
      if (listens('job:completed')) emit('job:completed', { jobId, tube, task, durationMs: 0.05 });
      if (listens('job:deleted')) emit('job:deleted', { jobId, tube, task, reason: 'completed' });
    }
  }
  return ((performance.now() - started) * 1e6) / jobs;
}

function variant(build: Build, setup: (worker: Worker) => void): () => number {
  return () => {
    const worker = new Worker({ tubes: [TUBE], url: '127.0.0.1:1', logger: silent });
    setup(worker);
    return successPath(worker, JOBS, build);
  };
}

const none = (): void => undefined;
const workerMetrics = (worker: Worker): void => {
  new WorkerMetrics().attach(worker);
};
const retired = (worker: Worker): void => {
  new WorkerMetrics().attach(worker);
  // What the first job:failed with a durationMs does: the job:reserved timing stops.
  (worker as unknown as { emitSafely: Emit }).emitSafely('job:failed', {
    jobId: 'x',
    tube: TUBE,
    task: 'noop',
    error: new Error('x'),
    kicks: 0,
    attempt: 1,
    durationMs: 1,
  });
};
const promClient = (worker: Worker): void => {
  const registry = new Registry();
  const jobs = new Counter({ name: 'j_total', help: 'h', labelNames: ['tube', 'task', 'outcome'], registers: [registry] });
  const durations = new Histogram({
    name: 'd_seconds',
    help: 'h',
    labelNames: ['tube', 'task'],
    buckets: [...DEFAULT_DURATION_BUCKETS],
    registers: [registry],
  });
  worker.on('job:completed', (event) => {
    jobs.inc({ tube: event.tube ?? '', task: event.task ?? '', outcome: 'completed' });
    durations.observe({ tube: event.tube ?? '', task: event.task ?? '' }, event.durationMs / 1000);
  });
  // Dead letters and discards are only seen there: a metrics listener has to listen.
  worker.on('job:deleted', () => undefined);
};

const variants: Record<string, () => number> = {
  'no listener (no event is built)': variant('spread', none),
  'WorkerMetrics, events spread (today)': variant('spread', workerMetrics),
  'WorkerMetrics, spread, fallback retired': variant('spread', retired),
  'prom-client per job, events spread': variant('spread', promClient),
  'WorkerMetrics, events literal': variant('literal', workerMetrics),
  'WorkerMetrics, literal, fallback retired': variant('literal', retired),
  'prom-client per job, events literal': variant('literal', promClient),
};

const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round += 1) {
  for (const [name, run] of Object.entries(variants)) results.set(name, [...(results.get(name) ?? []), run()]);
}
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const base = median(results.get('no listener (no event is built)') as number[]);
process.stdout.write(`ns per job on the success path, median of ${ROUNDS} rounds of ${JOBS.toLocaleString('en-US')} jobs\n`);
for (const [name, values] of results) {
  const ns = median(values);
  process.stdout.write(`${name.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns  (+${(ns - base).toFixed(0)} ns)\n`);
}
