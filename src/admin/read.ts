/**
 * Reading the servers: `servers()`, `tubes()`, `overview()` and `tube(name)`. Every server is read at
 * once, and each server's commands are pipelined on its connection (two round trips in all: `stats` with
 * `list-tubes`, then every `stats-tube`).
 */
import type { TubeStats } from '../beanstalk/types.js';
import { NotFoundError } from './errors.js';
import type { AdminServer } from './servers.js';
import { eachServer } from './spread.js';
import { serverStatsReport, tubeCounts, tubeReports } from './summarise.js';
import type { Overview, ServerReport, TubeOnServer, TubeReport } from './types.js';

/** The message for a tube beanstalkd does not know, with the reason people are surprised by it. */
export function noSuchTube(tube: string): string {
  return `tube ${tube} does not exist (beanstalkd drops a tube once it holds no jobs and no client uses or watches it)`;
}

/** One server's reading, or why there is none. */
type Reading =
  | { readonly ok: true; readonly report: ServerReport; readonly tubes: readonly (readonly [string, TubeOnServer])[] }
  | { readonly ok: false; readonly report: ServerReport; readonly error: unknown };

async function readServer(server: AdminServer, withTubes: boolean): Promise<Reading> {
  try {
    return await server.run(async (connection) => {
      const [stats, names] = await Promise.all([connection.stats(), withTubes ? connection.listTubes() : []]);
      const all = await Promise.all(names.map((name) => connection.statsTube(name)));
      const tubes = all
        // null: the tube vanished between list-tubes and stats-tube (beanstalkd drops unused empty tubes).
        .filter((tube): tube is TubeStats => tube !== null)
        .map((tube) => [tube.name, { server: server.name, ...tubeCounts(tube) }] as const);
      return { ok: true, report: { server: server.name, up: true, error: null, stats: serverStatsReport(stats) }, tubes };
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, report: { server: server.name, up: false, error: message, stats: null }, error };
  }
}

/**
 * Every server's stats and, with `withTubes`, every tube. Throws the first server's error when no
 * server could be read: there is nothing to show, and a caller such as `top` retries on it.
 */
export async function readOverview(servers: readonly AdminServer[], withTubes: boolean, now: () => Date): Promise<Overview> {
  const at = now().toISOString();
  const readings = await Promise.all(servers.map((server) => readServer(server, withTubes)));
  const failed = readings.filter((reading) => !reading.ok);
  if (failed.length === readings.length && failed[0] && !failed[0].ok) throw failed[0].error;
  return {
    at,
    servers: readings.map((reading) => reading.report),
    tubes: tubeReports(readings.flatMap((reading) => (reading.ok ? reading.tubes : []))),
    unavailable: failed.map((reading) => reading.report.server),
  };
}

/** Every server's report; a server that does not answer is `up: false` with the reason, never an error. */
export async function readServers(servers: readonly AdminServer[]): Promise<ServerReport[]> {
  return (await Promise.all(servers.map((server) => readServer(server, false)))).map((reading) => reading.report);
}

/**
 * One tube on every server that has it. {@link NotFoundError} (`TUBE_NOT_FOUND`) when none that
 * answered has it; the first server's error when none answered. With `several`, the servers that did
 * not answer are listed in `unavailable`.
 */
export async function readTube(servers: readonly AdminServer[], name: string, several = false): Promise<TubeReport> {
  const read = await eachServer(servers, (server) => server.run((connection) => connection.statsTube(name)));
  const found = read.results.flatMap(({ server, value }) =>
    value === null ? [] : [[name, { server: server.name, ...tubeCounts(value) }] as const],
  );
  const [report] = tubeReports(found);
  if (!report) throw new NotFoundError('TUBE_NOT_FOUND', noSuchTube(name) + downNote(read.unavailable));
  return several ? { ...report, unavailable: read.unavailable } : report;
}

/** `` (servers down: a, b)`` for a message that may be missing their part, or nothing. */
export function downNote(unavailable: readonly string[]): string {
  return unavailable.length === 0 ? '' : ` (not reachable, so not looked at: ${unavailable.join(', ')})`;
}
