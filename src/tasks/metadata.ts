/**
 * Task metadata lives on the function itself through reflect-metadata, so that `queue.put(fn, kwargs)`
 * can find the tube and name of a decorated method whose type TypeScript could not change.
 */
import 'reflect-metadata';
import type { TaskMetadata } from './types.js';

/** The reflect-metadata key under which a task's {@link TaskMetadata} is stored. */
export const TASK_METADATA_KEY = 'bsworker:task';

/** Records `metadata` on every given function. */
export function setTaskMetadata(metadata: TaskMetadata, ...targets: object[]): void {
  for (const target of targets) Reflect.defineMetadata(TASK_METADATA_KEY, metadata, target);
}

/** The metadata of a task function or Putter, or undefined when it is not a registered task. */
export function getTaskMetadata(target: unknown): TaskMetadata | undefined {
  if ((typeof target !== 'function' && typeof target !== 'object') || target === null) return undefined;
  return Reflect.getOwnMetadata(TASK_METADATA_KEY, target) as TaskMetadata | undefined;
}
