/**
 * The abort switch of one running job, made lazily: an AbortController per job costs more than a no-op
 * task, and most tasks never read their signal. The controller is created when the task first reads
 * `ctx.signal`; an abort that came before is replayed onto it.
 */
export class JobAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #listener: ((reason: unknown) => void) | undefined;

  /** The signal the task sees; aborted already when the job was aborted before the first read. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** True once {@link abort} was called. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Aborts the job (timeout, forced stop): the signal fires and the runner's listener is called. Once only. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.(reason);
  }

  /** Sets the one listener (the job's runner), called at once when already aborted. */
  onAbort(listener: (reason: unknown) => void): void {
    if (this.#aborted) listener(this.#reason);
    else this.#listener = listener;
  }
}
