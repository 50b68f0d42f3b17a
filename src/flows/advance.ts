/**
 * The worker's side of chains, groups and results: what it does on the connection that reserved a job,
 * after the task succeeded and before the job is deleted, so that a crash in between repeats a step
 * (the job runs again and does it again) rather than loses one.
 *
 * - A chain link puts the next link, with its place and the links after it, into the next link's tube
 *   on the same server.
 * - A group member deletes its barrier job, then reads the barrier tube's counts (`stats-tube`, one
 *   atomic read on the server): when no job is left, it kicks the delayed callback. `kick-job` moves a
 *   delayed job once; a second kick, by a member that finished at the same moment, finds it ready or
 *   reserved and answers NOT_FOUND, so the callback is queued once however many members see the empty
 *   barrier. A member that dies between its barrier delete and the kick leaves the callback to its own
 *   delay, after which it runs anyway (see {@link barrierLeft}).
 * - A job asked for its result puts it into the caller's reply tube, unless nobody watches that tube
 *   any more (the caller went away): then the result is dropped, never stored.
 */
import { NotFoundError } from '../beanstalk/errors.js';
import type { Beanstalk, PutParams, TubeStats } from '../beanstalk/types.js';
import { encodeCallText } from '../envelope/envelope.js';
import { toWireKwargs } from '../envelope/json.js';
import { PUT_DEFAULTS } from '../tasks/put-options.js';
import type { ChordMeta, Flow, ReplyMeta } from './meta.js';

/** How the continuation of a successful job could not be made: the job fails with this, its chain stops. */
export class FlowStepError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlowStepError';
  }
}

/** The jobs still in a tube, whatever their state. */
function jobsIn(stats: TubeStats | null): number {
  return stats === null ? 0 : stats.ready + stats.reserved + stats.delayed + stats.buried;
}

/**
 * How many members of a callback's group have not yet succeeded: 0 lets the callback run. One
 * `stats-tube`; a tube that no longer exists (every barrier job deleted) counts as empty.
 */
export async function barrierLeft(connection: Beanstalk, chord: ChordMeta): Promise<number> {
  return jobsIn(await connection.statsTube(chord.tube));
}

/**
 * The steps of a successful job's flow, in order: the chain's next link, the group barrier, the reply.
 * Rejects with the error that should fail the job when the next link or the barrier step cannot be
 * done; a result that cannot be delivered never fails a job that succeeded (it becomes an error reply,
 * or a log line).
 */
export async function advanceFlow(connection: Beanstalk, flow: Flow, value: unknown): Promise<void> {
  const { chain, group, reply } = flow;
  if (chain !== undefined && chain.next.length > 0) {
    const [link, ...rest] = chain.next as [NonNullable<(typeof chain.next)[0]>, ...typeof chain.next];
    let kwargs = link.kwargs;
    if (link.pipe !== undefined) {
      if (value === undefined) {
        throw new FlowStepError(
          `link ${chain.index + 1} of ${chain.of} returned nothing, and the next link takes its return value as \`${link.pipe}\``,
        );
      }
      kwargs = { ...kwargs, [link.pipe]: value };
    }
    const meta: Record<string, unknown> = { chain: { index: chain.index + 1, of: chain.of, next: rest } };
    if (reply !== undefined) meta.reply = reply;
    let text: string;
    try {
      text = encodeCallText(link.func_name, link.tube, kwargs, meta).text;
    } catch (error) {
      throw new FlowStepError(`the next link of the chain cannot be encoded: ${(error as Error).message}`, { cause: error });
    }
    const params: PutParams = {
      priority: link.priority ?? PUT_DEFAULTS.priority,
      delaySeconds: link.delay ?? PUT_DEFAULTS.delay,
      ttrSeconds: link.ttr ?? PUT_DEFAULTS.ttr,
    };
    try {
      await connection.putInTube(link.tube, Buffer.from(text, 'utf8'), params);
    } catch (error) {
      throw new FlowStepError(`the next link of the chain could not be put: ${(error as Error).message}`, { cause: error });
    }
  }
  if (group !== undefined) {
    // The result first, then the barrier: a callback that finds the barrier empty finds every result.
    if (group.results !== undefined) await putMemberResult(connection, group.results, group.index ?? 0, value);
    try {
      await connection.delete(group.barrier);
    } catch (error) {
      // Already gone: this member ran before (a crash after the delete) or an operator cleared it.
      if (!(error instanceof NotFoundError)) throw error;
    }
    if (group.callback !== undefined && jobsIn(await connection.statsTube(group.tube)) === 0) {
      await connection.kickJob(group.callback).catch((error: unknown) => {
        // Already kicked by another member, running, or done: exactly what makes the kick safe to repeat.
        if (!(error instanceof NotFoundError)) throw error;
      });
    }
  }
  if (reply !== undefined && (chain === undefined || chain.next.length === 0)) await sendReply(connection, reply, { ok: true, value });
}

/**
 * How long a member's result may stay reserved by a collecting callback before beanstalkd hands it back:
 * longer than any callback should run; a callback that dies gives them back at once with its connection.
 */
const RESULT_TTR_SECONDS = 3_600;

/** Puts a group member's return value where its callback collects it. */
async function putMemberResult(connection: Beanstalk, tube: string, index: number, value: unknown): Promise<void> {
  let text: string;
  try {
    text = JSON.stringify(toWireKwargs({ member: index, ...(value === undefined ? {} : { value }) }));
  } catch (error) {
    throw new FlowStepError(`the return value cannot be handed to the group's callback: ${(error as Error).message}`, { cause: error });
  }
  try {
    await connection.putInTube(tube, Buffer.from(text, 'utf8'), { priority: index, delaySeconds: 0, ttrSeconds: RESULT_TTR_SECONDS });
  } catch (error) {
    throw new FlowStepError(`the return value could not be put for the group's callback: ${(error as Error).message}`, { cause: error });
  }
}

/** What a reply carries besides its token. */
export type ReplyPayload =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: { readonly name: string; readonly message: string; readonly reason?: string } }
  | { readonly progress: unknown };

/** How {@link sendReply} ended. */
export type ReplyResult = 'sent' | 'nobody-waits' | 'too-big' | 'refused';

/**
 * Puts a reply into the caller's reply tube on `connection`'s server, when someone still watches it
 * (one `stats-tube` first, unless `knownWatched`: a job's later progress reports skip it).
 * A value JSON cannot carry, or one too big for the server, is replaced by an error reply that says so:
 * the caller learns why instead of waiting for its timeout.
 */
export async function sendReply(
  connection: Beanstalk,
  reply: ReplyMeta,
  payload: ReplyPayload,
  knownWatched = false,
): Promise<ReplyResult> {
  if (!knownWatched) {
    const stats = await connection.statsTube(reply.tube);
    if (stats === null || stats.watching === 0) return 'nobody-waits';
  }
  let body = replyBody(reply.token, payload);
  let result: ReplyResult = 'sent';
  // A progress value that cannot go is dropped: the job goes on, and the next report may fit.
  if ('progress' in payload && (body === undefined || body.length > connection.maxJobSize)) return 'refused';
  if (body === undefined) {
    body = replyBody(reply.token, {
      ok: false,
      error: { name: 'ResultEncodingError', message: 'the task succeeded, but its return value cannot be carried as JSON' },
    }) as Buffer;
  } else if (body.length > connection.maxJobSize) {
    result = 'too-big';
    body = replyBody(reply.token, {
      ok: false,
      error: {
        name: 'ResultTooBigError',
        message: `the task succeeded, but its result (${body.length} bytes) is larger than the server's max-job-size (${connection.maxJobSize})`,
      },
    }) as Buffer;
  }
  // Results are for a caller that is waiting now: urgent, and never delayed.
  await connection.putInTube(reply.tube, body, { priority: 0, delaySeconds: 0, ttrSeconds: PUT_DEFAULTS.ttr });
  return result;
}

/** `{"token", ...payload}` as JSON; undefined when the value cannot be carried. */
function replyBody(token: string, payload: ReplyPayload): Buffer | undefined {
  let carried: Record<string, unknown>;
  try {
    // The same check as kwargs: a Map, a BigInt or a cycle is refused rather than silently changed.
    carried = toWireKwargs({ token, ...wrapValue(payload) });
  } catch {
    return undefined;
  }
  return Buffer.from(JSON.stringify(carried), 'utf8');
}

/** `undefined` is no JSON value: a task that returns nothing replies without a `value`. */
function wrapValue(payload: ReplyPayload): Record<string, unknown> {
  if ('value' in payload && payload.value === undefined) return { ok: true };
  if ('progress' in payload && payload.progress === undefined) return { progress: null };
  return payload as Record<string, unknown>;
}
