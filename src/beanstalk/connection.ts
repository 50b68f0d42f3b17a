/**
 * One beanstalkd connection with a promise API: the thin layer over the protocol (./encode.ts,
 * ./replies.ts, ./reply-reader.ts, ./yaml.ts, ./errors.ts) and the pipeline (./pipeline.ts). It
 * validates every argument before anything is written, because beanstalkd does not skip the body of a
 * put it rejects but runs it as commands; it keeps track of the tube in use; and it opens and closes the
 * socket (opened through ./fivebeans-socket.ts, the only file that touches fivebeans).
 *
 * Every promise settles: the pipeline rejects whatever is pending with {@link ConnectionError} when the
 * socket closes, and a reply that means the stream is out of step (`BAD_FORMAT`...) drops the connection.
 */
import type { Socket } from 'node:net';
import { formatAddress, type ServerAddress } from './address.js';
import type { ConnectOptions } from './connect-options.js';
import {
  encodeBare,
  encodeBury,
  encodeDelete,
  encodeKick,
  encodeKickJob,
  encodePauseTube,
  encodePeek,
  encodePut,
  encodePutText,
  encodeRelease,
  encodeReserve,
  encodeReserveJob,
  encodeStatsJob,
  encodeTouch,
  encodeTubeCommand,
  isAscii,
  type PutBody,
} from './encode.js';
import { ConnectionError } from './errors.js';
import { openSocket } from './fivebeans-socket.js';
import type { Settle } from './pending-command.js';
import { MAX_IN_FLIGHT, Pipeline } from './pipeline.js';
import { connectFailure, countOf, EXPECT, idOf, jobOf, nothing, textOf, toJobStats, toTubeStats } from './replies.js';
import type { Beanstalk, JobStats, PeekedJob, PutParams, ReservedJob, ServerStats, TubeStats } from './types.js';
import {
  assertBodyLength,
  assertInteger,
  assertPriority,
  assertSeconds,
  assertTtr,
  assertTubeName,
  normaliseJobId,
  UINT32_MAX,
} from './validate.js';
import { parseYamlList, parseYamlMap, parseYamlStats } from './yaml.js';

export type { ConnectOptions };
export { MAX_IN_FLIGHT };

/** One beanstalkd connection with a promise API. Create it with {@link BeanstalkConnection.connect}. */
export class BeanstalkConnection implements Beanstalk {
  readonly address: ServerAddress;
  #maxJobSize = 65_535;
  #version = '';
  readonly #socket: Socket;
  readonly #pipe: Pipeline;
  /**
   * The tube of the last `use` written. beanstalkd runs a connection's commands in order, so every put
   * written after that `use` goes into its tube: a put into another tube is written right behind its
   * `use`, without waiting for the answer (see {@link #writeUse} for a `use` that is refused).
   */
  #usedTube = 'default';

  private constructor(address: ServerAddress, socket: Socket, pipe: Pipeline) {
    this.address = address;
    this.#socket = socket;
    this.#pipe = pipe;
  }

  /**
   * Opens a connection and reads the server's `max-job-size`. Rejects with a {@link ConnectionError}
   * that names the address (and how to start beanstalkd) when the server cannot be reached.
   */
  static async connect(address: ServerAddress, options: ConnectOptions = {}): Promise<BeanstalkConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const where = formatAddress(address);
    const pipe = new Pipeline(address, {
      commandTimeoutMs: options.commandTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs,
      unrefWhenIdle: options.unrefWhenIdle ?? false,
    });
    // An 'error' or 'close' ends the connection and rejects everything pending.
    const socket = openSocket(address, {
      onData: (chunk) => pipe.onData(chunk),
      onError: (error) =>
        pipe.handleClose(new ConnectionError(where, `lost the connection to beanstalkd at ${where}: ${error.message}`, { cause: error })),
      onClose: () => pipe.handleClose(new ConnectionError(where, `the connection to beanstalkd at ${where} closed`)),
    });
    pipe.attach(socket);
    const connection = new BeanstalkConnection(address, socket, pipe);

    // One deadline covers the TCP handshake and the first reply: a peer that accepts connections but
    // never answers (not beanstalkd, or a hung one) must not hang start() or a put.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new ConnectionError(where, `could not connect to beanstalkd at ${where}: no answer within ${timeoutMs} ms`);
        pipe.handleClose(error);
        socket.destroy();
        reject(error);
      }, timeoutMs);
    });
    const opened = new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        socket.removeListener('error', onEarlyError);
        resolve();
      };
      const onEarlyError = (error: NodeJS.ErrnoException): void => {
        socket.removeListener('connect', onConnect);
        const failure = connectFailure(where, address, error);
        pipe.handleClose(failure);
        reject(failure);
      };
      socket.once('connect', onConnect);
      socket.once('error', onEarlyError);
    });

    try {
      await Promise.race([opened, deadline]);
      // The server closing its side (it stopped or died) ends the connection at once, before a later
      // write would find out the hard way.
      socket.once('end', () => {
        pipe.handleClose(new ConnectionError(where, `beanstalkd at ${where} closed the connection`));
        socket.destroy();
      });
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      const stats = await Promise.race([connection.stats(), deadline]);
      const size = Number(stats['max-job-size']);
      if (Number.isInteger(size) && size > 0) connection.#maxJobSize = size;
      connection.#version = String(stats.version ?? '');
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return connection;
  }

  /** The server's `max-job-size`, read at connect: larger bodies are refused before they are written. */
  get maxJobSize(): number {
    return this.#maxJobSize;
  }

  /** The server's `version`, read at connect (for example to know whether it has `reserve-job`). */
  get serverVersion(): string {
    return this.#version;
  }

  /** True once the connection can no longer be used: closed, or dropped and closing. */
  get isClosed(): boolean {
    return this.#pipe.isClosed;
  }

  /** Resolves once the socket has closed. */
  get whenClosed(): Promise<void> {
    return this.#pipe.whenClosed;
  }

  /** See {@link Beanstalk.put}; `body` may also be an ASCII string (see {@link PutBody}). */
  async put(body: PutBody, params: PutParams): Promise<string> {
    this.#checkPut(body, params);
    return this.#sendPut(body, params);
  }

  /** See {@link Beanstalk.putInTube}; `body` may also be an ASCII string (see {@link PutBody}). */
  putInTube(tube: string, body: PutBody, params: PutParams): Promise<string> {
    return new Promise((resolve, reject) => this.putInTubeThen(tube, body, params, { resolve, reject }));
  }

  /**
   * {@link putInTube} without a promise of its own, for the producer's hot path: settles through
   * `settle`, exactly once. Nothing is written unless every argument is valid.
   */
  putInTubeThen(tube: string, body: PutBody, params: PutParams, settle: Settle<string>): void {
    try {
      // The tube in use was checked when its `use` was written: a put into it need not check it again.
      if (tube !== this.#usedTube) assertTubeName(tube);
      this.#checkPut(body, params);
    } catch (error) {
      settle.reject(error as Error);
      return;
    }
    // Written here and now, behind its `use` when the tube changes: puts alternating between tubes
    // used to wait a round trip for each `use`, and a burst of them woke every waiting put at each
    // answer (10,000 puts in flight over two tubes: 343 a second, against 18,000 into one tube).
    if (tube !== this.#usedTube) void this.#writeUse(tube).catch(() => undefined);
    this.#pipe.sendThen('put', undefined, EXPECT.put, putBytes(body, params), idOf, settle);
  }

  async use(tube: string): Promise<void> {
    assertTubeName(tube);
    if (tube !== this.#usedTube) await this.#writeUse(tube);
  }

  async watch(tube: string): Promise<number> {
    assertTubeName(tube);
    return this.#pipe.send('watch', undefined, EXPECT.watch, encodeTubeCommand('watch', tube), countOf);
  }

  async ignore(tube: string): Promise<number> {
    assertTubeName(tube);
    return this.#pipe.send('ignore', undefined, EXPECT.ignore, encodeTubeCommand('ignore', tube), countOf);
  }

  reserve(timeoutSeconds: number): Promise<ReservedJob | null> {
    try {
      assertSeconds(timeoutSeconds, 'timeoutSeconds');
    } catch (error) {
      return Promise.reject(error);
    }
    this.#pipe.quietFor(timeoutSeconds);
    // TIMED_OUT settles as null in the pipeline itself: no async layer here.
    return this.#pipe.send<ReservedJob | null>('reserve-with-timeout', undefined, EXPECT.reserve, encodeReserve(timeoutSeconds), jobOf);
  }

  /**
   * `reserve-job <id>` (beanstalkd 1.12 and later): reserves a ready, delayed or buried job by id on this
   * connection; null when there is no such job (or it is reserved by someone else). Older servers answer
   * UNKNOWN_COMMAND, which costs the connection: check {@link serverVersion} first.
   */
  reserveJob(id: string): Promise<ReservedJob | null> {
    let jobId: string;
    try {
      jobId = normaliseJobId(id);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#orNull(this.#pipe.send<ReservedJob | null>('reserve-job', jobId, EXPECT.reserve, encodeReserveJob(jobId), jobOf));
  }

  async delete(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#pipe.send('delete', jobId, EXPECT.delete, encodeDelete(jobId), nothing);
  }

  async release(id: string, priority: number, delaySeconds: number): Promise<void> {
    const jobId = normaliseJobId(id);
    assertPriority(priority);
    assertSeconds(delaySeconds, 'delaySeconds');
    await this.#pipe.send('release', jobId, EXPECT.release, encodeRelease(jobId, priority, delaySeconds), nothing);
  }

  async bury(id: string, priority: number): Promise<void> {
    const jobId = normaliseJobId(id);
    assertPriority(priority);
    await this.#pipe.send('bury', jobId, EXPECT.bury, encodeBury(jobId, priority), nothing);
  }

  async touch(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#pipe.send('touch', jobId, EXPECT.touch, encodeTouch(jobId), nothing);
  }

  async kick(bound: number): Promise<number> {
    assertInteger(bound, 'bound', 0, UINT32_MAX);
    return this.#pipe.send('kick', undefined, EXPECT.kick, encodeKick(bound), countOf);
  }

  async kickJob(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#pipe.send('kick-job', jobId, EXPECT.kickJob, encodeKickJob(jobId), nothing);
  }

  async peek(id: string): Promise<PeekedJob | null> {
    const jobId = normaliseJobId(id);
    return this.#pipe.send<PeekedJob | null>('peek', jobId, EXPECT.peek, encodePeek(jobId), jobOf);
  }

  async peekReady(): Promise<PeekedJob | null> {
    return this.#pipe.send<PeekedJob | null>('peek-ready', undefined, EXPECT.peek, encodeBare('peek-ready'), jobOf);
  }

  async peekDelayed(): Promise<PeekedJob | null> {
    return this.#pipe.send<PeekedJob | null>('peek-delayed', undefined, EXPECT.peek, encodeBare('peek-delayed'), jobOf);
  }

  async peekBuried(): Promise<PeekedJob | null> {
    return this.#pipe.send<PeekedJob | null>('peek-buried', undefined, EXPECT.peek, encodeBare('peek-buried'), jobOf);
  }

  // The YAML replies are parsed by ./yaml.ts: a general YAML parser (js-yaml, which fivebeans would use)
  // turns tube names like `1.0` into numbers.
  async stats(): Promise<ServerStats> {
    return parseYamlStats(await this.#pipe.send('stats', undefined, EXPECT.yaml, encodeBare('stats'), textOf));
  }

  async statsTube(tube: string): Promise<TubeStats | null> {
    assertTubeName(tube);
    const raw = await this.#pipe.send<string | null>(
      'stats-tube',
      undefined,
      EXPECT.statsTube,
      encodeTubeCommand('stats-tube', tube),
      textOf,
    );
    return raw === null ? null : toTubeStats(parseYamlMap(raw), tube);
  }

  async statsJob(id: string): Promise<JobStats | null> {
    const jobId = normaliseJobId(id);
    const raw = await this.#pipe.send<string | null>('stats-job', jobId, EXPECT.statsJob, encodeStatsJob(jobId), textOf);
    return raw === null ? null : toJobStats(parseYamlMap(raw), jobId);
  }

  async listTubes(): Promise<string[]> {
    return parseYamlList(await this.#pipe.send('list-tubes', undefined, EXPECT.yaml, encodeBare('list-tubes'), textOf));
  }

  async listTubesWatched(): Promise<string[]> {
    return parseYamlList(await this.#pipe.send('list-tubes-watched', undefined, EXPECT.yaml, encodeBare('list-tubes-watched'), textOf));
  }

  async pauseTube(tube: string, seconds: number): Promise<void> {
    assertTubeName(tube);
    assertSeconds(seconds, 'seconds');
    await this.#pipe.send('pause-tube', undefined, EXPECT.pauseTube, encodePauseTube(tube, seconds), nothing);
  }

  async quit(): Promise<void> {
    if (this.#pipe.closed) return;
    // end() sends FIN after everything already written; the server answers those commands (a pending
    // reserve answers TIMED_OUT) and then closes. A peer that never closes is cut off after a few
    // seconds so quit() cannot hang; a backlog of pipelined puts has that long to be answered.
    const force = setTimeout(() => this.#socket.destroy(), 5_000);
    force.unref();
    // Someone awaits the close: an idle producer's unref'd socket must not let the process exit first.
    this.#socket.ref();
    this.#socket.end();
    await this.#pipe.whenClosed;
    clearTimeout(force);
  }

  async destroy(): Promise<void> {
    if (this.#pipe.closed) return;
    this.#socket.destroy();
    await this.#pipe.whenClosed;
  }

  #checkPut(body: PutBody, params: PutParams): void {
    if (typeof body === 'string') {
      // Its length is its `<bytes>` count only when every character is one byte: anything else would
      // put a wrong count on the wire, and beanstalkd would run the rest of the body as commands.
      if (!isAscii(body)) throw new TypeError('Expected a job body given as a string to be pure ASCII; pass other text as a UTF-8 Buffer');
    } else if (!Buffer.isBuffer(body)) throw new TypeError('Expected the job body to be a Buffer or an ASCII string');
    assertPriority(params.priority);
    assertSeconds(params.delaySeconds, 'delay');
    assertTtr(params.ttrSeconds);
    assertBodyLength(body.length, this.#maxJobSize);
  }

  #sendPut(body: PutBody, params: PutParams): Promise<string> {
    return this.#pipe.send('put', undefined, EXPECT.put, putBytes(body, params), idOf);
  }

  /**
   * Writes `use tube`; what is written after it goes into that tube. beanstalkd refuses a valid name
   * only when it cannot make the tube (OUT_OF_MEMORY): the connection then stays in the previous tube
   * while the puts already written behind the `use` were meant for this one, so it is dropped, and
   * those puts reject as PutOutcomeUnknownError (they may be in the previous tube) instead of resolving
   * with ids of jobs in the wrong tube.
   */
  #writeUse(tube: string): Promise<void> {
    this.#usedTube = tube;
    return new Promise((resolve, reject) => {
      this.#pipe.sendThen('use', undefined, EXPECT.use, encodeTubeCommand('use', tube), nothing, {
        resolve: () => resolve(),
        reject: (error) => {
          // Synchronously, while the reply is read: the puts answered after it in the same read must
          // fail as outcome unknown, not resolve.
          if (!(error instanceof ConnectionError)) {
            const where = formatAddress(this.address);
            this.#pipe.breakStream(
              new ConnectionError(where, `beanstalkd at ${where} refused \`use ${tube}\` (${error.message}); the connection is dropped`, {
                command: 'use',
                cause: error,
              }),
            );
          }
          reject(error);
        },
      });
    });
  }

  /** NOT_FOUND as null, for commands whose expected reply has another null word. */
  async #orNull<T>(call: Promise<T>): Promise<T | null> {
    try {
      return await call;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') return null;
      throw error;
    }
  }
}

/** A put's command: one string around an ASCII body, else one Buffer. */
function putBytes(body: PutBody, params: PutParams): string | Buffer {
  return typeof body === 'string' ? encodePutText(body, params) : encodePut(body, params);
}
