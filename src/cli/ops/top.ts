/**
 * `bsworker top`: every tube's counts and per-second rates, refreshed until Ctrl-C. On a terminal the
 * frame is redrawn in place, fitted to the terminal's size; anywhere else each refresh prints plain
 * `key=value` lines, for logs and scripts, and with `--json` one JSON object per refresh. The readings
 * come from the admin layer ({@link readSnapshot}); the rates and the frames are in `top-frame.ts`.
 */

import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Admin } from '../../admin/admin.js';
import { AdminError } from '../../admin/errors.js';
import { adminFor } from '../connection.js';
import { type Output, terminalSafeJson } from '../output.js';
import { integerIn } from '../parse.js';
import { listenForStopSignals } from '../signals.js';
import { opsAction, serverOption, urlOf, urlOption } from './common.js';
import { computeRates, frameJson, renderFrame, severalFrameJson, type TopSnapshot, timestamp } from './top-frame.js';

/** Reads the servers' and every tube's counters: one admin overview. */
export function readSnapshot(admin: Admin): Promise<TopSnapshot> {
  return admin.overview();
}

/** Options of {@link runTop}. */
export interface TopOptions {
  /** The server, or several comma-separated (else `BEANSTALKD_URL`, else 127.0.0.1:11300). */
  readonly url?: string;
  /** With several servers: only this one (`--server`). */
  readonly server?: string;
  /** Seconds between refreshes. @defaultValue 1 */
  readonly intervalSeconds?: number;
  /** Stop after this many refreshes (for scripts and tests). @defaultValue unlimited */
  readonly iterations?: number;
  /** Aborting it ends the view after the current step (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Where plain (non-terminal) output reports a lost connection. @defaultValue a line on stderr */
  readonly warn?: (line: string) => void;
  /** The terminal's current height, read at every frame because the terminal may be resized. */
  readonly terminalRows?: () => number | undefined;
  /** The terminal's current width, read at every frame: a wider frame would wrap and scroll. */
  readonly terminalColumns?: () => number | undefined;
  /** Print one {@link TopJson} line per refresh instead of a view or key=value lines. @defaultValue false */
  readonly json?: boolean;
}

/** Escape sequences of the live view. */
const ANSI = Object.freeze({
  hideCursor: '\x1b[?25l',
  showCursor: '\x1b[?25h',
  home: '\x1b[H',
  clearScreen: '\x1b[2J',
  clearToEndOfLine: '\x1b[K',
  clearBelow: '\x1b[J',
});

/** Resolves after `ms`, or at once when `signal` is aborted. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Settles like `promise`, but resolves to `undefined` as soon as `signal` is aborted: Ctrl-C must not
 * wait for the server. (A server that stops answering is bounded by the admin layer's stall deadline.)
 */
function settleFirst<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (signal?.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const finish = (settle: () => void): void => {
      // Removed every time: one listener per refresh would otherwise pile up on the signal.
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = (): void => finish(() => resolve(undefined));
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error)),
    );
  });
}

/**
 * Runs the live view until `iterations` refreshes are done or `signal` is aborted. One admin (one
 * connection per server) serves the whole session; when it is lost, the view shows the error and
 * reconnects at each refresh. An unreachable server at the start rejects at once with the admin layer's
 * UnavailableError (which says how to start beanstalkd), since there is nothing to show yet.
 */
export async function runTop(output: Output, options: TopOptions = {}): Promise<void> {
  const intervalMs = (options.intervalSeconds ?? 1) * 1_000;
  const { signal } = options;
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const admin = adminFor(options.url, {
    ...(options.server === undefined ? {} : { server: options.server }),
    // Waiting for the server is bounded by about one interval, so a refresh (and its error) is never long late.
    connectTimeoutMs: Math.min(5_000, Math.max(1_000, intervalMs)),
    // The commands of one refresh: a server that stops answering costs the connection, reopened next time.
    stallTimeoutMs: Math.max(5_000, 2 * intervalMs),
  });
  const where = admin.serverNames.join(', ');
  const started = Date.now();
  let previous: TopSnapshot | undefined;
  let drawn = false;
  try {
    for (let frame = 1; !signal?.aborted; frame += 1) {
      let snapshot: TopSnapshot | undefined;
      let failure: string | undefined;
      try {
        snapshot = await settleFirst(readSnapshot(admin), signal);
        if (signal?.aborted) break;
      } catch (error) {
        if (signal?.aborted) break;
        // Only trouble with the server is worth retrying; at the start it is bad input instead.
        if (!(error instanceof AdminError) || previous === undefined) throw error;
        // The admin layer reopens a lost (or dropped) connection at the next call.
        failure = error.message;
      }

      const rates =
        snapshot && previous ? computeRates(previous, snapshot, (Date.parse(snapshot.at) - Date.parse(previous.at)) / 1_000) : null;
      const shown = snapshot ?? previous;
      // Cannot happen (a failure before any snapshot was rethrown above); it narrows the type.
      if (shown === undefined) throw new Error('bsworker top: nothing to show');
      if (options.json) {
        if (failure === undefined && snapshot) {
          output.print(terminalSafeJson(admin.several ? severalFrameJson(snapshot, rates) : frameJson(snapshot, rates)));
        } else warn(`${timestamp(new Date())} error: ${failure}; retrying every ${intervalMs / 1_000}s`);
      } else if (output.isTTY) {
        const rows = options.terminalRows?.();
        const columns = options.terminalColumns?.();
        const lines = renderFrame(shown, rates, output, {
          address: where,
          intervalSeconds: intervalMs / 1_000,
          error: failure,
          // One line is kept free: the newline after the frame must not scroll the screen.
          // A pseudo-terminal without a size reports 0 rows: that means unknown, not "no room".
          maxLines: rows === undefined || rows <= 0 ? undefined : rows - 1,
          maxColumns: columns === undefined || columns <= 0 ? undefined : columns,
        });
        // Home, overwrite each line, clear what is left: no flicker, and no copy of every frame in the
        // scrollback, as clearing the whole screen each time gives on some terminals. Cleared once, first.
        const head = drawn ? ANSI.home : ANSI.hideCursor + ANSI.home + ANSI.clearScreen;
        output.print(head + lines.map((line) => line + ANSI.clearToEndOfLine).join('\n') + ANSI.clearBelow);
        drawn = true;
      } else if (failure === undefined && snapshot) {
        for (const line of renderFrame(snapshot, rates, output)) output.print(line);
      } else {
        warn(`${timestamp(new Date())} error: ${failure}; retrying every ${intervalMs / 1_000}s`);
      }
      if (snapshot) previous = snapshot;

      if (options.iterations !== undefined && frame >= options.iterations) break;
      // On a fixed grid from the start, so a slow refresh does not push every later one back.
      await pause(intervalMs - ((Date.now() - started) % intervalMs), signal);
    }
  } finally {
    // The last frame stays on the screen; only the cursor comes back.
    if (drawn) output.print(ANSI.showCursor);
    // Bounded: the process exits after this, and a hung server must not hold up Ctrl-C.
    await Promise.race([admin.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
  }
}

/** `--interval`: seconds, whole or decimal, from 0.1 to 3600. */
function parseInterval(value: string): number {
  const seconds = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value.trim()) || !(seconds >= 0.1 && seconds <= 3_600)) {
    throw new InvalidArgumentError('expected a number of seconds from 0.1 to 3600, like 1 or 0.5');
  }
  return seconds;
}

/** Registers `top`. */
export function registerTopCommand(program: Command, output: Output): void {
  program
    .command('top')
    .description("a live view of every tube's counts and rates (jobs in and done per second), until Ctrl-C")
    .addOption(new Option('--interval <seconds>', 'seconds between refreshes').argParser(parseInterval).default(1))
    .option('--iterations <n>', 'stop after n refreshes (for scripts; default: until Ctrl-C)', integerIn(1))
    .addOption(new Option('--json', 'print one JSON object per refresh (JSON lines), in the shapes of stats --json'))
    .addOption(urlOption())
    .addOption(serverOption())
    .addHelpText(
      'after',
      '\nWith several servers (--url a,b,c) the counts are summed over those that answer; a server that is down is named in every refresh.\nOff a terminal (piped, logged) each refresh prints plain key=value lines instead of redrawing.',
    )
    .action(
      opsAction(
        async (options: { interval: number; iterations?: number; url?: string; server?: string; json?: boolean }, command: Command) => {
          const controller = new AbortController();
          const stopListening = listenForStopSignals((_signal, nth) => {
            if (nth === 1) {
              controller.abort();
              return;
            }
            // A second Ctrl-C while the first is still closing: leave now, but never with a hidden cursor.
            if (output.isTTY && options.json !== true) output.print(ANSI.showCursor);
            process.exit(130);
          });
          try {
            await runTop(output, {
              url: urlOf(command, options),
              ...(options.server === undefined ? {} : { server: options.server }),
              intervalSeconds: options.interval,
              iterations: options.iterations,
              signal: controller.signal,
              terminalRows: () => process.stdout.rows,
              terminalColumns: () => process.stdout.columns,
              json: options.json === true,
            });
          } finally {
            stopListening();
          }
        },
      ),
    );
}
