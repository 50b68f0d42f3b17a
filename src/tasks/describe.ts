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
  /**
   * The schema's library (`"zod"`, `"valibot"`, ...), or null when the task has none; `jsonSchema` is
   * the kwargs' JSON Schema when the library offers one (Standard JSON Schema), else null.
   */
  readonly schema: { readonly vendor: string; readonly jsonSchema: Record<string, unknown> | null } | null;
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
    schema:
      options.schema === undefined
        ? null
        : { vendor: typeof vendor === 'string' ? vendor : 'unknown', jsonSchema: jsonSchemaOf(options.schema) },
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

/**
 * The JSON Schema of what a schema accepts, from the Standard JSON Schema interface
 * (https://standardschema.dev, `~standard.jsonSchema.input`) that zod 4.2+, ArkType and others offer
 * beside `validate`; null when the library has none or cannot express this schema (a custom refinement,
 * say). It is shown to people and tools; the kwargs are still checked by `validate` alone.
 */
function jsonSchemaOf(schema: object): Record<string, unknown> | null {
  const standard = (schema as { '~standard'?: { jsonSchema?: { input?: unknown } } })['~standard'];
  const input = standard?.jsonSchema?.input;
  if (typeof input !== 'function') return null;
  try {
    const result: unknown = input.call(standard?.jsonSchema, { target: 'draft-2020-12' });
    return typeof result === 'object' && result !== null && !Array.isArray(result) ? (result as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
