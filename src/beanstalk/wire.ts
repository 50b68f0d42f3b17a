/**
 * The command pipeline under a {@link BeanstalkConnection}: what is written and what waits for a reply,
 * in order. It owns the promise of every command (rejected, never left hanging, when the socket closes),
 * the window of commands in flight, the writes gathered per synchronous step, the stall watchdog, and
 * which commands were certainly never written (a producer may retry those). It knows nothing about what
 * the commands mean: BeanstalkConnection validates arguments and turns replies into values.
 */
import type FiveBeansClient from 'fivebeans/lib/client.js';
import { formatAddress, type ServerAddress } from './address.js';
import { ConnectionError, errorFromReply, isNotSent, isProtocolReply, notSent, ProtocolError, PutOutcomeUnknownError } from './errors.js';
import { Fifo } from './fifo.js';
import { RawCommand } from './raw-command.js';
import { ReplyReader } from './reply-reader.js';

type Reject = (error: Error) => void;

/** A command waiting for its reply: what fivebeans queues, or one of ours (`raw`). */
type FiveBeansCallback = (err: string | null, ...args: unknown[]) => void;
type RawCallback = (words: string[], body: Buffer | undefined) => void;
type PendingReply = readonly [{ readonly expectedResponse: string; readonly raw?: boolean }, FiveBeansCallback | RawCallback];

/**
 * The expected reply of each command written here rather than by fivebeans, and the reply, if any, that
 * means "nothing" (settles as null rather than as an error).
 */
export interface RawReply {
  readonly expectedResponse: string;
  readonly raw: true;
  readonly nullReply?: string;
}

/**
 * Commands written and not yet answered, at most. Past it, commands wait in order in this class instead
 * of the socket: fivebeans keeps its reply handlers in an array it shifts, which slows down badly past
 * ~16k outstanding, and a bounded window also bounds the memory a burst of puts holds in the socket.
 */
export const MAX_IN_FLIGHT = 4_096;

/** The deadlines of a {@link CommandWire} (see ConnectOptions). */
export interface WireOptions {
  readonly commandTimeoutMs: number | undefined;
  readonly stallTimeoutMs: number | undefined;
  readonly unrefWhenIdle: boolean;
}

/** One connection's commands in flight. */
export class CommandWire {
  readonly address: ServerAddress;
  readonly client: FiveBeansClient;
  /** The reject of every command not yet settled, with the command's name. */
  readonly #pending = new Map<Reject, string>();
  /** Commands written and waiting for their reply, oldest first: replies come back in that order. */
  readonly #replies = new Fifo<PendingReply | RawCommand>();
  /** Our fast-path commands in #outgoing: if the connection ends first, they were never sent. */
  #outgoingRaw: RawCommand[] = [];
  /** Commands waiting for room in the window (`#replies` is full), oldest first, and their rejects. */
  readonly #waiting = new Fifo<readonly [send: () => void, reject: Reject]>();
  /** Our commands written in this synchronous stretch of code, sent together by #flush. */
  #outgoing: (string | Buffer)[] = [];
  /** The rejects of the commands in #outgoing: if the connection ends first, they were never sent. */
  #outgoingRejects: Reject[] = [];
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

  constructor(address: ServerAddress, client: FiveBeansClient, options: WireOptions) {
    this.address = address;
    this.client = client;
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#stallTimeoutMs = options.stallTimeoutMs;
    this.#unrefWhenIdle = options.unrefWhenIdle;
    this.#whenClosed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
    // fivebeans' commands queue their handlers here, in the same order as ours.
    client.handlers = this.#replies as Fifo<PendingReply>;
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
  /** One reply: settles the oldest command waiting, in fivebeans' calling convention or ours. */
  #onReply(words: string[], body: Buffer | undefined): void {
    const waiting = this.#replies.shift();
    if (waiting === undefined) {
      this.breakStream(new ProtocolError('BAD_REPLY', `a reply no command asked for (${words[0] ?? ''})`));
      return;
    }
    if (waiting instanceof RawCommand) {
      this.#settleRaw(waiting, words, body);
      if (this.#replies.length === 0) this.#onIdle();
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
  call<T>(
    command: string,
    id: string | undefined,
    invoke: (cb: (err: string | null, value: T) => void) => void,
    batched = false,
  ): Promise<T> {
    if (this.#closed || this.#broken) {
      return Promise.reject(this.unsentError(this.#broken ?? this.#closeError ?? this.#closedError(command), command));
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(reject, command);
      const limit = command === 'reserve-with-timeout' ? undefined : this.#commandTimeoutMs;
      const timer =
        limit === undefined
          ? undefined
          : setTimeout(() => {
              const where = formatAddress(this.address);
              this.breakStream(
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
          if (isProtocolReply(err)) this.breakStream(error);
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
   * Writes one of our commands (`bytes`, a whole command line, with the body for a put) and settles
   * from its reply: `read` turns the expected reply into the value, any other reply word is a failure.
   */
  callRaw<T>(
    command: string,
    id: string | undefined,
    expected: RawReply,
    bytes: string | Buffer,
    read: (words: string[], body: Buffer | undefined) => T,
  ): Promise<T> {
    // The hot path: room in the window, nothing waiting for it, no timer per command (workers and
    // producers bound their commands with the stall watchdog instead). One object per command.
    if (
      !this.#closed &&
      this.#broken === undefined &&
      this.#commandTimeoutMs === undefined &&
      this.#waiting.length === 0 &&
      this.#replies.length < MAX_IN_FLIGHT &&
      this.client.stream
    ) {
      const pending = new RawCommand<T>(command, id, expected, read);
      const promise = new Promise<T>((resolve, reject) => {
        pending.resolve = resolve;
        pending.reject = reject;
      });
      if (this.#replies.length === 0) this.#onBusy();
      // Stored untyped: the reply queue holds commands of every value type.
      const untyped = pending as unknown as RawCommand;
      this.#replies.push(untyped);
      this.#outgoingRaw.push(untyped);
      this.#write(bytes);
      return promise;
    }
    return this.call<T>(
      command,
      id,
      (cb) => {
        if (!this.client.stream) throw new Error('not connected');
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
  /** A reply to one of our fast-path commands; the same rules as call()'s settle. */
  #settleRaw(pending: RawCommand, words: string[], body: Buffer | undefined): void {
    if (this.#waiting.length > 0) this.#sendWaiting();
    if (pending.done) return;
    if (this.#broken) {
      pending.fail(this.#lost(pending.command, this.#broken));
      return;
    }
    if (pending.succeed(words, body)) return;
    const error = errorFromReply(words[0] ?? '', pending.command, pending.id);
    if (isProtocolReply(words[0] ?? '')) this.breakStream(error);
    pending.fail(error);
  }
  /** Sends what {@link CommandWire.write} queued, in order, in one write. */
  #flush(): void {
    const chunks = this.#outgoing;
    if (chunks.length === 0) return;
    const stream = this.client.stream;
    // Kept for #handleClose, which rejects them as never sent.
    if (!stream || stream.destroyed) return;
    this.#outgoing = [];
    this.#outgoingRejects = [];
    this.#outgoingRaw = [];
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
  breakStream(cause: Error): void {
    const where = formatAddress(this.address);
    this.#broken =
      cause instanceof ConnectionError
        ? cause
        : new ConnectionError(where, `the connection to beanstalkd at ${where} was closed after a protocol error`, { cause });
    this.client.stream?.destroy();
  }
  #closedError(command: string): ConnectionError {
    const where = formatAddress(this.address);
    return new ConnectionError(where, `the connection to beanstalkd at ${where} is closed`, { command });
  }
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
    const unsent = this.#outgoingRejects;
    this.#outgoingRejects = [];
    this.#outgoing = [];
    const unsentRaw = new Set(this.#outgoingRaw);
    this.#outgoingRaw = [];
    // Our fast-path commands are all in the reply queue: the unsent ones first, as never written.
    const written: RawCommand[] = [];
    for (let entry = this.#replies.shift(); entry !== undefined; entry = this.#replies.shift()) {
      if (!(entry instanceof RawCommand) || entry.done) continue;
      if (unsentRaw.has(entry)) entry.fail(this.unsentError(error, entry.command));
      else written.push(entry);
    }
    for (let waiting = this.#waiting.shift(); waiting !== undefined; waiting = this.#waiting.shift()) unsent.push(waiting[1]);
    let unsentError: ConnectionError | undefined;
    for (const reject of unsent) {
      if (!this.#pending.delete(reject)) continue;
      unsentError ??= this.unsentError(error);
      reject(unsentError);
    }
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [reject, command] of pending) reject(this.#lost(command, error));
    for (const entry of written) entry.fail(this.#lost(entry.command, error));
  }
  /** A copy of `reason` marked as the failure of a command that was never written. */
  unsentError(reason: ConnectionError, command?: string): ConnectionError {
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
    if (this.#unrefWhenIdle) this.client.stream?.ref();
    if (this.#stallTimeoutMs === undefined) return;
    this.#progressAt = Date.now();
    if (this.#stallTimer === undefined) this.#armStallTimer(this.#stallTimeoutMs);
  }
  /** Busy to idle: nothing waits. An idle producer's socket must not keep the process alive. */
  #onIdle(): void {
    if (this.#unrefWhenIdle) this.client.stream?.unref();
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
    this.breakStream(
      new ConnectionError(where, `beanstalkd at ${where} sent nothing for ${limit} ms while ${this.#replies.length} command(s) waited`),
    );
  }
}
