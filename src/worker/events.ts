/** The events a Worker emits, and an emitter whose listeners can never break the loop. */
import { EventEmitter } from 'node:events';

/** What every job event carries. */
export interface JobEvent {
  readonly jobId: string;
  /** The tube the job was reserved from (undefined when it could not be learned). */
  readonly tube: string | undefined;
  /** The task name from the body (undefined when the body could not be decoded). */
  readonly task: string | undefined;
}

/** Why a job was buried. `invalid`: its kwargs failed the task's schema, so it never ran. */
export type BuryReason = 'failed' | 'undecodable' | 'unregistered' | 'crashed' | 'invalid';

/** Why a job was deleted. */
export type DeleteReason =
  | 'completed'
  | 'max-kicks'
  | 'dead-letter'
  /** An unfinished failure-record copy, deleted unrun: the job it copies is the live one. */
  | 'duplicate';

/** How a stop ended. */
export interface StopResult {
  /** False when a running job had to be given back. */
  readonly graceful: boolean;
  /** Jobs that were running and went back to ready because the stop could not wait for them. */
  readonly releasedJobIds: readonly string[];
}

/** Event names and their arguments. */
export interface WorkerEvents {
  'job:reserved': [JobEvent];
  'job:completed': [JobEvent & { readonly durationMs: number }];
  /** `durationMs`: how long the failed run took (the metrics' duration histogram reads it). */
  'job:failed': [JobEvent & { readonly error: Error; readonly kicks: number; readonly attempt: number; readonly durationMs?: number }];
  /**
   * `buriedAs` is the id of the copy that was buried with the failure record (the job's id changes);
   * absent when the job itself was buried (no record: a server older than 1.12, a body that is not a
   * JSON object, or records turned off).
   */
  'job:buried': [JobEvent & { readonly reason: BuryReason; readonly detail: string; readonly buriedAs?: string }];
  /** `body` is set when the job failed for good (reason `max-kicks` or `dead-letter`). */
  'job:deleted': [JobEvent & { readonly reason: DeleteReason; readonly body?: string }];
  /**
   * `retry`: released with `delaySeconds` for another attempt. `stop`: given back by a stop. `barrier`:
   * a group's callback whose members have not all succeeded, released unrun to look again later.
   */
  'job:released': [JobEvent & { readonly reason: 'retry' | 'stop' | 'barrier'; readonly delaySeconds?: number }];
  /** A running task reported progress (`ctx.progress(value)`). Emitted only while someone listens. */
  'job:progress': [JobEvent & { readonly value: unknown }];
  /**
   * The job's task is over its rate limit: the job is held (its TTR kept alive) until its turn, about
   * `waitMs` from now. `holdsPlace`: it keeps its run place while it waits (the task already has as many
   * waiting jobs outside the places as the bound allows).
   */
  'job:throttled': [JobEvent & { readonly waitMs: number; readonly holdsPlace: boolean }];
  /**
   * The job outlived its TTR: beanstalkd may have handed it to another worker, so it may run twice.
   * `command` is what noticed it (`run`, `keep-alive`, or the settling command that found no job).
   */
  'job:overrun': [JobEvent & { readonly command: string; readonly detail: string }];
  /**
   * An error the worker reported and went on after (a lost connection, a failed reserve, a bug while
   * processing a job). The second argument names the server it concerns (`host:port`).
   */
  'worker:error': [Error, { readonly server: string }];
  /**
   * The engine got a connection back after losing all of a lane's; `slot` is the lane's index (the
   * watched tube's, or the waiting lane's after them), `attempts` counts the tries it took, and
   * `server` names the server (`host:port`).
   */
  'worker:reconnected': [{ readonly slot: number; readonly attempts: number; readonly server: string }];
  'worker:stopped': [StopResult];
}

/**
 * An EventEmitter whose `emitSafely` calls each listener in isolation: a listener that throws, or returns
 * a promise that rejects, is reported to `onListenerError` and the others still run.
 */
export class SafeEmitter<Events extends Record<keyof Events, unknown[]>> extends EventEmitter<Events> {
  /** Called with whatever a listener threw. */
  protected onListenerError(_error: unknown, _event: string): void {}

  /** Emits `event` to every listener, each in its own try/catch. */
  protected emitSafely<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
    for (const listener of this.rawListeners(event as never) as unknown as ((...a: unknown[]) => unknown)[]) {
      try {
        const result = listener.apply(this, args);
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          (result as Promise<unknown>).then(undefined, (error: unknown) => this.onListenerError(error, event));
        }
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}
