/**
 * One of bsworker's own commands (put, reserve, delete, release, bury, touch, peek, stats-job) waiting
 * for its reply: the command's one object on the hot path. It sits in the wire's reply queue in the
 * place of fivebeans' `[handler, callback]` pair, and settles its promise from the reply; the closures,
 * the pending-map entry and the pair a command cost before are gone (see CommandWire.callRaw).
 */
import type { RawReply } from './wire.js';

/** A written (or batched) command of ours and the promise it settles. */
export class RawCommand<T = unknown> {
  readonly command: string;
  readonly id: string | undefined;
  readonly expected: RawReply;
  readonly read: (words: string[], body: Buffer | undefined) => T;
  resolve!: (value: T) => void;
  reject!: (error: Error) => void;
  /** Set once the promise has settled: a later reply or close is ignored. */
  done = false;

  constructor(command: string, id: string | undefined, expected: RawReply, read: (words: string[], body: Buffer | undefined) => T) {
    this.command = command;
    this.id = id;
    this.expected = expected;
    this.read = read;
  }

  /** Settles with the value of the expected reply (or null for the reply that means "nothing"). */
  succeed(words: string[], body: Buffer | undefined): boolean {
    const word = words[0];
    if (word === this.expected.expectedResponse) {
      this.done = true;
      this.resolve(this.read(words, body));
      return true;
    }
    if (word === this.expected.nullReply) {
      this.done = true;
      this.resolve(null as T);
      return true;
    }
    return false;
  }

  /** Rejects with `error`, unless the command has already settled. */
  fail(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.reject(error);
  }
}
