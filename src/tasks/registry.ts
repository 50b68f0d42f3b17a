/**
 * The process-wide task registry: tube -> name -> task.
 *
 * Maps, never plain objects: a job body naming `toString`, `constructor` or `__proto__` must find
 * nothing. The maps hang off `globalThis` under a `Symbol.for` key so that two copies of bsworker in one
 * process (a worker built from one, jobs importing the other) still share one registry.
 */
import type { TaskContext, TaskOptions } from './types.js';

/** One registered task, as the worker sees it. */
export interface RegisteredTask {
  readonly tube: string;
  readonly name: string;
  /** The function as the user wrote it. */
  readonly fn: (...args: never[]) => unknown;
  readonly options: TaskOptions;
  /** Calls the task with its `this` (the class, for a static method), `kwargs` and the worker's context. */
  run(kwargs: Record<string, unknown>, context?: TaskContext): unknown;
}

/**
 * Two different functions registered under one name in one tube. `bsworker check` tells it apart from
 * other load errors by its `name` (the jobs may load another copy of bsworker, whose class differs).
 */
export class DuplicateTaskError extends Error {
  constructor(tube: string, name: string) {
    super(
      `A task named \`${name}\` is already registered in tube \`${tube}\`: give one of them another name with queue.task('${tube}', { name: '...' })`,
    );
    this.name = 'DuplicateTaskError';
  }
}

type Registry = Map<string, Map<string, RegisteredTask>>;

const REGISTRY_KEY = Symbol.for('bsworker.registry.v1');

function registry(): Registry {
  const holder = globalThis as { [REGISTRY_KEY]?: Registry };
  let found = holder[REGISTRY_KEY];
  if (!(found instanceof Map)) {
    found = new Map();
    Object.defineProperty(holder, REGISTRY_KEY, { value: found, enumerable: false, configurable: false, writable: false });
  }
  return found;
}

/**
 * Adds a task. Registering the same function again under the same tube and name is a no-op; a
 * different function under a name the tube already has throws.
 */
export function registerTask(task: RegisteredTask): void {
  const all = registry();
  let tube = all.get(task.tube);
  if (!tube) {
    tube = new Map();
    all.set(task.tube, tube);
  }
  const existing = tube.get(task.name);
  if (existing && existing.fn !== task.fn) throw new DuplicateTaskError(task.tube, task.name);
  if (!existing) tube.set(task.name, task);
}

/** The task registered under `name` in `tube`, or undefined. */
export function findTask(tube: string, name: string): RegisteredTask | undefined {
  return registry().get(tube)?.get(name);
}

/** Every registered task, grouped by tube. */
export function listTasks(): RegisteredTask[] {
  return [...registry().values()].flatMap((tube) => [...tube.values()]);
}

/** Removes a task (for tests that register and drop tasks). Returns whether it was there. */
export function unregisterTask(tube: string, name: string): boolean {
  const tasks = registry().get(tube);
  const removed = tasks?.delete(name) ?? false;
  if (tasks && tasks.size === 0) registry().delete(tube);
  return removed;
}
