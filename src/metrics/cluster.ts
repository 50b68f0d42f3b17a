/**
 * Metrics under `bsworker --processes`: the supervisor serves one endpoint that sums its children.
 * On each scrape it asks every child over the IPC channel for its registry as JSON, waits up to a
 * deadline, and sums the answers with prom-client's `AggregatorRegistry.aggregate`.
 *
 * Counters must never go backwards, or Prometheus reads a reset and `rate()` jumps. So the counters and
 * histograms of a child that is gone (recycled, crashed, restarted) are kept and added to every later
 * sum, and a child that does not answer in time is counted from its last answer; only its gauges are
 * left out. A child sends a last snapshot when its worker stops, so a recycle loses nothing; a crash
 * loses what it counted since the last scrape.
 */
import type { ChildProcess } from 'node:child_process';
import type { Registry } from 'prom-client';
import { IPC, type MetricJson, onChildMessage, onSupervisorMessage, sendToChild, sendToSupervisor } from '../cli/ipc.js';
import type { RenderedMetrics } from './http.js';
import type { ProgressEntry, ProgressReport } from './progress.js';
import { promClient } from './prom-client.js';

/** Every timing of the cluster metrics, in one place. */
export const CLUSTER_METRICS_DEFAULTS = Object.freeze({
  /** How long a scrape waits for the children; one still silent then is counted from its last answer. */
  childTimeoutMs: 2_000,
});

/** Types whose values only grow: what a gone or silent child still contributes. */
const CUMULATIVE: ReadonlySet<string> = new Set(['counter', 'histogram']);
const cumulativeOnly = (metrics: readonly MetricJson[]): MetricJson[] => metrics.filter((metric) => CUMULATIVE.has(String(metric.type)));

/**
 * Child side: answers the supervisor's requests with `registry`'s metrics, and with `progress`'s
 * running jobs when given. Returns a function that sends the last snapshot (call it once the worker has
 * stopped) and stops answering.
 */
export function answerMetricsRequests(
  registry: Registry,
  channel: NodeJS.Process = process,
  progress?: { snapshot(): ProgressReport },
): () => Promise<void> {
  const stopListening = onSupervisorMessage(
    (message) => {
      if (message.type === IPC.progressRequest) {
        const jobs = progress === undefined ? [] : [...progress.snapshot().jobs];
        void sendToSupervisor({ type: IPC.progressReply, id: message.id, jobs }, channel);
        return;
      }
      if (message.type !== IPC.metricsRequest) return;
      const { id } = message;
      registry.getMetricsAsJSON().then(
        (metrics) => sendToSupervisor({ type: IPC.metricsReply, id, metrics }, channel),
        () => undefined,
      );
    },
    undefined,
    channel,
  );
  return async () => {
    stopListening();
    await sendToSupervisor({ type: IPC.metricsFinal, metrics: await registry.getMetricsAsJSON() }, channel);
  };
}

/** One child as the supervisor's metrics know it. */
interface ChildMetrics {
  /** Its latest answer (or last snapshot). */
  last: MetricJson[] | undefined;
}

/** Options of {@link ClusterMetrics}. */
export interface ClusterMetricsOptions {
  /** @defaultValue CLUSTER_METRICS_DEFAULTS.childTimeoutMs */
  readonly childTimeoutMs?: number;
}

/** Supervisor side: the children's metrics summed, plus the supervisor's own. */
export class ClusterMetrics {
  /** The supervisor's own metrics (children, restarts, silent children). */
  readonly registry: Registry = new (promClient().Registry)();
  readonly #timeoutMs: number;
  readonly #children = new Map<ChildProcess, ChildMetrics>();
  /** What children that are gone counted (counters and histograms). */
  #retired: MetricJson[][] = [];
  readonly #waiting = new Map<number, (metrics: MetricJson[] | undefined) => void>();
  /** Progress requests waiting for their child; ids come from the same counter as the metrics'. */
  readonly #progressWaiting = new Map<number, (jobs: ProgressEntry[] | undefined) => void>();
  #nextId = 1;
  #restarts = 0;
  #missing = 0;
  #missed = 0;

  constructor(options: ClusterMetricsOptions = {}) {
    this.#timeoutMs = options.childTimeoutMs ?? CLUSTER_METRICS_DEFAULTS.childTimeoutMs;
    const { Counter, Gauge } = promClient();
    const metrics = this;
    const registers = [this.registry];
    // The children's gauges summed with a 0 of the supervisor's own: while no child answers (all of
    // them starting, restarting or stuck), `bsworker_worker_up` is 0 rather than absent, which an
    // alert on `== 0` would not see.
    for (const name of ['bsworker_worker_up', 'bsworker_jobs_active']) {
      new Gauge({ name, help: 'Summed over the children that answered this scrape.', registers }).set(0);
    }
    new Gauge({
      name: 'bsworker_supervisor_children',
      help: 'Worker processes the supervisor has running now.',
      registers,
      collect() {
        this.set([...metrics.#children.keys()].filter((child) => child.exitCode === null && child.signalCode === null).length);
      },
    });
    new Counter({
      name: 'bsworker_supervisor_restarts_total',
      help: 'Worker processes restarted after dying (recycles, which are planned, are not counted).',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.#restarts);
      },
    });
    new Gauge({
      name: 'bsworker_metrics_children_missing',
      help: 'Children that did not answer the last scrape in time: their counters are from their previous answer, their gauges are left out.',
      registers,
      collect() {
        this.set(metrics.#missing);
      },
    });
    new Counter({
      name: 'bsworker_metrics_children_missed_total',
      help: 'Times a child did not answer a scrape in time.',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.#missed);
      },
    });
  }

  /** Follows a new child: its answers, its last snapshot, and its end. */
  watch(child: ChildProcess): void {
    const entry: ChildMetrics = { last: undefined };
    this.#children.set(child, entry);
    onChildMessage(
      child,
      (message) => {
        if (message.type === IPC.metricsReply) {
          entry.last = message.metrics;
          this.#waiting.get(message.id)?.(message.metrics);
        } else if (message.type === IPC.metricsFinal) entry.last = message.metrics;
        else if (message.type === IPC.progressReply) this.#progressWaiting.get(message.id)?.(message.jobs);
      },
      // A malformed answer counts the child as silent for this scrape at once (the supervisor logs it).
      (problem) => {
        if (problem.replyTo === undefined) return;
        this.#waiting.get(problem.replyTo)?.(undefined);
        this.#progressWaiting.get(problem.replyTo)?.(undefined);
      },
    );
    // 'close' comes after every message the child sent has been read.
    child.once('close', () => {
      this.#children.delete(child);
      if (entry.last) this.#retired.push(cumulativeOnly(entry.last));
    });
  }

  /** A child died and is being restarted. */
  restarted(): void {
    this.#restarts += 1;
  }

  /** The summed metrics, for one scrape. Never rejects for a child: one that is silent is counted as such. */
  async render(): Promise<RenderedMetrics> {
    const answers = await Promise.all([...this.#children].map(([child, entry]) => this.#ask(child, entry)));
    this.#missing = answers.filter((answer) => answer.missing).length;
    this.#missed += this.#missing;
    if (this.#retired.length > 1) this.#retired = [await promClient().AggregatorRegistry.aggregate(this.#retired).getMetricsAsJSON()];
    const parts = [...this.#retired, ...answers.map((answer) => answer.metrics), await this.registry.getMetricsAsJSON()];
    const summed = promClient().AggregatorRegistry.aggregate(parts);
    return { contentType: summed.contentType, body: await summed.metrics() };
  }

  /**
   * Every child's running jobs with progress, merged (oldest report first); `missing` counts the
   * children that did not answer within the deadline (their jobs are not listed). Never rejects.
   */
  async progress(): Promise<ProgressReport & { readonly missing: number }> {
    const answers = await Promise.all([...this.#children.keys()].map((child) => this.#askProgress(child)));
    const jobs = answers.flatMap((answer) => answer ?? []).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    return { jobs, missing: answers.filter((answer) => answer === undefined).length };
  }

  async #askProgress(child: ChildProcess): Promise<ProgressEntry[] | undefined> {
    if (!child.connected) return undefined;
    const id = this.#nextId++;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<ProgressEntry[] | undefined>((resolve) => {
      this.#progressWaiting.set(id, resolve);
      timer = setTimeout(() => resolve(undefined), this.#timeoutMs);
    });
    try {
      sendToChild(child, { type: IPC.progressRequest, id }, (error) => {
        if (error) this.#progressWaiting.get(id)?.(undefined);
      });
    } catch {
      this.#progressWaiting.get(id)?.(undefined);
    }
    const jobs = await answer;
    clearTimeout(timer);
    this.#progressWaiting.delete(id);
    return jobs;
  }

  async #ask(child: ChildProcess, entry: ChildMetrics): Promise<{ metrics: MetricJson[]; missing: boolean }> {
    const stale = (): { metrics: MetricJson[]; missing: boolean } => ({ metrics: cumulativeOnly(entry.last ?? []), missing: true });
    if (!child.connected) return stale();
    const id = this.#nextId++;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<MetricJson[] | undefined>((resolve) => {
      this.#waiting.set(id, resolve);
      // A child that dies meanwhile is also settled by this timer: no listener per scrape on the child.
      timer = setTimeout(() => resolve(undefined), this.#timeoutMs);
    });
    try {
      sendToChild(child, { type: IPC.metricsRequest, id }, (error) => {
        if (error) this.#waiting.get(id)?.(undefined);
      });
    } catch {
      this.#waiting.get(id)?.(undefined);
    }
    const metrics = await answer;
    clearTimeout(timer);
    this.#waiting.delete(id);
    return metrics ? { metrics, missing: false } : stale();
  }
}
