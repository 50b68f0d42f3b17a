/**
 * `ctx.progress(value)` on its way to the caller: a put into the caller's reply tube, at most one in
 * flight per job. A task that reports progress in a tight loop does not queue a put per call: while one
 * put is unanswered, later values replace each other and only the newest goes next, so the cost is at
 * most one put per round trip (the first also reads the reply tube's `stats-tube`, to learn whether the
 * caller still waits), and the caller always ends with the last value reported.
 */
import type { Beanstalk } from '../beanstalk/types.js';
import type { Logger } from '../logging/logger.js';
import { sendReply } from './advance.js';
import type { ReplyMeta } from './meta.js';

/** Nothing waiting to be sent. */
const NONE = Symbol('none');

/** Sends one job's progress reports to its caller, coalescing those that come faster than a round trip. */
export class ProgressSender {
  #sending: Promise<void> | undefined;
  #next: unknown = NONE;
  #stopped = false;
  /** The caller was watching at the first report: later reports spare the `stats-tube`. */
  #watched = false;

  constructor(
    private readonly connection: Beanstalk,
    private readonly reply: ReplyMeta,
    private readonly log: () => Logger,
  ) {}

  /** Queues `value`; never throws (a lost report is logged, and the job goes on). */
  report(value: unknown): void {
    if (this.#stopped) return;
    this.#next = value;
    this.#sending ??= this.#drain();
  }

  /**
   * Waits for the report in flight, then stops: called before the result is sent, so that a late
   * progress report never arrives after the result.
   */
  async flush(): Promise<void> {
    await this.#sending;
    this.#stopped = true;
  }

  async #drain(): Promise<void> {
    while (this.#next !== NONE && !this.#stopped) {
      const value = this.#next;
      this.#next = NONE;
      try {
        const sent = await sendReply(this.connection, this.reply, { progress: value }, this.#watched);
        if (sent === 'nobody-waits') this.#stopped = true;
        else this.#watched = true;
        if (sent === 'refused') this.log().warn('a progress value was not sent: JSON cannot carry it, or it is larger than max-job-size');
      } catch (error) {
        this.log().warn({ err: error }, 'a progress report could not be sent to the caller');
        this.#stopped = true;
      }
    }
    this.#sending = undefined;
  }
}
