/**
 * Types for the part of fivebeans 1.5.0 that bsworker uses: its client, imported directly from
 * `fivebeans/lib/client.js` so that its bundled worker (and the old yargs/lodash it needs) never loads.
 *
 * fivebeans ships no types. Only `src/beanstalk/connection.ts` imports this module.
 * Failure replies reach callbacks as bare strings (`'NOT_FOUND'`, `'TIMED_OUT'`, ...), never as Errors.
 */
declare module 'fivebeans/lib/client.js' {
  import type { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';

  /** The error argument of a callback: a beanstalkd reply word such as `'NOT_FOUND'`, or null. */
  type ReplyError = string | null;
  type Done = (err: ReplyError) => void;
  type With<T> = (err: ReplyError, value: T) => void;

  class FiveBeansClient extends EventEmitter {
    constructor(host?: string, port?: number);
    /** The socket, set by `connect()`. */
    stream: Socket | null;
    /**
     * Pending `[handler, callback]` pairs, oldest first; never cleared when the socket closes. Each
     * command pushes its pair here; anything with a `push` will do.
     */
    handlers: { push(entry: [{ readonly expectedResponse: string }, (err: ReplyError, ...args: unknown[]) => void]): unknown };
    connect(): void;
    end(): void;

    use(tube: string, cb: With<string>): void;
    watch(tube: string, cb: With<string>): void;
    ignore(tube: string, cb: With<string>): void;
    kick(bound: number, cb: With<string>): void;
    kick_job(id: string, cb: Done): void;
    peek(id: string, cb: (err: ReplyError, id: string, body: Buffer) => void): void;
    peek_ready(cb: (err: ReplyError, id: string, body: Buffer) => void): void;
    peek_delayed(cb: (err: ReplyError, id: string, body: Buffer) => void): void;
    peek_buried(cb: (err: ReplyError, id: string, body: Buffer) => void): void;
    pause_tube(tube: string, seconds: number, cb: Done): void;
    list_tubes(cb: With<unknown>): void;
    list_tubes_watched(cb: With<unknown>): void;
    stats(cb: With<unknown>): void;
    stats_tube(tube: string, cb: With<unknown>): void;
    stats_job(id: string, cb: With<unknown>): void;
  }

  export default FiveBeansClient;
}
