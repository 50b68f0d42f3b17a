/**
 * What a registered task runs with, as `bsworker check`, the HTTP API (`GET /api/tasks`) and the
 * dashboard show it: its own options, else the defaults, and which schema library checks its kwargs.
 */
import { BACKOFF_DEFAULTS } from '../worker/backoff.js';
import { PUT_DEFAULTS } from './put-options.js';
import type { RegisteredTask } from './registry.js';
import type { BackoffOptions } from './types.js';

/** One task, with the options it runs with (its own, else the defaults). */
export interface TaskDescription {
  readonly name: string;
  readonly priority: number;
  readonly delay: number;
  readonly ttr: number;
  readonly retries: number;
  /** The retry delays; they matter only when `retries` is above 0. */
  readonly backoff: Readonly<Required<BackoffOptions>>;
  /** null: no limit. */
  readonly timeoutMs: number | null;
  /** kwargs keys never logged, on top of the worker's `--redact`. */
  readonly redact: readonly string[];
  /** The schema's library (`"zod"`, `"valibot"`, ...), or null when the task has none. */
  readonly schema: { readonly vendor: string } | null;
}

/** The tasks of one tube. */
export interface TubeTasks {
  readonly tube: string;
  /** Sorted by name. */
  readonly tasks: readonly TaskDescription[];
}

/** Describes one task. */
export function describeTask(task: RegisteredTask): TaskDescription {
  const { options } = task;
  const vendor = options.schema?.['~standard'].vendor;
  return {
    name: task.name,
    priority: options.priority ?? PUT_DEFAULTS.priority,
    delay: options.delay ?? PUT_DEFAULTS.delay,
    ttr: options.ttr ?? PUT_DEFAULTS.ttr,
    retries: options.retries ?? 0,
    backoff: { ...BACKOFF_DEFAULTS, ...options.backoff },
    timeoutMs: options.timeoutMs ?? null,
    redact: [...(options.redact ?? [])],
    schema: options.schema === undefined ? null : { vendor: typeof vendor === 'string' ? vendor : 'unknown' },
  };
}

/** Every task grouped by tube, tubes and tasks sorted by name. */
export function describeTasks(tasks: readonly RegisteredTask[]): TubeTasks[] {
  const byTube = new Map<string, TaskDescription[]>();
  for (const task of tasks) {
    const list = byTube.get(task.tube) ?? [];
    list.push(describeTask(task));
    byTube.set(task.tube, list);
  }
  return [...byTube.entries()]
    .sort(([a], [b]) => compare(a, b))
    .map(([tube, list]) => ({ tube, tasks: list.sort((a, b) => compare(a.name, b.name)) }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
