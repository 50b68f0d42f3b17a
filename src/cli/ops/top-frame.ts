/**
 * `bsworker top`'s pure half: the rates between two readings ({@link computeRates}) and what a refresh
 * prints ({@link renderFrame}, {@link frameJson}). A reading is the admin layer's {@link Overview}. No
 * I/O, so all of it is unit-tested without a server.
 */
import type { JobCounts, Overview, TubeReport } from '../../admin/types.js';
import { colors, type Output, renderTable, terminalSafeJson, terminalSafeText } from '../output.js';
import { type ServerSummary, serverSummary, type TubeSummary, tubeSummary } from './stats.js';
import type { ServerEntryJson } from './stats-several.js';

/** What one refresh read: the admin layer's overview of the servers and their tubes. */
export type TopSnapshot = Overview;

/** The server-wide counters of a reading, summed over the servers that answered. */
function serverTotals(snapshot: TopSnapshot): { connections: number; totalJobs: number; deletes: number } {
  let connections = 0;
  let totalJobs = 0;
  let deletes = 0;
  for (const server of snapshot.servers) {
    if (!server.stats) continue;
    connections += server.stats.connections;
    totalJobs += server.stats.jobs.total;
    deletes += server.stats.counters['cmd-delete'] ?? 0;
  }
  return { connections, totalJobs, deletes };
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
  /** The terminal's width: a wider line would wrap, and the header would scroll away. */
  readonly maxColumns?: number;
}

/** Jobs per second since the last refresh; null on the first one, and where a counter was reset. */
export interface RatesJson {
  readonly inPerSecond: number | null;
  readonly donePerSecond: number | null;
}

/**
 * One line of `bsworker top --json`, printed at each refresh: the server and every tube in the shapes
 * `stats --json` uses, each with its rates, and when the reading was taken.
 *
 * ```json
 * { "at": "2026-11-24T04:09:15.012Z",
 *   "server": { "version": "1.12", ..., "inPerSecond": 4, "donePerSecond": 0 },
 *   "tubes": [ { "name": "emails", "ready": 8, ..., "inPerSecond": 4, "donePerSecond": 0 } ] }
 * ```
 */
export interface TopJson {
  /** When the reading started, ISO 8601 with milliseconds. */
  readonly at: string;
  readonly server: ServerSummary & RatesJson;
  /** Sorted by name. */
  readonly tubes: readonly (TubeSummary & RatesJson)[];
}

/**
 * A line of `bsworker top --json` when several servers are configured: every server up or down (in the
 * shape of `stats --json` over several), the totals of those that answered with their rates, every tube
 * summed, and the servers that did not answer.
 */
export interface SeveralTopJson {
  readonly at: string;
  readonly servers: readonly ServerEntryJson[];
  readonly totals: { readonly connections: number; readonly jobs: JobCounts } & RatesJson;
  readonly tubes: readonly (TubeSummary & RatesJson)[];
  readonly unavailable: readonly string[];
}

const JOB_KEYS = ['ready', 'urgent', 'reserved', 'delayed', 'buried', 'total'] as const;

/** {@link frameJson} over several servers. */
export function severalFrameJson(snapshot: TopSnapshot, rates: TopRates | null): SeveralTopJson {
  const up = snapshot.servers.flatMap((server) => (server.stats ? [server.stats] : []));
  const jobs = Object.fromEntries(
    JOB_KEYS.map((key) => [key, up.reduce((sum, stats) => sum + stats.jobs[key], 0)]),
  ) as unknown as JobCounts;
  return {
    at: snapshot.at,
    servers: snapshot.servers.map((server) => ({
      server: server.server,
      up: server.up,
      error: server.error,
      stats: server.stats ? serverSummary(server.stats) : null,
    })),
    totals: {
      connections: up.reduce((sum, stats) => sum + stats.connections, 0),
      jobs,
      inPerSecond: rates?.server.inPerSecond ?? null,
      donePerSecond: rates?.server.donePerSecond ?? null,
    },
    tubes: snapshot.tubes.map((tube) => ({
      ...tubeSummary(tube),
      inPerSecond: rates?.tubes.get(tube.name)?.inPerSecond ?? null,
      donePerSecond: rates?.tubes.get(tube.name)?.donePerSecond ?? null,
    })),
    unavailable: snapshot.unavailable,
  };
}

/** The `--json` document of one refresh: the first server's summary, every tube's (summed) counters. */
export function frameJson(snapshot: TopSnapshot, rates: TopRates | null): TopJson {
  const stats = snapshot.servers.find((server) => server.stats !== null)?.stats;
  if (!stats) throw new TypeError('frameJson: no server of the reading answered');
  const ratesOf = (rate: Rate | undefined): RatesJson => ({
    inPerSecond: rate?.inPerSecond ?? null,
    donePerSecond: rate?.donePerSecond ?? null,
  });
  return {
    at: snapshot.at,
    server: { ...serverSummary(stats), ...ratesOf(rates?.server) },
    tubes: snapshot.tubes.map((tube) => ({ ...tubeSummary(tube), ...ratesOf(rates?.tubes.get(tube.name)) })),
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
  if (prev === undefined || !(seconds > 0) || restarted(prev, next)) return null;
  const server = rateOf(serverTotals(prev), serverTotals(next), seconds);
  if (server === null) return null;
  const counters = (tube: TubeReport) => ({ totalJobs: tube.totals.total, deletes: tube.totals.deletes });
  const before = new Map(prev.tubes.map((tube) => [tube.name, counters(tube)]));
  const tubes = new Map<string, Rate>();
  for (const tube of next.tubes) {
    const old = before.get(tube.name);
    const rate = old && rateOf(old, counters(tube), seconds);
    if (rate) tubes.set(tube.name, rate);
  }
  return { server, tubes };
}

/**
 * True when a server restarted between the readings (its uptime went back), or a different set of servers
 * answered: the summed counters would then compare unlike things.
 */
function restarted(prev: TopSnapshot, next: TopSnapshot): boolean {
  const uptimes = new Map(prev.servers.map((server) => [server.server, server.stats?.uptimeSeconds]));
  const answered = (snapshot: TopSnapshot): string =>
    snapshot.servers
      .filter((server) => server.stats !== null)
      .map((server) => server.server)
      .join(',');
  if (answered(prev) !== answered(next)) return true;
  return next.servers.some((server) => {
    const before = uptimes.get(server.server);
    return server.stats !== null && before !== undefined && server.stats.uptimeSeconds < before;
  });
}

/** `2026-11-24T03:00:00Z`: whole seconds are enough for a view refreshed every second. */
export function timestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function formatRate(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(1);
}

/**
 * Renders one frame as lines. On a terminal (`output.isTTY`): a title, a server line and a table of the
 * tubes, cut to `context.maxLines`. Otherwise plain lines without escape codes, one for the server and
 * one per tube:
 * `2026-11-24T03:00:00Z tube=emails ready=3 reserved=1 delayed=0 buried=2 waiting=0 watching=1 in/s=4.0 done/s=3.0`.
 * Without `rates` (the first frame) every rate is `-`.
 */
export function renderFrame(snapshot: TopSnapshot, rates: TopRates | null, output: Output, context: FrameContext = {}): string[] {
  const at = timestamp(new Date(snapshot.at));
  const server = serverTotals(snapshot);
  const serverIn = formatRate(rates?.server.inPerSecond);
  const serverDone = formatRate(rates?.server.donePerSecond);
  // Only over several servers: one that is down is named, with why (one server down is an error instead).
  const down = snapshot.servers.filter((entry) => !entry.up);
  if (!output.isTTY) {
    return [
      `${at} server connections=${server.connections} tubes=${snapshot.tubes.length} in/s=${serverIn} done/s=${serverDone}`,
      ...down.map((entry) => `${at} down server=${entry.server} error=${terminalSafeJson(entry.error ?? 'no answer')}`),
      ...snapshot.tubes.map(({ name, totals: t }) => {
        const rate = rates?.tubes.get(name);
        return (
          `${at} tube=${name} ready=${t.ready} reserved=${t.reserved} delayed=${t.delayed} buried=${t.buried} ` +
          `waiting=${t.waiting} watching=${t.watching} in/s=${formatRate(rate?.inPerSecond)} done/s=${formatRate(rate?.donePerSecond)}`
        );
      }),
    ];
  }

  const c = colors(output);
  const columns = context.maxColumns ?? Number.POSITIVE_INFINITY;
  const where = context.address === undefined ? '' : ` ${context.address}`;
  const every = context.intervalSeconds === undefined ? '' : `, every ${context.intervalSeconds}s`;
  // Cut before colouring: a cut through an escape sequence would leave the colour on.
  const title = `bsworker top${where}`;
  const titleLine = truncate(`${title}  ${at}${every}  (Ctrl-C to quit)`, columns);
  const lines = [c.bold(titleLine.slice(0, title.length)) + titleLine.slice(title.length)];
  if (context.error !== undefined) lines.push(c.red(truncate(`${context.error}; retrying (the counts below are from ${at})`, columns)));
  lines.push(
    truncate(
      `server: ${server.connections} connection${server.connections === 1 ? '' : 's'}, ${snapshot.tubes.length} tube${snapshot.tubes.length === 1 ? '' : 's'}, in ${serverIn} jobs/s, done ${serverDone} jobs/s`,
      columns,
    ),
  );
  for (const entry of down) {
    lines.push(
      c.red(truncate(`down: ${entry.server} (${terminalSafeText(entry.error ?? 'no answer')}); its tubes are not counted`, columns)),
    );
  }

  // The table takes 3 lines besides its rows (top border, head, bottom border), plus one for "N more".
  const room = context.maxLines === undefined ? Number.POSITIVE_INFINITY : context.maxLines - lines.length - 4;
  const shown = snapshot.tubes.length <= room + 1 ? snapshot.tubes : snapshot.tubes.slice(0, Math.max(0, room));
  lines.push(...fitTable(shown, rates, output, columns));
  const hidden = snapshot.tubes.length - shown.length;
  if (hidden > 0)
    lines.push(c.dim(truncate(`… and ${hidden} more tube${hidden === 1 ? '' : 's'} (a taller terminal shows them)`, columns)));
  return lines;
}

/** `text` cut to `width` characters, the last one an ellipsis when anything was cut. */
function truncate(text: string, width: number): string {
  if (text.length <= width) return text;
  return width <= 1 ? text.slice(0, Math.max(0, width)) : `${text.slice(0, width - 1)}…`;
}

/** The columns of the live table, in the order they are given up when the terminal is too narrow. */
const TOP_COLUMNS = ['tube', 'ready', 'reserved', 'delayed', 'buried', 'waiting', 'watching', 'in/s', 'done/s'] as const;
type TopColumn = (typeof TOP_COLUMNS)[number];
/**
 * Least useful first: idle and busy workers, then delayed jobs; below about 60 columns the rates and
 * the reserved count too. Tube, ready and buried always stay.
 */
const DROP_ORDER: readonly TopColumn[] = ['watching', 'waiting', 'delayed', 'done/s', 'in/s', 'reserved'];
/** Tube names are cut (with an ellipsis) before a column is dropped, but never below this. */
const MIN_TUBE_WIDTH = 12;

/** The width of a cli-table3 table: each cell is padded by one space a side, with a border between. */
function tableWidth(widths: readonly number[]): number {
  return widths.reduce((sum, width) => sum + width + 3, 1);
}

/**
 * The table of tubes, made to fit `columns`: tube names are cut first (down to {@link MIN_TUBE_WIDTH}),
 * then columns are dropped in {@link DROP_ORDER}, then names are cut further.
 */
function fitTable(tubes: readonly TubeReport[], rates: TopRates | null, output: Output, columns: number): string[] {
  const cells = ({ name, totals: t }: TubeReport): Record<TopColumn, string | number> => ({
    tube: name,
    ready: t.ready,
    reserved: t.reserved,
    delayed: t.delayed,
    buried: t.buried,
    waiting: t.waiting,
    watching: t.watching,
    'in/s': formatRate(rates?.tubes.get(name)?.inPerSecond),
    'done/s': formatRate(rates?.tubes.get(name)?.donePerSecond),
  });
  const all = tubes.map(cells);
  const widthOf = (column: TopColumn): number => Math.max(column.length, ...all.map((row) => String(row[column]).length));
  let kept: TopColumn[] = [...TOP_COLUMNS];
  const others = (): number[] => kept.filter((column) => column !== 'tube').map(widthOf);
  // How wide the tube column may be with the columns kept so far.
  const tubeRoom = (): number => columns - tableWidth(others()) - 3;
  for (const drop of DROP_ORDER) {
    if (tubeRoom() >= Math.min(widthOf('tube'), MIN_TUBE_WIDTH)) break;
    kept = kept.filter((column) => column !== drop);
  }
  const tubeWidth = Math.max(4, Math.min(widthOf('tube'), tubeRoom()));
  // Rates are text ('-', '4.0'): right-aligned here, since the table right-aligns only numbers.
  const pad = (column: TopColumn, value: string | number): string | number =>
    column === 'in/s' || column === 'done/s' ? String(value).padStart(widthOf(column)) : value;
  const rows = all.map((row) =>
    kept.map((column) => (column === 'tube' ? truncate(String(row.tube), tubeWidth) : pad(column, row[column]))),
  );
  return renderTable(kept, rows, output).split('\n');
}
