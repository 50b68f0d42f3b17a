/**
 * `bsworker top`: every tube's counts and per-second rates, refreshed until Ctrl-C. On a terminal the
 * frame is redrawn in place; anywhere else each refresh prints plain `key=value` lines, for logs and
 * scripts. Reading the server ({@link readSnapshot}), the rates ({@link computeRates}) and the frame
 * ({@link renderFrame}) are separate, and the last two are pure, so they are unit-tested without a server.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { formatAddress, resolveServerAddress } from '../../beanstalk/address.js';
import { BeanstalkError, ConnectionError } from '../../beanstalk/errors.js';
import { LazyConnection } from '../../beanstalk/lazy-connection.js';
import type { Beanstalk } from '../../beanstalk/types.js';
import { colors, type Output, renderTable } from '../output.js';
import { integerIn } from '../parse.js';
import { opsAction, urlOf, urlOption } from './common.js';

/** One tube's counters at one moment. */
export interface TubeCounts {
  readonly tube: string;
  readonly ready: number;
  readonly reserved: number;
  readonly delayed: number;
  readonly buried: number;
  /** Connections blocked in a reserve on this tube: idle workers. */
  readonly waiting: number;
  /** Connections watching this tube: workers, idle or busy. */
  readonly watching: number;
  /** Jobs ever put into the tube (`total-jobs`): its growth is the "in" rate. */
  readonly totalJobs: number;
  /** Deletes ever done in the tube (`cmd-delete`): its growth is the "done" rate. */
  readonly deletes: number;
}

/** Server-wide counters at one moment. */
export interface ServerCounts {
  readonly connections: number;
  /** Jobs ever put (`total-jobs`). */
  readonly totalJobs: number;
  /** Deletes ever done (`cmd-delete`). */
  readonly deletes: number;
  /** Lets {@link computeRates} see a restart, after which every counter starts again from zero. */
  readonly uptimeSeconds: number;
}

/** What one refresh read from the server. */
export interface TopSnapshot {
  /** When the reading started. */
  readonly at: Date;
  readonly server: ServerCounts;
  /** Sorted by tube name, so rows keep their place from frame to frame. */
  readonly tubes: readonly TubeCounts[];
}

/** Jobs per second over the last interval. */
export interface Rate {
  /** Jobs put per second. */
  readonly inPerSecond: number;
  /** Jobs deleted (finished) per second. */
  readonly donePerSecond: number;
}

/** The rates between two snapshots. A tube without an entry has no rate yet (it is new, or was recreated). */
export interface TopRates {
  readonly server: Rate;
  readonly tubes: ReadonlyMap<string, Rate>;
}

/** How the frame is labelled; everything is optional so tests can render bare frames. */
export interface FrameContext {
  /** The server, `host:port`, for the title line. */
  readonly address?: string;
  readonly intervalSeconds?: number;
  /** A connection problem to show above the last counts (terminal only; plain output reports it apart). */
  readonly error?: string;
  /** The terminal's height: a frame taller than the screen would scroll and break the redraw. */
  readonly maxLines?: number;
}

/** Reads the server's and every tube's counters, pipelined on one connection. */
export async function readSnapshot(connection: Beanstalk, now: () => Date = () => new Date()): Promise<TopSnapshot> {
  const at = now();
  const [stats, names] = await Promise.all([connection.stats(), connection.listTubes()]);
  const all = await Promise.all(names.map((name) => connection.statsTube(name)));
  const tubes: TubeCounts[] = [];
  for (const tubeStats of all) {
    // null: the tube vanished between list-tubes and stats-tube (beanstalkd drops unused empty tubes).
    if (tubeStats === null) continue;
    const { name: tube, ready, reserved, delayed, buried, waiting, watching, total: totalJobs, deletes } = tubeStats;
    tubes.push({ tube, ready, reserved, delayed, buried, waiting, watching, totalJobs, deletes });
  }
  tubes.sort((a, b) => (a.tube < b.tube ? -1 : a.tube > b.tube ? 1 : 0));
  const count = (key: string): number => {
    const value = Number(stats[key]);
    return Number.isFinite(value) ? value : 0;
  };
  return {
    at,
    server: {
      connections: count('current-connections'),
      totalJobs: count('total-jobs'),
      deletes: count('cmd-delete'),
      uptimeSeconds: count('uptime'),
    },
    tubes,
  };
}

/** The growth of a counter per second, or null when it shrank (the counter was reset). */
function perSecond(before: number, after: number, seconds: number): number | null {
  return after >= before ? (after - before) / seconds : null;
}

function rateOf(
  before: { totalJobs: number; deletes: number },
  after: { totalJobs: number; deletes: number },
  seconds: number,
): Rate | null {
  const inPerSecond = perSecond(before.totalJobs, after.totalJobs, seconds);
  const donePerSecond = perSecond(before.deletes, after.deletes, seconds);
  return inPerSecond === null || donePerSecond === null ? null : { inPerSecond, donePerSecond };
}

/**
 * The rates between `prev` and `next`, `seconds` apart. Null on the first frame (no `prev`), for a
 * non-positive interval, and after a server restart, whose counters start again from zero. A tube that
 * is new, or whose counters shrank (beanstalkd dropped it and it was created again), has no entry.
 * Rates are never negative.
 */
export function computeRates(prev: TopSnapshot | undefined, next: TopSnapshot, seconds: number): TopRates | null {
  if (prev === undefined || !(seconds > 0) || next.server.uptimeSeconds < prev.server.uptimeSeconds) return null;
  const server = rateOf(prev.server, next.server, seconds);
  if (server === null) return null;
  const before = new Map(prev.tubes.map((tube) => [tube.tube, tube]));
  const tubes = new Map<string, Rate>();
  for (const tube of next.tubes) {
    const old = before.get(tube.tube);
    const rate = old && rateOf(old, tube, seconds);
    if (rate) tubes.set(tube.tube, rate);
  }
  return { server, tubes };
}

/** `2026-11-24T03:00:00Z`: whole seconds are enough for a view refreshed every second. */
function timestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function formatRate(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(1);
}

/** Right-aligns a column of strings: the table only right-aligns numbers, and rates are text ('-', '4.0'). */
function alignRight(values: readonly string[], header: string): string[] {
  const width = Math.max(header.length, ...values.map((value) => value.length));
  return values.map((value) => value.padStart(width));
}

/**
 * Renders one frame as lines. On a terminal (`output.isTTY`): a title, a server line and a table of the
 * tubes, cut to `context.maxLines`. Otherwise plain lines without escape codes, one for the server and
 * one per tube:
 * `2026-11-24T03:00:00Z tube=emails ready=3 reserved=1 delayed=0 buried=2 waiting=0 watching=1 in/s=4.0 done/s=3.0`.
 * Without `rates` (the first frame) every rate is `-`.
 */
export function renderFrame(snapshot: TopSnapshot, rates: TopRates | null, output: Output, context: FrameContext = {}): string[] {
  const at = timestamp(snapshot.at);
  const server = snapshot.server;
  const serverIn = formatRate(rates?.server.inPerSecond);
  const serverDone = formatRate(rates?.server.donePerSecond);
  if (!output.isTTY) {
    return [
      `${at} server connections=${server.connections} tubes=${snapshot.tubes.length} in/s=${serverIn} done/s=${serverDone}`,
      ...snapshot.tubes.map((t) => {
        const rate = rates?.tubes.get(t.tube);
        return (
          `${at} tube=${t.tube} ready=${t.ready} reserved=${t.reserved} delayed=${t.delayed} buried=${t.buried} ` +
          `waiting=${t.waiting} watching=${t.watching} in/s=${formatRate(rate?.inPerSecond)} done/s=${formatRate(rate?.donePerSecond)}`
        );
      }),
    ];
  }

  const c = colors(output);
  const where = context.address === undefined ? '' : ` ${context.address}`;
  const every = context.intervalSeconds === undefined ? '' : `, every ${context.intervalSeconds}s`;
  const lines = [`${c.bold(`bsworker top${where}`)}  ${at}${every}  (Ctrl-C to quit)`];
  if (context.error !== undefined) lines.push(c.red(`${context.error}; retrying (the counts below are from ${at})`));
  lines.push(
    `server: ${server.connections} connection${server.connections === 1 ? '' : 's'}, ${snapshot.tubes.length} tube${snapshot.tubes.length === 1 ? '' : 's'}, in ${serverIn} jobs/s, done ${serverDone} jobs/s`,
  );

  // The table takes 3 lines besides its rows (top border, head, bottom border), plus one for "N more".
  const room = context.maxLines === undefined ? Number.POSITIVE_INFINITY : context.maxLines - lines.length - 4;
  const shown = snapshot.tubes.length <= room + 1 ? snapshot.tubes : snapshot.tubes.slice(0, Math.max(0, room));
  const ins = alignRight(
    shown.map((t) => formatRate(rates?.tubes.get(t.tube)?.inPerSecond)),
    'in/s',
  );
  const dones = alignRight(
    shown.map((t) => formatRate(rates?.tubes.get(t.tube)?.donePerSecond)),
    'done/s',
  );
  const rows = shown.map((t, i) => [
    t.tube,
    t.ready,
    t.reserved,
    t.delayed,
    t.buried,
    t.waiting,
    t.watching,
    ins[i] ?? '-',
    dones[i] ?? '-',
  ]);
  const headers = ['tube', 'ready', 'reserved', 'delayed', 'buried', 'waiting', 'watching', 'in/s', 'done/s'];
  lines.push(...renderTable(headers, rows, output).split('\n'));
  const hidden = snapshot.tubes.length - shown.length;
  if (hidden > 0) lines.push(c.dim(`… and ${hidden} more tube${hidden === 1 ? '' : 's'} (a taller terminal shows them)`));
  return lines;
}

/** Options of {@link runTop}. */
export interface TopOptions {
  /** The server (else `BEANSTALKD_URL`, else 127.0.0.1:11300). */
  readonly url?: string;
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
 * Settles like `promise`, but resolves to `undefined` as soon as `signal` is aborted (Ctrl-C must not wait
 * for the server) and rejects with `onTimeout()` after `timeoutMs` (a server that accepts commands but
 * never answers would otherwise freeze the view on a stale frame).
 */
function settleFirst<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  timeoutMs: number,
  onTimeout: () => Error,
): Promise<T | undefined> {
  if (signal?.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      // Removed every time: one listener per refresh would otherwise pile up on the signal.
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = (): void => finish(() => resolve(undefined));
    const timer = setTimeout(() => finish(() => reject(onTimeout())), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error)),
    );
  });
}

/**
 * Runs the live view until `iterations` refreshes are done or `signal` is aborted. One connection serves
 * the whole session; when it is lost, the view shows the error and reconnects at each refresh. An
 * unreachable server at the start rejects at once with the adapter's ConnectionError (which says how to
 * start beanstalkd), since there is nothing to show yet.
 */
export async function runTop(output: Output, options: TopOptions = {}): Promise<void> {
  const intervalMs = (options.intervalSeconds ?? 1) * 1_000;
  const { signal } = options;
  const address = resolveServerAddress(options.url);
  const where = formatAddress(address);
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Waiting for the server is bounded by about one interval, so a refresh (and its error) is never long late.
  const connection = new LazyConnection({ address, connectTimeoutMs: Math.min(5_000, Math.max(1_000, intervalMs)) });
  // Opening a connection has its own bound (above); this one covers the commands of one refresh.
  const answerTimeoutMs = Math.max(5_000, 2 * intervalMs);
  const started = Date.now();
  let previous: TopSnapshot | undefined;
  let drawn = false;
  try {
    for (let frame = 1; !signal?.aborted; frame += 1) {
      let snapshot: TopSnapshot | undefined;
      let failure: string | undefined;
      try {
        snapshot = await settleFirst(
          connection.get().then((open) => readSnapshot(open)),
          signal,
          answerTimeoutMs,
          () => {
            // Dropped, so that the next refresh opens a new connection instead of queueing behind this one.
            void connection.current?.quit();
            return new ConnectionError(where, `beanstalkd at ${where} did not answer within ${answerTimeoutMs / 1_000}s`);
          },
        );
        if (signal?.aborted) break;
      } catch (error) {
        if (signal?.aborted) break;
        // Only trouble with the server is worth retrying; at the start it is bad input instead.
        if (!(error instanceof BeanstalkError) || previous === undefined) throw error;
        // LazyConnection reopens a lost (or, after a protocol error, dropped) connection at the next get().
        failure = error.message;
      }

      const rates = snapshot && previous ? computeRates(previous, snapshot, (snapshot.at.getTime() - previous.at.getTime()) / 1_000) : null;
      const shown = snapshot ?? previous;
      // Cannot happen (a failure before any snapshot was rethrown above); it narrows the type.
      if (shown === undefined) throw new Error('bsworker top: nothing to show');
      if (output.isTTY) {
        const rows = options.terminalRows?.();
        const lines = renderFrame(shown, rates, output, {
          address: where,
          intervalSeconds: intervalMs / 1_000,
          error: failure,
          // One line is kept free: the newline after the frame must not scroll the screen.
          // A pseudo-terminal without a size reports 0 rows: that means unknown, not "no room".
          maxLines: rows === undefined || rows <= 0 ? undefined : rows - 1,
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
    await Promise.race([connection.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
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
    .addOption(urlOption())
    .addHelpText('after', '\nOff a terminal (piped, logged) each refresh prints plain key=value lines instead of redrawing.')
    .action(
      opsAction(async (options: { interval: number; iterations?: number; url?: string }, command: Command) => {
        const controller = new AbortController();
        let signals = 0;
        const onSignal = (): void => {
          signals += 1;
          if (signals === 1) {
            controller.abort();
            return;
          }
          // A second Ctrl-C while the first is still closing: leave now, but never with a hidden cursor.
          if (output.isTTY) output.print(ANSI.showCursor);
          process.exit(130);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          await runTop(output, {
            url: urlOf(command, options),
            intervalSeconds: options.interval,
            iterations: options.iterations,
            signal: controller.signal,
            terminalRows: () => process.stdout.rows,
          });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }),
    );
}
