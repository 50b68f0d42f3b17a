/**
 * The metrics of a `bsworker` worker process: `--metrics-port` serves them over HTTP; a child of
 * `--processes` answers its supervisor over IPC instead (the supervisor serves the sum). Either way the
 * registry also has prom-client's process metrics (CPU, memory, event loop lag, GC).
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../logging/logger.js';
import { isLoopbackHost } from '../util/hosts.js';
import { answerMetricsRequests } from './cluster.js';
import { jsonRenderer, type MetricsEndpoint, registryRenderer, startMetricsServer } from './http.js';
import { ProgressBoard } from './progress.js';
import { promClient } from './prom-client.js';
import { WorkerMetrics } from './worker-metrics.js';

/** Where a process serves its metrics: over HTTP, or to its supervisor over IPC. */
export type MetricsExposure = { readonly http: { readonly host: string; readonly port: number } } | { readonly ipc: true };

/** A process's metrics: attach each Worker it runs, close at exit. */
export interface ProcessMetrics {
  readonly metrics: WorkerMetrics;
  /** The running jobs' latest progress: `GET /progress` over HTTP, the supervisor's requests over IPC. */
  readonly progress: ProgressBoard;
  /** The HTTP endpoint, when serving over HTTP. */
  readonly endpoint: MetricsEndpoint | undefined;
  /** Stops serving; over IPC, sends the last snapshot first. */
  close(): Promise<void>;
}

/** The registry of a worker process: the worker's metrics and prom-client's process metrics. */
export function processRegistry(): { registry: Registry; metrics: WorkerMetrics } {
  const { collectDefaultMetrics, Registry } = promClient();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return { registry, metrics: new WorkerMetrics({ registry }) };
}

/** Warns about serving on an address other machines can reach: the metrics have no authentication. */
export function warnIfExposed(host: string, logger: Logger): void {
  if (isLoopbackHost(host)) return;
  logger.warn(
    { host },
    `the metrics are served on ${host}, which other machines may reach, without authentication: they show tube and task names, job counts and the progress values of running jobs (/progress)`,
  );
}

/** Starts serving (HTTP) or answering (IPC) a new worker process registry. Rejects when the port cannot be bound. */
export async function exposeProcessMetrics(exposure: MetricsExposure, logger: Logger): Promise<ProcessMetrics> {
  const { registry, metrics } = processRegistry();
  const progress = new ProgressBoard();
  if ('ipc' in exposure) {
    const finish = answerMetricsRequests(registry, process, progress);
    return { metrics, progress, endpoint: undefined, close: finish };
  }
  const { host, port } = exposure.http;
  warnIfExposed(host, logger);
  const endpoint = await startMetricsServer({
    host,
    port,
    render: registryRenderer(registry),
    documents: { '/progress': jsonRenderer(() => progress.snapshot()) },
    onError: (error) => logger.error({ err: error }, 'rendering the metrics failed'),
  });
  logger.info({ url: endpoint.url, host: endpoint.host, port: endpoint.port }, `metrics at ${endpoint.url}`);
  return { metrics, progress, endpoint, close: () => endpoint.close() };
}
