/**
 * The only code in bsworker that talks to fivebeans. It turns fivebeans' callbacks into promises and
 * mends what fivebeans leaves open:
 * - fivebeans never calls pending callbacks when the socket closes, so this class keeps its own set of
 *   pending calls and rejects them all with {@link ConnectionError}: no promise ever hangs;
 * - fivebeans checks no argument, and a rejected `put` makes beanstalkd run the body as commands, so
 *   every argument is validated before anything is written;
 * - a `BAD_FORMAT`-like reply means the stream is out of step, so the connection is dropped.
 *
 * fivebeans opens the socket and sends the operator commands (watch, use, kick, peek, stats...). The
 * reply reader and the six commands on a worker's and a producer's hot path (put, reserve, delete,
 * release, bury, touch) are ours: fivebeans builds each command with several buffer copies, reads
 * replies byte by byte, and keeps its reply handlers in an array it shifts, which together cost more
 * CPU per job than everything else in a worker (see the README's performance notes).
 */
import FiveBeansClient from 'fivebeans/lib/client.js';
import { formatAddress, type ServerAddress } from './address.js';
import { ConnectionError, errorFromReply, isNotSent, isProtocolReply, notSent, ProtocolError, PutOutcomeUnknownError } from './errors.js';
import { Fifo } from './fifo.js';
import { connectFailure, idOf, jobOf, nothing, toJobStats, toTubeStats } from './replies.js';
import { ReplyReader } from './reply-reader.js';
import type { Beanstalk, JobStats, PeekedJob, PutParams, ReservedJob, ServerStats, TubeStats } from './types.js';
import {
  assertBodySize,
  assertInteger,
  assertPriority,
  assertSeconds,
  assertTtr,
  assertTubeName,
  normaliseJobId,
  UINT32_MAX,
} from './validate.js';
import { parseYamlList, parseYamlMap, parseYamlStats } from './yaml.js';

/** Options for {@link BeanstalkConnection.connect}. */
export interface ConnectOptions {
  /**
   * How long to wait for the TCP connection before giving up.
   * @defaultValue 10000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Drop the connection when a command (other than reserve, which waits on purpose) gets no reply this
   * long: for short-lived clients such as the CLI, which must not hang on a server that stopped
   * answering. Workers leave it off and bound their reserves instead.
   * @defaultValue no limit
   */
  readonly commandTimeoutMs?: number;
  /**
   * Drop the connection when commands wait for replies and the server has sent nothing for this long:
   * one timer per connection, not one per command, for producers, whose puts must not wait on a hung
   * server for ever (a put on such a connection rejects with PutOutcomeUnknownError), and for workers,
   * whose jobs must not stall on a half-open socket. A `reserve-with-timeout T` is silent for up to T
   * seconds on purpose: the watchdog allows T more seconds from when it was written.
   * @defaultValue no limit
   */
  readonly stallTimeoutMs?: number;
  /**
   * Let the process exit while nothing waits for a reply (the socket is unref'd when idle and ref'd
   * while a command waits): a script that puts jobs and never calls close() still ends.
   * @defaultValue false
   */
  readonly unrefWhenIdle?: boolean;
}

type Reject = (error: Error) => void;

/** A command waiting for its reply: what fivebeans queues, or one of ours (`raw`). */
type FiveBeansCallback = (err: string | null, ...args: unknown[]) => void;
type RawCallback = (words: string[], body: Buffer | undefined) => void;
type PendingReply = readonly [{ readonly expectedResponse: string; readonly raw?: boolean }, FiveBeansCallback | RawCallback];

/**
 * The expected reply of each command written here rather than by fivebeans, and the reply, if any, that
 * means "nothing" (settles as null rather than as an error).
 */
interface RawReply {
  readonly expectedResponse: string;
  readonly raw: true;
  readonly nullReply?: string;
}
const RAW: Readonly<Record<'put' | 'reserve' | 'delete' | 'release' | 'bury' | 'touch', RawReply>> = Object.freeze({
  put: { expectedResponse: 'INSERTED', raw: true },
  // A reserve that times out means "no job".
  reserve: { expectedResponse: 'RESERVED', raw: true, nullReply: 'TIMED_OUT' },
  delete: { expectedResponse: 'DELETED', raw: true },
  release: { expectedResponse: 'RELEASED', raw: true },
  bury: { expectedResponse: 'BURIED', raw: true },
  touch: { expectedResponse: 'TOUCHED', raw: true },
});

/**
 * Commands written and not yet answered, at most. Past it, commands wait in order in this class instead
 * of the socket: fivebeans keeps its reply handlers in an array it shifts, which slows down badly past
 * ~16k outstanding, and a bounded window also bounds the memory a burst of puts holds in the socket.
 */
export const MAX_IN_FLIGHT = 4_096;

/** One beanstalkd connection with a promise API. Create it with {@link BeanstalkConnection.connect}. */
export class BeanstalkConnection implements Beanstalk {
  readonly address: ServerAddress;
  #maxJobSize = 65_535;
  readonly #client: FiveBeansClient;
  /** The reject of every command not yet settled, with the command's name. */
  readonly #pending = new Map<Reject, string>();
  /** Commands written and waiting for their reply, oldest first: replies come back in that order. */
  readonly #replies = new Fifo<PendingReply>();
  /** Commands waiting for room in the window (`#replies` is full), oldest first, and their rejects. */
  readonly #waiting = new Fifo<readonly [send: () => void, reject: Reject]>();
  /** Our commands written in this synchronous stretch of code, sent together by #flush. */
  #outgoing: (string | Buffer)[] = [];
  /** The rejects of the commands in #outgoing: if the connection ends first, they were never sent. */
  #outgoingRejects: Reject[] = [];
  #stallTimeoutMs: number | undefined;
  #unrefWhenIdle = false;
  /** While commands wait: when the server last sent anything, or when the wait began. */
  #progressAt = 0;
  /** The server may be silent until then: the end of the latest reserve's timeout. */
  #quietUntil = 0;
  #stallTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Set when the stream can no longer be trusted; later replies are refused, not believed. */
  #broken: ConnectionError | undefined;
  #closeError: ConnectionError | undefined;
  /** The PutOutcomeUnknownError made for the last connection error, shared by every put it failed. */
  #unknownFor: ConnectionError | undefined;
  #unknownError: PutOutcomeUnknownError | undefined;
  /** The tube in use once every `use` written so far has been answered; undefined when unknown. */
  #usedTube: string | undefined = 'default';
  #commandTimeoutMs: number | undefined;
  /** An unanswered `use`: commands that depend on the tube in use wait for it (see putInTube). */
  #useGate: Promise<void> | undefined;
  readonly #whenClosed: Promise<void>;
  readonly #reader = new ReplyReader((words, body) => this.#onReply(words, body));
  #markClosed!: () => void;

  private constructor(address: ServerAddress, client: FiveBeansClient) {
    this.address = address;
    this.#client = client;
    this.#whenClosed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
  }

  /**
   * Opens a connection and reads the server's `max-job-size`. Rejects with a {@link ConnectionError}
   * that names the address (and how to start beanstalkd) when the server cannot be reached.
   */
  static async connect(address: ServerAddress, options: ConnectOptions = {}): Promise<BeanstalkConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const where = formatAddress(address);
    const client = new FiveBeansClient(address.host, address.port);
    const connection = new BeanstalkConnection(address, client);
    connection.#commandTimeoutMs = options.commandTimeoutMs;
    connection.#stallTimeoutMs = options.stallTimeoutMs;
    connection.#unrefWhenIdle = options.unrefWhenIdle ?? false;

    // fivebeans' commands queue their handlers here, in the same order as ours.
    client.handlers = connection.#replies;

    // An 'error' or 'close' ends the connection and rejects everything pending. Without an 'error'
    // listener, a refused connection would crash the process.
    client.on('error', (error: Error) => {
      connection.#handleClose(
        new ConnectionError(where, `lost the connection to beanstalkd at ${where}: ${error.message}`, { cause: error }),
      );
    });
    client.on('close', () => {
      connection.#handleClose(new ConnectionError(where, `the connection to beanstalkd at ${where} closed`));
    });

    // One deadline covers the TCP handshake and the first reply: a peer that accepts connections but
    // never answers (not beanstalkd, or a hung one) must not hang start() or a put.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new ConnectionError(where, `could not connect to beanstalkd at ${where}: no answer within ${timeoutMs} ms`);
        connection.#handleClose(error);
        client.stream?.destroy();
        reject(error);
      }, timeoutMs);
    });
    const opened = new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        client.removeListener('error', onEarlyError);
        resolve();
      };
      const onEarlyError = (error: NodeJS.ErrnoException): void => {
        client.removeListener('connect', onConnect);
        const failure = connectFailure(where, address, error);
        connection.#handleClose(failure);
        reject(failure);
      };
      client.once('connect', onConnect);
      client.once('error', onEarlyError);
      client.connect();
      // Our reader replaces fivebeans' 'data' listener (added by connect()) for every reply.
      client.stream?.removeAllListeners('data');
      client.stream?.on('data', (chunk: Buffer) => connection.#onData(chunk));
    });

    try {
      await Promise.race([opened, deadline]);
      // The server closing its side (it stopped or died) ends the connection at once, before a later
      // write would find out the hard way.
      client.stream?.once('end', () => {
        connection.#handleClose(new ConnectionError(where, `beanstalkd at ${where} closed the connection`));
        client.stream?.destroy();
      });
      client.stream?.setNoDelay(true);
      client.stream?.setKeepAlive(true, 30_000);
      const stats = await Promise.race([connection.stats(), deadline]);
      const size = Number(stats['max-job-size']);
      if (Number.isInteger(size) && size > 0) connection.#maxJobSize = size;
    } catch (error) {
      client.stream?.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return connection;
  }

  get maxJobSize(): number {
    return this.#maxJobSize;
  }

  /** True once the connection can no longer be used: closed, or dropped and closing. */
  get isClosed(): boolean {
    return this.#closed || this.#broken !== undefined;
  }

  /** Resolves once the socket has closed. */
  get whenClosed(): Promise<void> {
    return this.#whenClosed;
  }

  async put(body: Buffer, params: PutParams): Promise<string> {
    this.#checkPut(body, params);
    while (this.#useGate) await this.#useGate.catch(() => undefined);
    return this.#sendPut(body, params);
  }

  putInTube(tube: string, body: Buffer, params: PutParams): Promise<string> {
    try {
      assertTubeName(tube);
      this.#checkPut(body, params);
    } catch (error) {
      return Promise.reject(error);
    }
    // Not async on purpose: a put into the tube already in use is the producer's hot path, and each
    // async layer is another trip through the microtask queue before the caller sees its id.
    if (this.#useGate === undefined && tube === this.#usedTube) return this.#sendPut(body, params);
    return this.#inTube(tube, () => this.#sendPut(body, params));
  }

  async use(tube: string): Promise<void> {
    assertTubeName(tube);
    await this.#inTube(tube, async () => undefined);
  }

  async watch(tube: string): Promise<number> {
    assertTubeName(tube);
    return Number(await this.#call<string>('watch', undefined, (cb) => this.#client.watch(tube, cb)));
  }

  async ignore(tube: string): Promise<number> {
    assertTubeName(tube);
    return Number(await this.#call<string>('ignore', undefined, (cb) => this.#client.ignore(tube, cb)));
  }

  reserve(timeoutSeconds: number): Promise<ReservedJob | null> {
    try {
      assertSeconds(timeoutSeconds, 'timeoutSeconds');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#stallTimeoutMs !== undefined) this.#quietUntil = Date.now() + timeoutSeconds * 1000;
    // TIMED_OUT settles as null in the reply handler itself: no async layer here.
    return this.#callRaw<ReservedJob | null>(
      'reserve-with-timeout',
      undefined,
      RAW.reserve,
      `reserve-with-timeout ${timeoutSeconds}\r\n`,
      jobOf,
    );
  }

  async delete(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#callRaw('delete', jobId, RAW.delete, `delete ${jobId}\r\n`, nothing);
  }

  async release(id: string, priority: number, delaySeconds: number): Promise<void> {
    const jobId = normaliseJobId(id);
    assertPriority(priority);
    assertSeconds(delaySeconds, 'delaySeconds');
    await this.#callRaw('release', jobId, RAW.release, `release ${jobId} ${priority} ${delaySeconds}\r\n`, nothing);
  }

  async bury(id: string, priority: number): Promise<void> {
    const jobId = normaliseJobId(id);
    assertPriority(priority);
    await this.#callRaw('bury', jobId, RAW.bury, `bury ${jobId} ${priority}\r\n`, nothing);
  }

  async touch(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#callRaw('touch', jobId, RAW.touch, `touch ${jobId}\r\n`, nothing);
  }

  async kick(bound: number): Promise<number> {
    assertInteger(bound, 'bound', 0, UINT32_MAX);
    return Number(await this.#call<string>('kick', undefined, (cb) => this.#client.kick(bound, cb)));
  }

  async kickJob(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#call('kick-job', jobId, (cb) => this.#client.kick_job(jobId, (err) => cb(err, undefined)));
  }

  async peek(id: string): Promise<PeekedJob | null> {
    const jobId = normaliseJobId(id);
    return this.#peek('peek', jobId, (cb) => this.#client.peek(jobId, cb));
  }

  async peekReady(): Promise<PeekedJob | null> {
    return this.#peek('peek-ready', undefined, (cb) => this.#client.peek_ready(cb));
  }

  async peekDelayed(): Promise<PeekedJob | null> {
    return this.#peek('peek-delayed', undefined, (cb) => this.#client.peek_delayed(cb));
  }

  async peekBuried(): Promise<PeekedJob | null> {
    return this.#peek('peek-buried', undefined, (cb) => this.#client.peek_buried(cb));
  }

  async stats(): Promise<ServerStats> {
    return parseYamlStats(await this.#callYaml('stats', undefined, (cb) => this.#client.stats(cb)));
  }

  async statsTube(tube: string): Promise<TubeStats | null> {
    assertTubeName(tube);
    const raw = await this.#orNull(this.#callYaml('stats-tube', undefined, (cb) => this.#client.stats_tube(tube, cb)));
    return raw === null ? null : toTubeStats(parseYamlMap(raw), tube);
  }

  async statsJob(id: string): Promise<JobStats | null> {
    const jobId = normaliseJobId(id);
    const raw = await this.#orNull(this.#callYaml('stats-job', jobId, (cb) => this.#client.stats_job(jobId, cb)));
    return raw === null ? null : toJobStats(parseYamlMap(raw), jobId);
  }

  async listTubes(): Promise<string[]> {
    return parseYamlList(await this.#callYaml('list-tubes', undefined, (cb) => this.#client.list_tubes(cb)));
  }

  async listTubesWatched(): Promise<string[]> {
    return parseYamlList(await this.#callYaml('list-tubes-watched', undefined, (cb) => this.#client.list_tubes_watched(cb)));
  }

  async pauseTube(tube: string, seconds: number): Promise<void> {
    assertTubeName(tube);
    assertSeconds(seconds, 'seconds');
    await this.#call('pause-tube', undefined, (cb) => this.#client.pause_tube(tube, seconds, (err) => cb(err, undefined)));
  }

  async quit(): Promise<void> {
    if (this.#closed) return;
    // end() sends FIN after everything already written; the server answers those commands (a pending
    // reserve answers TIMED_OUT) and then closes. A peer that never closes is cut off after a few
    // seconds so quit() cannot hang; a backlog of pipelined puts has that long to be answered.
    const force = setTimeout(() => this.#client.stream?.destroy(), 5_000);
    force.unref();
    // Someone awaits the close: an idle producer's unref'd socket must not let the process exit first.
    this.#client.stream?.ref();
    this.#client.end();
    await this.#whenClosed;
    clearTimeout(force);
  }

  #checkPut(body: Buffer, params: PutParams): void {
    if (!Buffer.isBuffer(body)) throw new TypeError('Expected the job body to be a Buffer');
    assertPriority(params.priority);
    assertSeconds(params.delaySeconds, 'delay');
    assertTtr(params.ttrSeconds);
    assertBodySize(body, this.#maxJobSize);
  }

  #sendPut(body: Buffer, params: PutParams): Promise<string> {
    const header = `put ${params.priority} ${params.delaySeconds} ${params.ttrSeconds} ${body.length}\r\n`;
    // One buffer per put: the header, the body and its \r\n.
    const bytes = Buffer.allocUnsafe(header.length + body.length + 2);
    bytes.write(header, 0, 'latin1');
    body.copy(bytes, header.length);
    bytes[bytes.length - 2] = 0x0d;
    bytes[bytes.length - 1] = 0x0a;
    return this.#callRaw('put', undefined, RAW.put, bytes, idOf);
  }

  /**
   * Makes `tube` the tube in use, then calls `send` in the same synchronous step as the check, so nothing
   * can write a `use` in between. A `put` written behind an unanswered `use` would land in the old tube
   * if that `use` failed, so while a `use` is in flight every tube-dependent command waits for it; puts
   * into the tube already in use are written at once and pipeline freely.
   */
  async #inTube<T>(tube: string, send: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.#useGate) {
        await this.#useGate.catch(() => undefined);
        continue;
      }
      if (tube === this.#usedTube) return send();
      const gate = this.#call<string>('use', undefined, (cb) => this.#client.use(tube, cb)).then(
        () => {
          this.#usedTube = tube;
        },
        (error: unknown) => {
          this.#usedTube = undefined;
          throw error;
        },
      );
      this.#useGate = gate;
      try {
        await gate;
      } catch (error) {
        // A `use` lost with the connection: what was to follow it was never written.
        throw error instanceof ConnectionError ? this.#unsentError(error, 'use') : error;
      } finally {
        if (this.#useGate === gate) this.#useGate = undefined;
      }
    }
  }

  async #peek(
    command: string,
    id: string | undefined,
    invoke: (cb: (err: string | null, id: string, body: Buffer) => void) => void,
  ): Promise<PeekedJob | null> {
    return this.#orNull(this.#call<PeekedJob>(command, id, (cb) => invoke((err, jobId, body) => cb(err, { id: jobId, body }))));
  }

  async #orNull<T>(call: Promise<T>): Promise<T | null> {
    try {
      return await call;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') return null;
      throw error;
    }
  }

  /**
   * Sends a command whose reply is a YAML body and resolves to that body's text, parsed by ./yaml.ts
   * (js-yaml, which fivebeans would use, turns tube names like `1.0` into numbers). Our reader hands
   * every body over as bytes.
   */
  #callYaml(command: string, id: string | undefined, invoke: (cb: (err: string | null, value: unknown) => void) => void): Promise<string> {
    return this.#call<unknown>(command, id, invoke).then((body) => (Buffer.isBuffer(body) ? body.toString('utf8') : String(body)));
  }

  /**
   * Writes one of our commands (`bytes`, a whole command line, with the body for a put) and settles
   * from its reply: `read` turns the expected reply into the value, any other reply word is a failure.
   */
  #callRaw<T>(
    command: string,
    id: string | undefined,
    expected: RawReply,
    bytes: string | Buffer,
    read: (words: string[], body: Buffer | undefined) => T,
  ): Promise<T> {
    return this.#call<T>(
      command,
      id,
      (cb) => {
        if (!this.#client.stream) throw new Error('not connected');
        this.#replies.push([
          expected,
          (words: string[], body: Buffer | undefined) => {
            if (words[0] === expected.expectedResponse) cb(null, read(words, body));
            else if (words[0] === expected.nullReply) cb(null, null as T);
            else cb(words[0] ?? '', undefined as T);
          },
        ]);
        this.#write(bytes);
      },
      true,
    );
  }

  /** Every read of the socket: replies go to the commands waiting for them, oldest first. */
  #onData(chunk: Buffer): void {
    if (this.#broken) return;
    if (this.#stallTimeoutMs !== undefined) this.#progressAt = Date.now();
    try {
      this.#reader.push(chunk);
    } catch (error) {
      // Bytes that are not beanstalkd replies: nothing after them can be trusted.
      this.#breakStream(new ProtocolError('BAD_REPLY', `reading a reply (${(error as Error).message})`));
    }
  }

  /** One reply: settles the oldest command waiting, in fivebeans' calling convention or ours. */
  #onReply(words: string[], body: Buffer | undefined): void {
    const waiting = this.#replies.shift();
    if (waiting === undefined) {
      this.#breakStream(new ProtocolError('BAD_REPLY', `a reply no command asked for (${words[0] ?? ''})`));
      return;
    }
    if (waiting[0].raw) {
      (waiting[1] as RawCallback)(words, body);
      if (this.#replies.length === 0) this.#onIdle();
      return;
    }
    const handler = waiting[0];
    const callback = waiting[1] as FiveBeansCallback;
    if (words[0] !== handler.expectedResponse) callback(words[0] ?? '');
    else {
      // fivebeans' convention: the reply's arguments after the word, with the body in place of its length.
      const args: unknown[] = words.slice(1);
      if (body !== undefined) args[args.length - 1] = body;
      callback(null, ...args);
    }
    if (this.#replies.length === 0) this.#onIdle();
  }

  /**
   * Sends one command and settles its promise from fivebeans' callback. The callback runs inside
   * fivebeans' data handler, so it only settles a promise: if it threw, the replies buffered behind it
   * would be lost.
   */
  #call<T>(
    command: string,
    id: string | undefined,
    invoke: (cb: (err: string | null, value: T) => void) => void,
    batched = false,
  ): Promise<T> {
    if (this.#closed || this.#broken) {
      return Promise.reject(this.#unsentError(this.#broken ?? this.#closeError ?? this.#closedError(command), command));
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(reject, command);
      const limit = command === 'reserve-with-timeout' ? undefined : this.#commandTimeoutMs;
      const timer =
        limit === undefined
          ? undefined
          : setTimeout(() => {
              const where = formatAddress(this.address);
              this.#breakStream(
                new ConnectionError(where, `beanstalkd at ${where} did not answer ${command} within ${limit} ms`, { command }),
              );
              this.#pending.delete(reject);
              reject(this.#lost(command, this.#broken as ConnectionError));
            }, limit);
      const settle = (err: string | null, value: T): void => {
        clearTimeout(timer);
        if (this.#waiting.length > 0) this.#sendWaiting();
        if (!this.#pending.delete(reject)) return;
        if (this.#broken) reject(this.#lost(command, this.#broken));
        else if (err === null) resolve(value);
        else {
          const error = errorFromReply(err, command, id);
          if (isProtocolReply(err)) this.#breakStream(error);
          reject(error);
        }
      };
      const send = (): void => {
        if (!this.#pending.has(reject)) return;
        try {
          // fivebeans writes to the socket itself: what we queued must go first, to keep the order.
          if (!batched) this.#flush();
          if (this.#replies.length === 0) this.#onBusy();
          invoke(settle);
        } catch (error) {
          this.#pending.delete(reject);
          reject(
            notSent(
              new ConnectionError(formatAddress(this.address), `could not send ${command} to beanstalkd: ${(error as Error).message}`, {
                command,
                cause: error,
              }),
            ),
          );
          return;
        }
        if (batched) this.#outgoingRejects.push(reject);
      };
      // In order: once anything waits, everything after it waits too, so commands reach the server in
      // the order they were called (a `use` must stay ahead of the puts it is for).
      if (this.#replies.length >= MAX_IN_FLIGHT || this.#waiting.length > 0) this.#waiting.push([send, reject]);
      else send();
    });
  }

  /**
   * Queues one of our commands for the socket. Commands written in one synchronous stretch of code go out
   * in one write as soon as that code returns (process.nextTick): a slot's delete and its next reserve,
   * or a burst of puts, cost one system call instead of one each, and a single buffer rather than the
   * socket's gather-write, which measured several times dearer per call. Holding writes for longer (until
   * the loop turn's other replies are handled) leaves the server idle meanwhile and measured slower.
   */
  #write(bytes: string | Buffer): void {
    if (this.#outgoing.length === 0) process.nextTick(() => this.#flush());
    this.#outgoing.push(bytes);
  }

  /** Sends what {@link #write} queued, in order, in one write. */
  #flush(): void {
    const chunks = this.#outgoing;
    if (chunks.length === 0) return;
    const stream = this.#client.stream;
    // Kept for #handleClose, which rejects them as never sent.
    if (!stream || stream.destroyed) return;
    this.#outgoing = [];
    this.#outgoingRejects = [];
    if (chunks.length === 1) stream.write(chunks[0] as string | Buffer);
    else if (chunks.every((chunk) => typeof chunk === 'string')) stream.write(chunks.join(''), 'latin1');
    else stream.write(Buffer.concat(chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk))));
  }

  /** Writes waiting commands while the window has room. */
  #sendWaiting(): void {
    while (this.#replies.length < MAX_IN_FLIGHT && !this.#closed && !this.#broken) {
      const waiting = this.#waiting.shift();
      if (waiting === undefined) return;
      waiting[0]();
    }
  }

  /** Drops the connection; every later reply is refused. A ConnectionError is kept as the reason as it is. */
  #breakStream(cause: Error): void {
    const where = formatAddress(this.address);
    this.#broken =
      cause instanceof ConnectionError
        ? cause
        : new ConnectionError(where, `the connection to beanstalkd at ${where} was closed after a protocol error`, { cause });
    this.#client.stream?.destroy();
  }

  #closedError(command: string): ConnectionError {
    const where = formatAddress(this.address);
    return new ConnectionError(where, `the connection to beanstalkd at ${where} is closed`, { command });
  }

  #handleClose(closeError: ConnectionError): void {
    // The reason the stream was dropped, when it was, says more than "closed".
    const error = this.#broken ?? closeError;
    if (!this.#closed) {
      this.#closed = true;
      this.#closeError = error;
      this.#markClosed();
    }
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    // First the commands that never reached the socket (still batched, or waiting for the window): a
    // producer may retry those on a new connection without any risk of a duplicate.
    const unsent = this.#outgoingRejects;
    this.#outgoingRejects = [];
    this.#outgoing = [];
    for (let waiting = this.#waiting.shift(); waiting !== undefined; waiting = this.#waiting.shift()) unsent.push(waiting[1]);
    let unsentError: ConnectionError | undefined;
    for (const reject of unsent) {
      if (!this.#pending.delete(reject)) continue;
      unsentError ??= this.#unsentError(error);
      reject(unsentError);
    }
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [reject, command] of pending) reject(this.#lost(command, error));
  }

  /** A copy of `reason` marked as the failure of a command that was never written. */
  #unsentError(reason: ConnectionError, command?: string): ConnectionError {
    if (isNotSent(reason)) return reason;
    return notSent(new ConnectionError(reason.address, reason.message, { command: command ?? reason.command, cause: reason }));
  }

  /**
   * The error of a written command whose reply was lost: `error` itself, except for a put, which may
   * have inserted a job and says so in its own class (made once per reason, shared by every such put).
   */
  #lost(command: string, error: ConnectionError): ConnectionError {
    if (command !== 'put' || error instanceof PutOutcomeUnknownError) return error;
    if (this.#unknownFor !== error) {
      this.#unknownFor = error;
      this.#unknownError = new PutOutcomeUnknownError(error.address, error);
    }
    return this.#unknownError as PutOutcomeUnknownError;
  }

  /** Idle to busy: something waits for a reply. Keeps the process alive and starts the stall watch. */
  #onBusy(): void {
    if (this.#unrefWhenIdle) this.#client.stream?.ref();
    if (this.#stallTimeoutMs === undefined) return;
    this.#progressAt = Date.now();
    if (this.#stallTimer === undefined) this.#armStallTimer(this.#stallTimeoutMs);
  }

  /** Busy to idle: nothing waits. An idle producer's socket must not keep the process alive. */
  #onIdle(): void {
    if (this.#unrefWhenIdle) this.#client.stream?.unref();
  }

  #armStallTimer(delayMs: number): void {
    this.#stallTimer = setTimeout(() => this.#checkStall(), delayMs);
    // The socket, ref'd while commands wait, is what keeps the process alive; this timer only watches.
    this.#stallTimer.unref();
  }

  #checkStall(): void {
    this.#stallTimer = undefined;
    const limit = this.#stallTimeoutMs;
    if (limit === undefined || this.#closed || this.#broken || this.#replies.length === 0) return;
    const left = Math.max(this.#progressAt, this.#quietUntil) + limit - Date.now();
    if (left > 0) {
      this.#armStallTimer(left);
      return;
    }
    const where = formatAddress(this.address);
    this.#breakStream(
      new ConnectionError(where, `beanstalkd at ${where} sent nothing for ${limit} ms while ${this.#replies.length} command(s) waited`),
    );
  }
}
