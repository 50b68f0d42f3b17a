/**
 * One command waiting for its reply: the command's one object on the hot path. It sits in the
 * pipeline's reply queue (or its queue of commands waiting for room in the window) and settles its
 * promise from the reply, so a command costs no closures, no map entry and no `[handler, callback]` pair.
 */
import type { ExpectedReply } from './replies.js';

/** Turns the expected reply (its words and data block) into the command's value. */
export type ReadReply<T> = (words: string[], body: Buffer | undefined) => T;

/**
 * What settles a command sent without a promise of its own (see Pipeline.sendThen): an object with
 * methods, so a caller that sends many commands needs no closures per command.
 */
export interface Settle<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/** A command and the promise (or the {@link Settle}) it settles. */
export class PendingCommand<T = unknown> {
  /** The command's name (`put`, `delete`...), for error messages and the put-outcome rule. */
  readonly command: string;
  /** The job id it names, if any, for error messages. */
  readonly id: string | undefined;
  readonly expected: ExpectedReply;
  readonly read: ReadReply<T>;
  /** Set by the promise's executor right after construction (one object per command, no closure). */
  resolve!: (value: T) => void;
  /** Set with {@link resolve}. */
  reject!: (error: Error) => void;
  /** When set, settles the command instead of {@link resolve} and {@link reject}. */
  settle: Settle<T> | undefined = undefined;
  /** Set once the promise has settled: a later reply or close is ignored. */
  done = false;
  /** The command's own deadline (only with `commandTimeoutMs`): cleared when it settles. */
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(command: string, id: string | undefined, expected: ExpectedReply, read: ReadReply<T>) {
    this.command = command;
    this.id = id;
    this.expected = expected;
    this.read = read;
  }

  /** Settles with the value of the expected reply (or null for the reply that means "nothing"). */
  succeed(words: string[], body: Buffer | undefined): boolean {
    const word = words[0];
    if (word === this.expected.word) {
      this.#settled();
      this.#resolve(this.read(words, body));
      return true;
    }
    if (word === this.expected.nullWord) {
      this.#settled();
      this.#resolve(null as T);
      return true;
    }
    return false;
  }

  /** Rejects with `error`, unless the command has already settled. */
  fail(error: Error): void {
    if (this.done) return;
    this.#settled();
    if (this.settle) this.settle.reject(error);
    else this.reject(error);
  }

  #resolve(value: T): void {
    if (this.settle) this.settle.resolve(value);
    else this.resolve(value);
  }

  #settled(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}
