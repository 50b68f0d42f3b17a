/** The options of a JobQueue: its servers, logger, put defaults, inline mode and connect bound. */
import type { ConnectFunction } from '../beanstalk/lazy-connection.js';
import type { Logger } from '../logging/logger.js';
import type { ServerUrls } from '../servers/server-list.js';
import type { PutDefaults } from './types.js';

/** Options of `JobQueue`. */
export interface JobQueueOptions {
  /**
   * The beanstalkd server: `beanstalk://host:port`, `host:port` or `host`; several as a comma-separated
   * list or an array, over which puts are spread (see the README's "Several servers").
   * @defaultValue `BEANSTALKD_URL` from the environment, else `127.0.0.1:11300`
   */
  readonly url?: ServerUrls;
  /** @defaultValue a pino logger at `info` (JSON, or pretty on a terminal) */
  readonly logger?: Logger;
  /** Priority, delay and TTR for every put of this queue, below task and call options. */
  readonly defaults?: PutDefaults;
  /**
   * Run tasks in-process on `put` instead of sending them to beanstalkd (for tests of user code; no
   * server needed). The kwargs still go through the wire format, so tests see what a worker would.
   * @defaultValue true when the environment has `BSWORKER_INLINE=1`
   */
  readonly inline?: boolean;
  /**
   * How long a put may wait for the server, whether it is unreachable (the put retries) or stopped
   * answering (the connection is dropped), before rejecting with ConnectionError.
   * @defaultValue 10000
   */
  readonly connectTimeoutMs?: number;
  /** Opens connections; replace it to test without a server. @defaultValue BeanstalkConnection.connect */
  readonly connect?: ConnectFunction;
}
