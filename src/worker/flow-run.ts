/**
 * One job's flow (chain, group, reply) while a worker runs it: what the task run needs from it (where
 * the return value goes, where progress goes) and what happens after the run. Made only for a job whose
 * `meta` asks for a flow; see ../flows/ for the wire shapes and the steps.
 */
import { advanceFlow, barrierLeft, sendReply } from '../flows/advance.js';
import { type CollectedResults, collectResults } from '../flows/collect.js';
import type { ChordMeta, ChordResultsMeta, Flow } from '../flows/meta.js';
import { ProgressSender } from '../flows/progress.js';
import { backoffDelay } from '../util/backoff.js';
import type { Outcomes } from './outcomes.js';
import type { JobContext, JobStatsCache } from './process-job.js';
import type { Reservation } from './reservation.js';
import type { RunTaskInput } from './run-task.js';
import { failureOf } from './run-task.js';

/**
 * How long a group's callback waits, at first and at most, before looking at its barrier again when it
 * ran (its fallback delay ran out) while members were still unfinished. The last member's kick is what
 * normally starts it; these re-checks only matter when that kick was lost (a member died between its
 * barrier delete and the kick) or a member is buried waiting for an operator.
 */
const BARRIER_RECHECK_S = { initial: 30, max: 300, jitter: 0.2 };

/** A job's flow for the length of one run. */
export class FlowRun {
  readonly #output: { value: unknown } = { value: undefined };
  readonly #progress: ProgressSender | undefined;
  /** A group callback's members' results, held while it runs. */
  #collected: CollectedResults | undefined;

  constructor(
    readonly flow: Flow,
    private readonly reservation: Reservation,
    private readonly out: Outcomes,
    private readonly ctx: JobContext,
  ) {
    const { reply } = flow;
    this.#progress = reply === undefined ? undefined : new ProgressSender(reservation.connection, reply, () => out.log);
  }

  /** What {@link runTask} needs: a place for the return value, and a sink for progress. */
  runInput(): Pick<RunTaskInput, 'output' | 'onProgress'> {
    return { output: this.#output, onProgress: (value) => this.#onProgress(value) };
  }

  #onProgress(value: unknown): void {
    if (this.ctx.listens('job:progress')) this.ctx.emit('job:progress', { ...this.reservation.event, value });
    this.#progress?.report(value);
  }

  /**
   * A group callback's members' results, reserved on a connection of its own to the job's server;
   * the error (which fails the callback) when they cannot all be read.
   */
  async collectResults(meta: ChordResultsMeta): Promise<readonly unknown[] | Error> {
    try {
      const connection = await this.ctx.openConnection(this.reservation.connection.address);
      this.#collected = await collectResults(connection, meta);
      return this.#collected.values;
    } catch (error) {
      return failureOf(error);
    }
  }

  /** Gives back results that a success did not consume. */
  async close(): Promise<void> {
    await this.#collected?.giveBack();
  }

  /** After a successful run: the chain's next link, the barrier, the result. Resolves to the error that fails the job, if any. */
  async advance(): Promise<Error | undefined> {
    try {
      await this.#progress?.flush();
      // Before the callback's own delete: a crash in between runs the callback again without its results,
      // which fails it (buried, not run twice on half the results).
      await this.#collected?.consume();
      await advanceFlow(this.reservation.connection, this.flow, this.#output.value);
      return undefined;
    } catch (error) {
      return failureOf(error);
    }
  }

  /**
   * After a failure that no retry follows (buried, dead-lettered, discarded): a caller waiting for the
   * result is told, with the error's name and message. A kick may still run the job again; its caller
   * has had its answer by then.
   */
  async failed(error: Error, reason: string): Promise<void> {
    const { reply } = this.flow;
    if (reply === undefined) return;
    try {
      await this.#progress?.flush();
      await sendReply(this.reservation.connection, reply, { ok: false, error: { name: error.name, message: error.message, reason } });
    } catch (sendError) {
      this.out.log.warn({ err: sendError }, 'the failure could not be sent to the caller waiting for the result');
    }
  }
}

/**
 * A group's callback reserved while members are unfinished: released, unrun, to look again later.
 * Resolves to true when the job was released (or given back); false when the barrier is empty and the
 * callback should run now. Each re-check counts as a release in beanstalkd's counters.
 */
export async function waitForBarrier(chord: ChordMeta, out: Outcomes, stats: JobStatsCache): Promise<boolean> {
  const { connection } = out;
  let left: number;
  try {
    left = await barrierLeft(connection, chord);
  } catch (error) {
    out.log.error({ err: error }, "could not read the group's barrier; giving the callback back by dropping the connection");
    await out.dropReservation();
    return true;
  }
  if (left === 0) return false;
  const counters = await stats.require(out.ctx.logger);
  if (!counters) return true;
  const delaySeconds = Math.round(backoffDelay(counters.releases + 1, BARRIER_RECHECK_S));
  if (await out.releaseUnrun(counters.priority, delaySeconds)) {
    out.log.info(
      { membersLeft: left, delaySeconds },
      `group callback waits: ${left} member(s) not done yet; looking again in ${delaySeconds} s`,
    );
    out.ctx.emit('job:released', { ...out.event, reason: 'barrier', delaySeconds });
  }
  return true;
}
