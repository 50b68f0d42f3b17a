/**
 * Types for the part of fivebeans 1.5.0 that bsworker uses: its client, imported directly from
 * `fivebeans/lib/client.js` so that its bundled worker (and the old yargs/lodash it needs) never loads.
 *
 * fivebeans ships no types. Only `src/beanstalk/fivebeans-socket.ts` imports this module, and it uses
 * the client to open the socket and nothing else: every command and reply is bsworker's own.
 */
declare module 'fivebeans/lib/client.js' {
  import type { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';

  class FiveBeansClient extends EventEmitter {
    constructor(host?: string, port?: number);
    /** The socket, set by `connect()`. */
    stream: Socket | null;
    /** Opens the socket; re-emits its 'connect', 'error' and 'close' on the client. */
    connect(): void;
  }

  export default FiveBeansClient;
}
