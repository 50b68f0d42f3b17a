/**
 * The messages between a `bsworker --processes` supervisor and its children, in one place: their types,
 * the checks that what arrives is one of them, and the helpers that send and receive them.
 *
 * Signals cannot say "force": a SIGTERM sent to the whole process group (systemd's default,
 * `kill -- -PGID`) reaches each child twice, once directly and once from the supervisor, and two
 * SIGTERMs would read as a forced stop; so forcing, and everything else, goes over the IPC channel.
 *
 * What a child sends is untrusted: task code has `process.send` too, and may write anything to the
 * channel. A message that is not one of {@link ChildMessage} is reported as malformed, never acted on.
 */
import type { ChildProcess } from 'node:child_process';
import type { Registry } from 'prom-client';
import type { ProgressEntry } from '../metrics/progress.js';

/** One metric as `Registry.getMetricsAsJSON()` gives it. */
export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/** The `type` of every message, by what it says. */
export const IPC = Object.freeze({
  /** Supervisor -> child: give running jobs back and stop now. */
  force: 'bsworker:force',
  /**
   * Supervisor -> child: a sibling died; the jobs it held are back at the head of their tubes. Check
   * the next ones for crashes before running them (Worker.checkNextJobsForCrashes).
   */
  siblingDied: 'bsworker:sibling-died',
  /** Supervisor -> child: answer with your metrics, under this `id`. */
  metricsRequest: 'bsworker:metrics-request',
  /** Child -> supervisor: I reached a recycle limit and will exit 0; replace me at once. */
  recycled: 'bsworker:recycled',
  /** Child -> supervisor: the answer to metrics request `id`. */
  metricsReply: 'bsworker:metrics-reply',
  /** Child -> supervisor: the last counts, sent when the worker has stopped. */
  metricsFinal: 'bsworker:metrics-final',
  /** Supervisor -> child: answer with your running jobs' progress, under this `id`. */
  progressRequest: 'bsworker:progress-request',
  /** Child -> supervisor: the answer to progress request `id`. */
  progressReply: 'bsworker:progress-reply',
} as const);

/** What the supervisor sends a child. */
export type SupervisorMessage =
  | { readonly type: typeof IPC.force }
  | { readonly type: typeof IPC.siblingDied }
  | { readonly type: typeof IPC.metricsRequest; readonly id: number }
  | { readonly type: typeof IPC.progressRequest; readonly id: number };

/** What a child sends the supervisor. */
export type ChildMessage =
  | { readonly type: typeof IPC.recycled }
  | { readonly type: typeof IPC.metricsReply; readonly id: number; readonly metrics: MetricJson[] }
  | { readonly type: typeof IPC.metricsFinal; readonly metrics: MetricJson[] }
  | { readonly type: typeof IPC.progressReply; readonly id: number; readonly jobs: ProgressEntry[] };

/**
 * Why a value is not a message. A metrics reply that carries a request id but malformed metrics keeps
 * the id (`replyTo`), so that the scrape waiting for it need not wait out its deadline.
 */
export interface Malformed {
  readonly ok: false;
  readonly reason: string;
  readonly replyTo?: number;
}

/** A message read: the message, or why it is not one. */
export type Decoded<M> = { readonly ok: true; readonly message: M } | Malformed;

const METRIC_TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary']);

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const isRequestId = (value: unknown): value is number => Number.isSafeInteger(value);

/** Why `value` does not have the shape `getMetricsAsJSON()` gives, or undefined when it has. */
function metricsProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'metrics is not an array';
  for (const [i, metric] of (value as unknown[]).entries()) {
    if (!isRecord(metric)) return `metrics[${i}] is not an object`;
    const { name, type, values } = metric;
    if (typeof name !== 'string') return `metrics[${i}].name is not a string`;
    if (!METRIC_TYPES.has(String(type))) return `metrics[${i}].type is not a metric type`;
    if (!Array.isArray(values)) return `metrics[${i}].values is not an array`;
    for (const entry of values as unknown[]) {
      if (!isRecord(entry) || typeof entry.value !== 'number') return `metrics[${i}] has a value that is not a number`;
    }
  }
  return undefined;
}

/** The most entries a progress reply may carry: a child's board holds at most 1,000. */
const MAX_PROGRESS_ENTRIES = 1_000;

const isNullableText = (value: unknown): boolean => value === null || typeof value === 'string';

/** Why `value` is not a list of {@link ProgressEntry}, or undefined when it is. Values are any JSON. */
function progressProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'jobs is not an array';
  if (value.length > MAX_PROGRESS_ENTRIES) return `jobs holds more than ${MAX_PROGRESS_ENTRIES} entries`;
  for (const [i, entry] of (value as unknown[]).entries()) {
    if (!isRecord(entry)) return `jobs[${i}] is not an object`;
    const { jobId, tube, task, truncated, at } = entry;
    if (
      typeof jobId !== 'string' ||
      !isNullableText(tube) ||
      !isNullableText(task) ||
      typeof truncated !== 'boolean' ||
      typeof at !== 'string'
    ) {
      return `jobs[${i}] is not a progress entry`;
    }
  }
  return undefined;
}

const malformed = (reason: string, replyTo?: number): Malformed => ({ ok: false, reason, replyTo });
const accepted = <M>(message: M): Decoded<M> => ({ ok: true, message });

/** Reads a message that arrived from a child: one of {@link ChildMessage}, or why it is not. */
export function decodeChildMessage(value: unknown): Decoded<ChildMessage> {
  if (!isRecord(value)) return malformed(`expected an object with a type, got ${value === null ? 'null' : typeof value}`);
  switch (value.type) {
    case IPC.recycled:
      return accepted({ type: IPC.recycled });
    case IPC.metricsReply: {
      if (!isRequestId(value.id)) return malformed('a metrics reply without a request id');
      const problem = metricsProblem(value.metrics);
      if (problem !== undefined) return malformed(`a metrics reply whose ${problem}`, value.id);
      return accepted({ type: IPC.metricsReply, id: value.id, metrics: value.metrics as MetricJson[] });
    }
    case IPC.metricsFinal: {
      const problem = metricsProblem(value.metrics);
      if (problem !== undefined) return malformed(`a last metrics snapshot whose ${problem}`);
      return accepted({ type: IPC.metricsFinal, metrics: value.metrics as MetricJson[] });
    }
    case IPC.progressReply: {
      if (!isRequestId(value.id)) return malformed('a progress reply without a request id');
      const problem = progressProblem(value.jobs);
      if (problem !== undefined) return malformed(`a progress reply whose ${problem}`, value.id);
      return accepted({ type: IPC.progressReply, id: value.id, jobs: value.jobs as ProgressEntry[] });
    }
    default:
      return malformed(`unknown message type ${JSON.stringify(String(value.type)).slice(0, 80)}`);
  }
}

/** Reads a message that arrived from the supervisor: one of {@link SupervisorMessage}, or why it is not. */
export function decodeSupervisorMessage(value: unknown): Decoded<SupervisorMessage> {
  if (!isRecord(value)) return malformed(`expected an object with a type, got ${value === null ? 'null' : typeof value}`);
  switch (value.type) {
    case IPC.force:
      return accepted({ type: IPC.force });
    case IPC.siblingDied:
      return accepted({ type: IPC.siblingDied });
    case IPC.metricsRequest:
      return isRequestId(value.id) ? accepted({ type: IPC.metricsRequest, id: value.id }) : malformed('a metrics request without an id');
    case IPC.progressRequest:
      return isRequestId(value.id) ? accepted({ type: IPC.progressRequest, id: value.id }) : malformed('a progress request without an id');
    default:
      return malformed(`unknown message type ${JSON.stringify(String(value.type)).slice(0, 80)}`);
  }
}

/** True when `value` is a well-formed {@link ChildMessage}. */
export const isChildMessage = (value: unknown): value is ChildMessage => decodeChildMessage(value).ok;

/** True when `value` is a well-formed {@link SupervisorMessage}. */
export const isSupervisorMessage = (value: unknown): value is SupervisorMessage => decodeSupervisorMessage(value).ok;

/**
 * Sends `message` to a child. Throws as `child.send` does when the channel is closed; without a
 * callback, a failure later is the child's 'error' event.
 */
export function sendToChild(child: Pick<ChildProcess, 'send'>, message: SupervisorMessage, callback?: (error: Error | null) => void): void {
  if (callback) child.send(message, callback);
  else child.send(message);
}

/**
 * Sends `message` to the supervisor; resolves once it is handed to the channel (the process may exit
 * then), or at once when there is no channel. Never rejects: a supervisor that is gone cannot be told.
 */
export function sendToSupervisor(message: ChildMessage, channel: NodeJS.Process = process): Promise<void> {
  return new Promise((resolve) => {
    if (!channel.connected || channel.send === undefined) return resolve();
    try {
      channel.send(message, undefined, {}, () => resolve());
    } catch {
      resolve();
    }
  });
}

/**
 * Calls `onMessage` with each well-formed message from `child`, and `onMalformed` with anything else it
 * sends. Returns a function that stops listening.
 */
export function onChildMessage(
  child: Pick<ChildProcess, 'on' | 'off'>,
  onMessage: (message: ChildMessage) => void,
  onMalformed: (problem: Malformed) => void = () => undefined,
): () => void {
  return listen(child, decodeChildMessage, onMessage, onMalformed);
}

/**
 * Calls `onMessage` with each well-formed message from the supervisor, and `onMalformed` with anything
 * else. Returns a function that stops listening.
 */
export function onSupervisorMessage(
  onMessage: (message: SupervisorMessage) => void,
  onMalformed: (problem: Malformed) => void = () => undefined,
  channel: NodeJS.Process = process,
): () => void {
  return listen(channel, decodeSupervisorMessage, onMessage, onMalformed);
}

/** The one listener both directions use: decode what arrives, then hand it on as a message or a problem. */
function listen<M>(
  channel: {
    on(event: 'message', listener: (value: unknown) => void): unknown;
    off(event: 'message', listener: (value: unknown) => void): unknown;
  },
  decode: (value: unknown) => Decoded<M>,
  onMessage: (message: M) => void,
  onMalformed: (problem: Malformed) => void,
): () => void {
  const listener = (value: unknown): void => {
    const decoded = decode(value);
    if (decoded.ok) onMessage(decoded.message);
    else onMalformed(decoded);
  };
  channel.on('message', listener);
  return () => channel.off('message', listener);
}
