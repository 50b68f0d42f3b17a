/**
 * The options of a connection: how long to wait for the server, and whether an idle socket keeps the
 * process alive. ./connection.ts re-exports them; they live here to keep that file to the command API.
 */

/** Options for `BeanstalkConnection.connect`. */
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
