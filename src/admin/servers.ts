/**
 * The servers the admin layer talks to: one lazily opened, reused connection each (an HTTP server calls
 * the layer many times; a connection per call would cost a handshake and a `stats` each time), reopened
 * on the next use after a loss. A use never waits for a server that is down: one attempt, bounded by
 * `connectTimeoutMs`; every command is bounded by the stall watchdog (`stallTimeoutMs`: a connection whose
 * server sends nothing that long while commands wait is dropped, and they fail).
 *
 * Commands pipeline on the one connection, except those that depend on the tube in use (`use` then
 * `peek-buried`, `kick-job` after it, `put`): beanstalkd keeps one tube in use per connection, so those
 * run one sequence at a time per server ({@link AdminServer.inTube}), which ends using `default` again.
 */
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import { type ConnectFunction, LazyConnection } from '../beanstalk/lazy-connection.js';
import type { Beanstalk } from '../beanstalk/types.js';
import { toAdminError } from './errors.js';

/** How the connections are made; see {@link AdminOptions}. */
export interface ServerConnectOptions {
  readonly connectTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly connect?: ConnectFunction;
}

/** One configured server. */
export class AdminServer {
  /** `host:port`: the name results carry in `server`. */
  readonly name: string;
  readonly address: ServerAddress;
  readonly #connection: LazyConnection;
  /** The tail of the sequences that depend on the tube in use; each waits for the one before. */
  #tubeTail: Promise<unknown> = Promise.resolve();

  constructor(address: ServerAddress, options: ServerConnectOptions) {
    this.address = address;
    this.name = formatAddress(address);
    this.#connection = new LazyConnection({
      address,
      connectTimeoutMs: options.connectTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs,
      retry: false,
      ...(options.connect === undefined ? {} : { connect: options.connect }),
    });
  }

  /** The open connection, if there is one (for `maxJobSize` without a round trip). */
  get current(): Beanstalk | undefined {
    return this.#connection.current;
  }

  /**
   * Runs `action` on this server's connection (opened if needed). Adapter failures come out as admin
   * errors (see {@link toAdminError}) naming this server.
   */
  async run<T>(action: (connection: Beanstalk) => Promise<T>): Promise<T> {
    try {
      return await action(await this.#connection.get());
    } catch (error) {
      throw toAdminError(error, this.name);
    }
  }

  /**
   * Runs `action` with `tube` in use, alone among this server's tube-dependent sequences: nothing else
   * can `use` another tube between its commands. Other commands still pipeline beside it.
   */
  inTube<T>(tube: string, action: (connection: Beanstalk) => Promise<T>): Promise<T> {
    const run = this.#tubeTail.then(() =>
      this.run(async (connection) => {
        await connection.use(tube);
        try {
          return await action(connection);
        } finally {
          // Back to `default`: a tube stays listed for as long as a connection uses it, and this one is
          // long-lived. A lost connection has nothing to give back.
          await connection.use('default').catch(() => undefined);
        }
      }),
    );
    this.#tubeTail = run.catch(() => undefined);
    return run;
  }

  /** Closes the connection; later uses are refused. Idempotent. */
  close(): Promise<void> {
    return this.#connection.close();
  }
}
