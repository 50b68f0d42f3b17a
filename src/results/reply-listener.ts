/**
 * The caller's side of results: one reply tube per JobQueue, named with 64 random bits so that no
 * other caller reads it by accident, watched on every server the queue puts to, from just before the
 * first `put(..., { result: true })` until the queue closes.
 *
 * The tube's watch is also what bounds storage. A worker puts a reply only while someone watches the
 * reply tube (`stats-tube`'s `current-watching`), so the results of a caller that went away are dropped,
 * never stored; the only replies that can be left behind are those put in the moment between that
 * check and the caller's connection closing, and the next listener to open on that server deletes
 * them (it sweeps reply tubes that nobody watches). A reply that arrives for a result nobody waits for
 * any more (timed out) is deleted on arrival.
 *
 * Each server's connection loops on `reserve-with-timeout` only while results are awaited, so an idle
 * queue costs nothing and does not keep the process alive.
 */
import { randomBytes } from 'node:crypto';
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import type { Beanstalk } from '../beanstalk/types.js';
import type { Logger } from '../logging/logger.js';
import { backoffDelay } from '../util/backoff.js';
import { failedOutcome, PendingResult, unavailableOutcome } from './result-job.js';

/** Every reply tube's name starts with this; the sweep looks for it. */
export const REPLY_TUBE_PREFIX = 'bsworker.reply.';

/** How long one `reserve-with-timeout` of the loop waits: a close is noticed within it. */
const RESERVE_SECONDS = 1;

/** At most this many stale replies are deleted per sweep of one server (the sweep runs on every open). */
const SWEEP_LIMIT = 1_000;

/** Options of {@link ReplyListener}. */
export interface ReplyListenerOptions {
  readonly addresses: readonly ServerAddress[];
  readonly connect: ConnectFunction;
  readonly connectTimeoutMs: number;
  readonly logger: () => Logger;
}

/** One server's connection and its reserve loop. */
interface ServerListen {
  readonly address: ServerAddress;
  connection: Beanstalk | undefined;
  opened: Promise<void> | undefined;
  looping: boolean;
}

/** A queue's reply tube and the results awaited through it. */
export class ReplyListener {
  /** This queue's reply tube. */
  readonly tube = `${REPLY_TUBE_PREFIX}${randomBytes(8).toString('hex')}`;
  readonly #pending = new Map<string, PendingResult<unknown>>();
  readonly #servers: ServerListen[];
  readonly #options: ReplyListenerOptions;
  #nextToken = 1;
  #closed = false;

  constructor(options: ReplyListenerOptions) {
    this.#options = options;
    this.#servers = options.addresses.map((address) => ({ address, connection: undefined, opened: undefined, looping: false }));
  }

  /**
   * Registers an awaited result and makes sure the reply tube is watched everywhere before its job is
   * put: a worker that finished before the watch would find nobody waiting and drop the result.
   */
  async register<R>(): Promise<PendingResult<R>> {
    if (this.#closed) throw new Error('the queue is closed');
    await Promise.all(this.#servers.map((server) => this.#open(server)));
    const token = String(this.#nextToken++);
    const pending = new PendingResult<R>(token, (gone) => this.#pending.delete(gone));
    this.#pending.set(token, pending as PendingResult<unknown>);
    for (const server of this.#servers) this.#loop(server);
    return pending;
  }

  /** Forgets a result whose put failed: no reply can come for it. */
  unregister(token: string): void {
    this.#pending.delete(token);
  }

  /** Stops listening: awaited results reject with ResultUnavailableError, and the reply tube is no longer watched. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const pending of this.#pending.values()) pending.settle(unavailableOutcome(pending.id, 'the queue was closed'));
    this.#pending.clear();
    await Promise.all(this.#servers.map((server) => server.connection?.destroy()));
  }

  #open(server: ServerListen): Promise<void> {
    if (server.connection !== undefined && !server.connection.isClosed) return Promise.resolve();
    server.opened ??= this.#connect(server).finally(() => {
      server.opened = undefined;
    });
    return server.opened;
  }

  async #connect(server: ServerListen): Promise<void> {
    const { connectTimeoutMs } = this.#options;
    const connection = await this.#options.connect(server.address, {
      connectTimeoutMs,
      stallTimeoutMs: connectTimeoutMs,
      unrefWhenIdle: true,
    });
    try {
      await sweep(connection, this.tube, this.#options.logger);
      await connection.watch(this.tube);
      await connection.ignore('default');
    } catch (error) {
      await connection.destroy();
      throw error;
    }
    if (this.#closed) {
      await connection.destroy();
      return;
    }
    server.connection = connection;
  }

  /** Reserves replies on one server while results are awaited; one loop per server at a time. */
  #loop(server: ServerListen): void {
    if (server.looping) return;
    server.looping = true;
    void this.#run(server).finally(() => {
      server.looping = false;
      // A result registered as the loop was ending.
      if (!this.#closed && this.#pending.size > 0) this.#loop(server);
    });
  }

  async #run(server: ServerListen): Promise<void> {
    let failures = 0;
    while (!this.#closed && this.#pending.size > 0) {
      try {
        await this.#open(server);
        const connection = server.connection as Beanstalk;
        const job = await connection.reserve(RESERVE_SECONDS);
        failures = 0;
        if (job === null) continue;
        this.#deliver(job.body);
        await connection.delete(job.id);
      } catch (error) {
        if (this.#closed) return;
        failures += 1;
        const delayMs = Math.round(backoffDelay(failures, { initial: 100, max: 5_000, jitter: 0.5 }));
        this.#options
          .logger()
          .warn(
            { err: error, server: formatAddress(server.address), delayMs },
            'the reply listener lost its connection; results put while it is away are dropped by the workers',
          );
        server.connection?.destroy().catch(() => undefined);
        server.connection = undefined;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /** Hands one reply to its awaited result; a reply for nobody (timed out, or not ours) is only deleted. */
  #deliver(body: Buffer): void {
    let reply: unknown;
    try {
      reply = JSON.parse(body.toString('utf8'));
    } catch {
      return;
    }
    if (typeof reply !== 'object' || reply === null) return;
    const { token, ok, value, error, progress } = reply as Record<string, unknown>;
    if (typeof token !== 'string') return;
    const pending = this.#pending.get(token);
    if (pending === undefined) return;
    if (Object.hasOwn(reply, 'progress')) {
      pending.report(progress);
      return;
    }
    this.#pending.delete(token);
    if (ok === true) pending.settle({ ok: true, value });
    else {
      const failure = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
      pending.settle(
        failedOutcome(
          pending.id,
          typeof failure.name === 'string' ? failure.name : 'Error',
          typeof failure.message === 'string' ? failure.message : 'the job failed',
          typeof failure.reason === 'string' ? failure.reason : 'failed',
        ),
      );
    }
  }
}

/**
 * Deletes the replies left in reply tubes that nobody watches (their callers went away between a
 * worker's check and its put). Bounded per call; a tube being swept by another listener at the same
 * time only shares the work.
 */
async function sweep(connection: Beanstalk, own: string, logger: () => Logger): Promise<void> {
  const tubes = (await connection.listTubes()).filter((tube) => tube.startsWith(REPLY_TUBE_PREFIX) && tube !== own);
  let deleted = 0;
  for (const tube of tubes) {
    if (deleted >= SWEEP_LIMIT) break;
    const stats = await connection.statsTube(tube);
    if (stats === null || stats.watching > 0 || stats.ready === 0) continue;
    await connection.watch(tube);
    await connection.ignore('default').catch(() => undefined);
    try {
      while (deleted < SWEEP_LIMIT) {
        const job = await connection.reserve(0);
        if (job === null) break;
        await connection.delete(job.id);
        deleted += 1;
      }
    } finally {
      await connection.watch('default');
      await connection.ignore(tube);
    }
  }
  if (deleted > 0) logger().info({ deleted }, 'deleted results left behind by callers that went away');
}
