/**
 * A closed standard output (`bsworker stats | head -1`, a log shipper that went away) ends a command
 * quietly with exit 0, as `git log | head` does: the reader has seen all it wanted. Node reports the
 * broken pipe as an `EPIPE` 'error' on process.stdout, which unhandled would crash with a stack trace.
 */

import pino from 'pino';
import type { Logger } from '../logging/logger.js';

/** What to do when stdout is found closed; the worker replaces it with a graceful stop. */
let onClosed: () => void = () => process.exit(0);

/** True for the error a write to a closed pipe gets. */
export function isBrokenPipe(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'EPIPE';
}

/**
 * Replaces what happens when stdout closes. The worker uses it to stop gracefully: its running jobs
 * still finish and are deleted, though nobody reads their log lines any more.
 */
export function setStdoutClosedHandler(handler: () => void): void {
  onClosed = handler;
}

let closed = false;
/** The pino destinations that write to stdout, to be silenced once it is closed. */
const logStreams = new Set<Record<string, unknown>>();

/** Called when a write to stdout failed because the pipe is closed; acts on the first call only. */
export function stdoutClosed(): void {
  if (closed) return;
  closed = true;
  // As pino does itself when its destination reports EPIPE, which it may not have yet: otherwise the
  // flush at exit (sonic-boom's flushSync retries every error but EAGAIN) would spin for ever on EPIPE.
  for (const stream of logStreams) {
    for (const method of ['write', 'flush', 'flushSync', 'end']) stream[method] = () => true;
  }
  onClosed();
}

/**
 * Watches the stdout destination of a pino logger made by createLogger: its EPIPE (it writes with
 * fs.writeSync, not through process.stdout) is a closed stdout too.
 */
export function watchLoggerOutput(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, (NodeJS.EventEmitter & Record<string, unknown>) | undefined>)[pino.symbols.streamSym];
  if (stream === undefined || typeof stream.on !== 'function') return;
  logStreams.add(stream);
  stream.on('error', (error: unknown) => {
    if (isBrokenPipe(error)) stdoutClosed();
  });
}

let installed = false;

/**
 * Listens for errors on process.stdout and process.stderr, once per process: a broken pipe calls the
 * current handler (stdout) or is ignored (stderr: nothing is left to report to); any other error
 * still ends the process with exit 1.
 */
export function handleClosedOutput(): void {
  if (installed) return;
  installed = true;
  process.stdout.on('error', (error) => {
    if (isBrokenPipe(error)) stdoutClosed();
    else {
      process.stderr.write(`bsworker: error: cannot write to stdout: ${error.message}\n`);
      process.exit(1);
    }
  });
  process.stderr.on('error', () => undefined);
}
