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

/** Why a job was buried. */
export type BuryReason = 'failed' | 'undecodable' | 'unregistered';

/** Why a job was deleted. */
export type DeleteReason = 'completed' | 'max-kicks';

/** How a stop ended. */
export interface StopResult {
  /** False when a job had to be given back, or when the worker stopped on a fatal error. */
  readonly graceful: boolean;
  /** Jobs that were running and went back to ready because the stop could not wait for them. */
  readonly releasedJobIds: readonly string[];
  /** The error that stopped the worker, when it was not asked to stop. */
  readonly error?: Error;
}

/** Event names and their arguments. */
export interface WorkerEvents {
  'job:reserved': [JobEvent];
  'job:completed': [JobEvent & { readonly durationMs: number }];
  'job:failed': [JobEvent & { readonly error: Error; readonly kicks: number }];
  'job:buried': [JobEvent & { readonly reason: BuryReason; readonly detail: string }];
  'job:deleted': [JobEvent & { readonly reason: DeleteReason }];
  'job:released': [JobEvent & { readonly reason: 'stop' }];
  'job:overrun': [JobEvent & { readonly command: string }];
  'worker:error': [Error];
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
