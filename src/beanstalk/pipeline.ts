/**
 * The command pipeline under a {@link BeanstalkConnection}: what is written and what waits for a reply,
 * in order. It owns the promise of every command (rejected, never left hanging, when the socket closes),
 * the window of commands in flight, the writes gathered per synchronous step, the deadlines (the stall
 * watchdog, and each command's own with `commandTimeoutMs`), and which commands were certainly never
 * written (a producer may retry those). It knows nothing about what the commands mean: the connection
 * validates arguments, ./encode.ts makes their bytes and ./replies.ts turns replies into values.
 *
 * It needs only the few socket methods in {@link PipelineSocket}, so a test drives it with a fake.
 */
import { formatAddress, type ServerAddress } from './address.js';
import { ConnectionError, errorFromReply, isNotSent, isProtocolReply, notSent, ProtocolError, PutOutcomeUnknownError } from './errors.js';
import { Fifo } from './fifo.js';
import { PendingCommand, type ReadReply, type Settle } from './pending-command.js';
import type { ExpectedReply } from './replies.js';
import { ReplyReader } from './reply-reader.js';

/**
 * Commands written and not yet answered, at most. Past it, commands wait in order in the pipeline
 * instead of the socket: a bounded window bounds the memory a burst of puts holds in the socket, and the
 * reply queue stays small enough to be cheap.
 */
export const MAX_IN_FLIGHT = 4_096;

/**
 * Bytes gathered for one write at most: past them, the batch is written at once. 64 KiB is what one
 * loopback write takes in one go; larger writes measured no faster, and made the server wait longer
 * for the first command of a burst.
 */
export const FLUSH_BYTES = 64 * 1024;

/**
 * The part of a `net.Socket` the pipeline uses. Replies come in through {@link Pipeline.onData} and the
 * close through {@link Pipeline.handleClose}, called by whoever owns the socket.
 */
export interface PipelineSocket {
  /** True once destroyed: batched writes are then kept for handleClose to reject as never sent. */
  readonly destroyed: boolean;
  /** One write per synchronous step; command lines are latin1. */
  write(data: string | Buffer, encoding?: BufferEncoding): unknown;
  /** Drops the connection (a protocol error, a deadline); the socket's close follows. */
  destroy(): unknown;
  /** With `unrefWhenIdle`: held while a reply is awaited, released when idle. */
  ref(): unknown;
  /** See {@link PipelineSocket.ref}. */
  unref(): unknown;
}

/** The deadlines of a {@link Pipeline} (see ConnectOptions). */
export interface PipelineOptions {
  readonly commandTimeoutMs: number | undefined;
  readonly stallTimeoutMs: number | undefined;
  readonly unrefWhenIdle: boolean;
}

/** One connection's commands in flight. */
export class Pipeline {
  readonly address: ServerAddress;
  #socket: PipelineSocket | undefined;
  /** Commands written and waiting for their reply, oldest first: replies come back in that order. */
  readonly #replies = new Fifo<PendingCommand>();
  /** Commands waiting for room in the window (`#replies` is full), oldest first, with their bytes. */
  readonly #waiting = new Fifo<readonly [PendingCommand, string | Buffer]>();
  /** Commands written in this synchronous stretch of code, sent together by #flush. */
  #outgoing: (string | Buffer)[] = [];
  /** The commands of #outgoing: if the connection ends first, they were never sent. */
  #outgoingCommands: PendingCommand[] = [];
  /** The length of #outgoing's chunks (characters of latin1 strings, or bytes). */
  #outgoingBytes = 0;
  readonly #commandTimeoutMs: number | undefined;
  readonly #stallTimeoutMs: number | undefined;
  readonly #unrefWhenIdle: boolean;
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
  readonly #whenClosed: Promise<void>;
  readonly #reader = new ReplyReader((words, body) => this.#onReply(words, body));
  #markClosed!: () => void;

  constructor(address: ServerAddress, options: PipelineOptions) {
    this.address = address;
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#stallTimeoutMs = options.stallTimeoutMs;
    this.#unrefWhenIdle = options.unrefWhenIdle;
    this.#whenClosed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
  }

  /** Gives the pipeline its socket; until then every command is refused as never sent. */
  attach(socket: PipelineSocket): void {
    this.#socket = socket;
  }

  /** True once the socket has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True once the connection can no longer be used: closed, or dropped and closing. */
  get isClosed(): boolean {
    return this.#closed || this.#broken !== undefined;
  }

  /** Resolves once the socket has closed. */
  get whenClosed(): Promise<void> {
    return this.#whenClosed;
  }

  /** A `reserve-with-timeout` of `seconds` is being written: the server may be silent that long. */
  quietFor(seconds: number): void {
    if (this.#stallTimeoutMs !== undefined) this.#quietUntil = Date.now() + seconds * 1000;
  }

  /**
   * Writes `bytes` (one whole command, with the body for a put) and settles from its reply: `read` turns
   * the expected reply into the value, the null word settles as null, any other word is a failure.
   * The hot path: one object and one promise per command, and no timer unless `commandTimeoutMs` is
   * set (workers and producers bound their commands with the stall watchdog instead).
   */
  send<T>(command: string, id: string | undefined, expected: ExpectedReply, bytes: string | Buffer, read: ReadReply<T>): Promise<T> {
    if (this.#closed || this.#broken !== undefined || this.#socket === undefined) return Promise.reject(this.#refusal(command));
    const pending = new PendingCommand<T>(command, id, expected, read);
    const promise = new Promise<T>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.#enqueue(pending as unknown as PendingCommand, bytes);
    return promise;
  }

  /**
   * {@link send} without a promise of its own: the command settles through `settle` (exactly once;
   * rejected at once when the connection is closed). For a caller that makes its own promise, or none
   * (putMany's window): each promise in a put's chain is another trip through the microtask queue.
   */
  sendThen<T>(
    command: string,
    id: string | undefined,
    expected: ExpectedReply,
    bytes: string | Buffer,
    read: ReadReply<T>,
    settle: Settle<T>,
  ): void {
    if (this.#closed || this.#broken !== undefined || this.#socket === undefined) {
      settle.reject(this.#refusal(command));
      return;
    }
    const pending = new PendingCommand<T>(command, id, expected, read);
    pending.settle = settle;
    this.#enqueue(pending as unknown as PendingCommand, bytes);
  }

  /** Arms a command's deadline and writes it, or queues it behind the window. Stored untyped: the queues hold commands of every value type. */
  #enqueue(pending: PendingCommand, bytes: string | Buffer): void {
    // A reserve waits on purpose: its bound is its own timeout (and the stall watchdog's allowance).
    if (this.#commandTimeoutMs !== undefined && pending.command !== 'reserve-with-timeout') this.#arm(pending, this.#commandTimeoutMs);
    // In order: once anything waits, everything after it waits too, so commands reach the server in
    // the order they were called (a `use` must stay ahead of the puts it is for).
    if (this.#waiting.length > 0 || this.#replies.length >= MAX_IN_FLIGHT) this.#waiting.push([pending, bytes]);
    else this.#write(pending, bytes);
  }

  /** Every read of the socket: replies go to the commands waiting for them, oldest first. */
  onData(chunk: Buffer): void {
    if (this.#broken) return;
    if (this.#stallTimeoutMs !== undefined) this.#progressAt = Date.now();
    try {
      this.#reader.push(chunk);
    } catch (error) {
      // Bytes that are not beanstalkd replies: nothing after them can be trusted.
      this.breakStream(new ProtocolError('BAD_REPLY', `reading a reply (${(error as Error).message})`));
    }
  }

  /** Drops the connection; every later reply is refused. A ConnectionError is kept as the reason as it is. */
  breakStream(cause: Error): void {
    const where = formatAddress(this.address);
    this.#broken =
      cause instanceof ConnectionError
        ? cause
        : new ConnectionError(where, `the connection to beanstalkd at ${where} was closed after a protocol error`, { cause });
    this.#socket?.destroy();
  }

  /**
   * The socket has closed (or never opened): rejects every command not yet settled, the ones never
   * written as such (see {@link unsentError}), the written ones with `closeError` (or the reason the
   * stream was dropped). Safe to call more than once.
   */
  handleClose(closeError: ConnectionError): void {
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
    const unsent = new Set(this.#outgoingCommands);
    this.#outgoingCommands = [];
    this.#outgoing = [];
    this.#outgoingBytes = 0;
    const written: PendingCommand[] = [];
    for (let entry = this.#replies.shift(); entry !== undefined; entry = this.#replies.shift()) {
      if (entry.done) continue;
      if (unsent.has(entry)) entry.fail(this.unsentError(error, entry.command));
      else written.push(entry);
    }
    // A backlog can be long: its commands share one error.
    let waitingError: ConnectionError | undefined;
    for (let waiting = this.#waiting.shift(); waiting !== undefined; waiting = this.#waiting.shift()) {
      if (waiting[0].done) continue;
      waitingError ??= this.unsentError(error);
      waiting[0].fail(waitingError);
    }
    for (const entry of written) entry.fail(this.#lost(entry.command, error));
  }

  /** A copy of `reason` marked as the failure of a command that was never written. */
  unsentError(reason: ConnectionError, command?: string): ConnectionError {
    if (isNotSent(reason)) return reason;
    return notSent(new ConnectionError(reason.address, reason.message, { command: command ?? reason.command, cause: reason }));
  }

  /** Why a command is refused before anything is written. */
  #refusal(command: string): ConnectionError {
    if (this.#closed || this.#broken) {
      const where = formatAddress(this.address);
      const reason =
        this.#broken ?? this.#closeError ?? new ConnectionError(where, `the connection to beanstalkd at ${where} is closed`, { command });
      return this.unsentError(reason, command);
    }
    return notSent(new ConnectionError(formatAddress(this.address), `could not send ${command} to beanstalkd: not connected`, { command }));
  }

  /** The command's own deadline: no reply within `limit` ms drops the connection. */
  #arm(pending: PendingCommand, limit: number): void {
    pending.timer = setTimeout(() => {
      const where = formatAddress(this.address);
      const command = pending.command;
      this.breakStream(new ConnectionError(where, `beanstalkd at ${where} did not answer ${command} within ${limit} ms`, { command }));
      pending.fail(this.#lost(command, this.#broken as ConnectionError));
    }, limit);
  }

  /** Puts a command in the window and queues its bytes for the socket. */
  #write(pending: PendingCommand, bytes: string | Buffer): void {
    if (this.#replies.length === 0) this.#onBusy();
    this.#replies.push(pending);
    this.#outgoingCommands.push(pending);
    // Commands written in one synchronous stretch of code go out in one write as soon as that code
    // returns (process.nextTick): a slot's delete and its next reserve, or a burst of puts, cost one
    // system call instead of one each, and a single buffer rather than the socket's gather-write, which
    // measured several times dearer per call. Holding writes for longer (until the loop turn's other
    // replies are handled) leaves the server idle meanwhile and measured slower.
    if (this.#outgoing.length === 0) process.nextTick(() => this.#flush());
    this.#outgoing.push(bytes);
    // A long burst (putMany's window, thousands of puts in flight) goes out as it grows rather than at
    // the end of the step: the server starts on the first puts while the rest are still being made.
    this.#outgoingBytes += bytes.length;
    if (this.#outgoingBytes >= FLUSH_BYTES) this.#flush();
  }

  /** Sends what {@link Pipeline.send} queued, in order, in one write. */
  #flush(): void {
    const chunks = this.#outgoing;
    if (chunks.length === 0) return;
    const socket = this.#socket;
    // Kept for handleClose, which rejects them as never sent.
    if (!socket || socket.destroyed) return;
    this.#outgoing = [];
    this.#outgoingCommands = [];
    this.#outgoingBytes = 0;
    if (chunks.length === 1) {
      const chunk = chunks[0] as string | Buffer;
      // Command lines (and ASCII put bodies) are one byte per character: latin1 is the cheap encoding.
      if (typeof chunk === 'string') socket.write(chunk, 'latin1');
      else socket.write(chunk);
    } else if (chunks.every((chunk) => typeof chunk === 'string')) socket.write(chunks.join(''), 'latin1');
    else socket.write(Buffer.concat(chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk))));
  }

  /** One reply: settles the oldest command waiting. */
  #onReply(words: string[], body: Buffer | undefined): void {
    const pending = this.#replies.shift();
    if (pending === undefined) {
      this.breakStream(new ProtocolError('BAD_REPLY', `a reply no command asked for (${words[0] ?? ''})`));
      return;
    }
    if (this.#waiting.length > 0) this.#sendWaiting();
    if (!pending.done) {
      if (this.#broken) pending.fail(this.#lost(pending.command, this.#broken));
      else if (!pending.succeed(words, body)) {
        const word = words[0] ?? '';
        const error = errorFromReply(word, pending.command, pending.id);
        if (isProtocolReply(word)) this.breakStream(error);
        pending.fail(error);
      }
    }
    if (this.#replies.length === 0) this.#onIdle();
  }

  /** Writes waiting commands while the window has room. */
  #sendWaiting(): void {
    while (this.#replies.length < MAX_IN_FLIGHT && !this.#closed && !this.#broken) {
      const waiting = this.#waiting.shift();
      if (waiting === undefined) return;
      // Timed out while it waited: it was rejected already, and must not be written.
      if (!waiting[0].done) this.#write(waiting[0], waiting[1]);
    }
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
    if (this.#unrefWhenIdle) this.#socket?.ref();
    if (this.#stallTimeoutMs === undefined) return;
    this.#progressAt = Date.now();
    if (this.#stallTimer === undefined) this.#armStallTimer(this.#stallTimeoutMs);
  }

  /** Busy to idle: nothing waits. An idle producer's socket must not keep the process alive. */
  #onIdle(): void {
    if (this.#unrefWhenIdle) this.#socket?.unref();
  }

  /** One timer per connection, not one per command: the watchdog of `stallTimeoutMs`. */
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
    this.breakStream(
      new ConnectionError(where, `beanstalkd at ${where} sent nothing for ${limit} ms while ${this.#replies.length} command(s) waited`),
    );
  }
}
