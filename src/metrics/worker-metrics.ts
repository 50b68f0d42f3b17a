/**
 * A worker's Prometheus metrics, built from its events in this one place (never from hooks in the
 * worker loop). Each counted event adds to a plain-number {@link Series}; prom-client reads the series
 * when scraped. See the README's "Metrics" section for what each metric counts.
 */
import type { EventEmitter } from 'node:events';
import type { Registry } from 'prom-client';
import { splitJobId } from '../servers/job-id.js';
import { findTask, listTasks } from '../tasks/registry.js';
import type { JobEvent, WorkerEvents } from '../worker/events.js';
import type { Worker } from '../worker/worker.js';
import { promClient } from './prom-client.js';
import { DEFAULT_DURATION_BUCKETS, OUTCOME_INDEX, OUTCOMES, type Outcome, Series, SeriesHistogram } from './tally.js';

/** The `task` label of a job whose body names no task registered in its tube (or cannot be decoded). */
export const UNREGISTERED_TASK = 'unregistered';
/** The `tube` label of a job whose tube is not one its worker watches (never expected). */
export const UNKNOWN_TUBE = 'unknown';
/** The `server` label of a job whose id names none of its worker's servers (never expected). */
export const UNKNOWN_SERVER = 'unknown';

/** The values the `command` label of `bsworker_ttr_overruns_total` can take; anything else is `other`. */
const OVERRUN_COMMANDS: ReadonlySet<string> = new Set(['run', 'keep-alive', 'delete', 'release', 'bury']);

/** Options of {@link WorkerMetrics}. */
export interface WorkerMetricsOptions {
  /**
   * Where the metrics are registered. A registry holds one WorkerMetrics: attach every worker of a
   * process to the same one.
   * @defaultValue a new Registry
   */
  readonly registry?: Registry;
  /** Upper bounds of `bsworker_job_duration_seconds`, in seconds. @defaultValue {@link DEFAULT_DURATION_BUCKETS} */
  readonly durationBuckets?: readonly number[];
}

type Listeners = { [K in keyof WorkerEvents]?: (...args: WorkerEvents[K]) => void };

/**
 * The metrics of one or more Workers in one registry. Counters live as long as this object: a worker
 * detached (or replaced) keeps what it counted, so the totals never go backwards.
 */
export class WorkerMetrics {
  /** The registry the metrics are in: serve `registry.metrics()` with `registry.contentType`. */
  readonly registry: Registry;
  readonly #bounds: readonly number[];
  /** server label -> tube label -> task label -> series. Only bounded label values ever become keys. */
  readonly #series = new Map<string, Map<string, Map<string, Series>>>();
  readonly #workers = new Set<Worker>();
  /** Reconnects by server label. */
  readonly #reconnects = new Map<string, number>();
  readonly #errors = new Map<string, number>();
  readonly #overruns = new Map<string, number>();

  constructor(options: WorkerMetricsOptions = {}) {
    this.registry = options.registry ?? new (promClient().Registry)();
    this.#bounds = [...(options.durationBuckets ?? DEFAULT_DURATION_BUCKETS)].sort((a, b) => a - b);
    this.#register();
  }

  /**
   * Counts `worker`'s events from now on; returns a function that stops counting them (what was counted
   * stays). Series for every registered task of the watched tubes start at 0, so that a rate over them
   * exists before the first job.
   */
  attach(worker: Worker): () => void {
    const tubes = new Set(worker.tubes);
    const servers = new Set(worker.servers);
    const only = worker.servers.length === 1 ? (worker.servers[0] as string) : undefined;
    for (const server of servers) {
      for (const tube of tubes) {
        for (const task of listTasks()) if (task.tube === tube) this.#seriesOf(server, tube, task.name);
      }
    }
    // Every server's reconnect and error counts exist from the start, at 0, so that a rate over them does too.
    for (const server of servers) {
      if (!this.#reconnects.has(server)) this.#reconnects.set(server, 0);
      if (!this.#errors.has(server)) this.#errors.set(server, 0);
    }
    // The server label: the one server, or the one a qualified id names (one of the worker's own).
    const serverOf = (event: JobEvent): string => {
      if (only !== undefined) return only;
      const named = splitJobId(event.jobId).server;
      return named !== undefined && servers.has(named) ? named : UNKNOWN_SERVER;
    };
    // The tube label is one of the watched tubes and the task label a registered name (or
    // `unregistered`): a job body can never make a new series.
    const seriesFor = (event: JobEvent): Series => {
      const tube = event.tube !== undefined && tubes.has(event.tube) ? event.tube : UNKNOWN_TUBE;
      const server = serverOf(event);
      // Three lookups and no string built: this runs for every job event.
      const known = this.#series
        .get(server)
        ?.get(tube)
        ?.get(event.task as string);
      if (known) return known;
      const registered = event.task !== undefined && tube !== UNKNOWN_TUBE && findTask(tube, event.task) !== undefined;
      return this.#seriesOf(server, tube, registered ? (event.task as string) : UNREGISTERED_TASK);
    };
    const count = (event: JobEvent, outcome: Outcome): void => {
      const { counts } = seriesFor(event);
      const index = OUTCOME_INDEX[outcome];
      counts[index] = (counts[index] as number) + 1;
    };

    const listeners: Listeners = {
      'job:completed': (event) => {
        const series = seriesFor(event);
        series.counts[OUTCOME_INDEX.completed] = (series.counts[OUTCOME_INDEX.completed] as number) + 1;
        series.observe(event.durationMs / 1000);
      },
      'job:failed': (event) => {
        const series = seriesFor(event);
        series.counts[OUTCOME_INDEX.failed] = (series.counts[OUTCOME_INDEX.failed] as number) + 1;
        if (event.durationMs !== undefined) series.observe(event.durationMs / 1000);
      },
      'job:released': (event) => {
        if (event.reason === 'retry') return count(event, 'retried');
        count(event, 'given_back');
      },
      'job:buried': (event) => count(event, 'buried'),
      'job:deleted': (event) => {
        if (event.reason === 'dead-letter') count(event, 'dead_lettered');
        else if (event.reason === 'max-kicks') count(event, 'discarded');
      },
      'job:overrun': (event) => {
        count(event, 'overrun');
        const tube = event.tube !== undefined && tubes.has(event.tube) ? event.tube : UNKNOWN_TUBE;
        const command = OVERRUN_COMMANDS.has(event.command) ? event.command : 'other';
        const key = `${serverOf(event)}\n${tube}\n${command}`;
        this.#overruns.set(key, (this.#overruns.get(key) ?? 0) + 1);
      },
      'worker:reconnected': (event) => {
        const server = servers.has(event.server) ? event.server : UNKNOWN_SERVER;
        this.#reconnects.set(server, (this.#reconnects.get(server) ?? 0) + 1);
      },
      'worker:error': (_error, where) => {
        const server = only ?? (servers.has(where.server) ? where.server : UNKNOWN_SERVER);
        this.#errors.set(server, (this.#errors.get(server) ?? 0) + 1);
      },
    };
    // Typed per event above; registered through the untyped base, which takes any name and listener.
    const emitter = worker as unknown as EventEmitter;
    const entries = Object.entries(listeners) as [string, (...args: unknown[]) => void][];
    for (const [event, listener] of entries) emitter.on(event, listener);
    this.#workers.add(worker);
    return () => {
      for (const [event, listener] of entries) emitter.off(event, listener);
      this.#workers.delete(worker);
    };
  }

  #seriesOf(server: string, tube: string, task: string): Series {
    let tubes = this.#series.get(server);
    if (!tubes) {
      tubes = new Map();
      this.#series.set(server, tubes);
    }
    let tasks = tubes.get(tube);
    if (!tasks) {
      tasks = new Map();
      tubes.set(tube, tasks);
    }
    let series = tasks.get(task);
    if (!series) {
      series = new Series({ server, tube, task }, this.#bounds);
      tasks.set(task, series);
    }
    return series;
  }

  *#allSeries(): Iterable<Series> {
    for (const tubes of this.#series.values()) for (const tasks of tubes.values()) yield* tasks.values();
  }

  #register(): void {
    const { Counter, Gauge } = promClient();
    const registers = [this.registry];
    const metrics = this;
    new Counter({
      name: 'bsworker_jobs_total',
      help: 'Jobs by outcome: completed, failed (each failed run), retried (each release for a retry), buried, dead_lettered, discarded (deleted at the kick bound), overrun (TTR), given_back (by a stop).',
      labelNames: ['server', 'tube', 'task', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const series of metrics.#allSeries()) {
          for (const [index, outcome] of OUTCOMES.entries()) {
            this.inc({ ...series.labels, outcome }, series.counts[index] as number);
          }
        }
      },
    });
    new SeriesHistogram(
      'bsworker_job_duration_seconds',
      'How long task runs took (completed and failed runs), in seconds.',
      this.#bounds,
      () => this.#allSeries(),
    ).register(this.registry);
    new Gauge({
      name: 'bsworker_jobs_active',
      help: 'Jobs held by the worker now: reserved and not yet settled (running or being deleted, released or buried).',
      registers,
      collect() {
        let active = 0;
        for (const worker of metrics.#workers) active += worker.activeJobs;
        this.set(active);
      },
    });
    new Gauge({
      name: 'bsworker_worker_up',
      help: 'Workers running (reserving jobs): 1 for a running worker, 0 while it starts, waits for beanstalkd or stops.',
      registers,
      collect() {
        let up = 0;
        for (const worker of metrics.#workers) if (worker.state === 'running') up += 1;
        this.set(up);
      },
    });
    new Counter({
      name: 'bsworker_reconnects_total',
      help: 'Connections the worker got back after losing them (worker:reconnected events), by server.',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        for (const [server, value] of metrics.#reconnects) this.inc({ server }, value);
      },
    });
    new Counter({
      name: 'bsworker_worker_errors_total',
      help: 'Errors the worker reported and went on after (worker:error events: lost connections, failed reserves), by server.',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        for (const [server, value] of metrics.#errors) this.inc({ server }, value);
      },
    });
    new Counter({
      name: 'bsworker_ttr_overruns_total',
      help: 'Jobs that outlived their TTR (job:overrun events), by what noticed it: run, keep-alive, delete, release, bury or other.',
      labelNames: ['server', 'tube', 'command'],
      registers,
      collect() {
        this.reset();
        for (const [key, value] of metrics.#overruns) {
          const [server = '', tube = '', command = ''] = key.split('\n');
          this.inc({ server, tube, command }, value);
        }
      },
    });
  }
}

/**
 * Counts `worker`'s jobs into `registry` (a new one by default) and returns the metrics; serve
 * `metrics.registry.metrics()` from your own HTTP server. For several workers in one process, attach
 * the others with `metrics.attach(worker)`.
 */
export function collectWorkerMetrics(worker: Worker, registry?: Registry): WorkerMetrics {
  const metrics = new WorkerMetrics(registry === undefined ? {} : { registry });
  metrics.attach(worker);
  return metrics;
}
